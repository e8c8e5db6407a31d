"""The harness from Python (a notebook, a script): run methods x tasks or a grid into a store,
and read any store as pandas DataFrames, without the command line.

    from mer_bench import notebook
    frame = notebook.run(methods=["majority", "ststnet"], tasks=["synthetic-5"], budget=50)
    clips = notebook.clips("results")      # one row per clip and seed of every stored run

`run` returns the rows of the runs it was asked for, and only those (a store holds other
runs: earlier budgets, seeds, methods). `runs` gives one row per run of the whole store
(method x task x selection x budget): UF1 / UAR / accuracy, mean and sd over seeds, their 95%
subject-bootstrap intervals, as `tables` writes them to CSV; `folds` one row per fold and seed;
`clips` one row per clip and seed. A run is what `mer-bench run` would have run with the same
names: same jobs, same keys, same store.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.grids import Grid, MethodSpec, grid_path, load_grid


def _config(results: str | Path, data: dict[str, str] | None, **more) -> RunConfig:
    return RunConfig(results=Path(results),
                     data_roots=tuple((k, str(v)) for k, v in (data or {}).items()), **more)


def _scored(results: str | Path, keys: set[str] | None = None) -> list:
    """The store's runs; `keys`: only the jobs with these keys."""
    from mer_bench.benchmark.stats.runs import run_scores

    return run_scores(list(_config(results, None).store.records()), keys=keys)


def run(methods: list[str] | tuple[str, ...] = (), tasks: list[str] | tuple[str, ...] = (),
        grid: str | None = None, profile: str | None = None, seeds: tuple[int, ...] = (0,),
        budget: int | None = None, results: str | Path = "results",
        data: dict[str, str] | None = None, workers: int = 1,
        progress: bool = False) -> pd.DataFrame:
    """Runs `methods` x `tasks` x `seeds` (at `budget` iterations, else each method's own), or
    the grid file or shipped grid `grid` under `profile`, into the store `results` (stored
    jobs are not run again), then returns one row per run asked for, as `runs` gives it: the
    store's other runs are left out (`runs(results)` shows them all). `data`: dataset name ->
    folder."""
    from mer_bench.benchmark.execution.runner import run_grids
    from mer_bench.benchmark.reporting.tables import tidy_frame

    if grid is not None:
        grids = [load_grid(grid_path(grid), profile)]
    elif methods and tasks:
        grids = [Grid(tuple(MethodSpec.make(m, budget=budget) for m in methods), tuple(tasks),
                      tuple(seeds))]
    else:
        raise ValueError("run needs methods and tasks, or a grid")
    summary = run_grids(grids, _config(results, data, workers=workers, progress=progress))
    if summary.failed:
        raise RuntimeError(f"{len(summary.failed)} job(s) failed: "
                           + "; ".join(f"{job.method} on {job.task} fold {job.fold}: {why}"
                                       for job, why in summary.failed[:3]))
    return tidy_frame(_scored(results, keys={job.key for job in summary.jobs}))


def runs(results: str | Path = "results") -> pd.DataFrame:
    """One row per run of the whole store, whatever ran it, numbers unformatted (UF1 etc. in
    %), intervals included."""
    from mer_bench.benchmark.reporting.tables import tidy_frame

    return tidy_frame(_scored(results))


def clips(results: str | Path = "results") -> pd.DataFrame:
    """One row per clip, seed and complete run: its fold (subject), true and predicted class."""
    lines = []
    for scored in _scored(results):
        for seed, pooled in zip(scored.seeds, scored.pooled):
            names = scored.classes or tuple(map(str, range(pooled.num_classes)))
            for clip, subject, label, predicted in zip(pooled.clips or (None,) * len(
                    pooled.labels), pooled.subjects, pooled.labels, pooled.predicted):
                lines.append({"method": scored.method, "task": scored.task, "seed": seed,
                              "fold": subject, "clip": clip, "label": names[int(label)],
                              "predicted": names[int(predicted)]})
    return pd.DataFrame(lines, columns=["method", "task", "seed", "fold", "clip", "label",
                                        "predicted"])


def folds(results: str | Path = "results") -> pd.DataFrame:
    """One row per fold, seed and complete run: its clips and accuracy (UF1 and UAR are
    pooled over folds, never averaged over them, so a fold has none)."""
    per_clip = clips(results)
    per_clip["correct"] = per_clip["label"] == per_clip["predicted"]
    grouped = per_clip.groupby(["method", "task", "seed", "fold"], sort=True)["correct"]
    return grouped.agg(clips="size", accuracy="mean").reset_index()
