"""MER-Bench engine: registries, tasks, jobs, runner, store, tables. Knows no method or dataset."""
