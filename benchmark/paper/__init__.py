"""The paper's tables and figures: which runs fill each row and how they sit beside the reported numbers."""
