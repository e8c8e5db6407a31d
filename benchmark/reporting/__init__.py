"""What users read from a store: comparison tables, figures, exports, the paper's files and the static report."""
