"""Numbers from predictions: metrics, intervals and paired tests, scores of a stored run, scoring prediction files."""
