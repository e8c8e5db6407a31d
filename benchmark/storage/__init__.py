"""What the harness writes and keeps: the store of finished jobs, outputs it owns, temporary files' lifetimes, model files."""
