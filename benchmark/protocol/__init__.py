"""What a result means: the registries, tasks, folds, jobs and the protocol card that states them."""
