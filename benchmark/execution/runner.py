"""From grids to stored results: plan every grid (benchmark/execution/planning.py), then run what is
not done yet on an executor (benchmark/execution/one_job.py, benchmark/execution/executors.py).

Preparation happens once, in the calling process (with its own worker pool); jobs then read
the cached bundles.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tqdm import tqdm

from mer_bench.benchmark.execution import one_job as execution
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.one_job import execute_group, fold_groups
from mer_bench.benchmark.execution.costs import CostModel
from mer_bench.benchmark.execution.executors import make_executor, visible_gpus
from mer_bench.benchmark.execution.fold_log import FoldLog
from mer_bench.benchmark.execution.slurm import SlurmExecutor
from mer_bench.benchmark.protocol.folds import select_folds
from mer_bench.benchmark.protocol.grids import Grid
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.protocol.slurm_settings import merged
from mer_bench.benchmark.execution.planning import PreparedTask, plan
from mer_bench.benchmark.storage.store import Store


@dataclass
class RunSummary:
    jobs: list[Job]
    already_done: int = 0
    ran: int = 0
    failed: list[tuple[Job, str]] = field(default_factory=list)
    prepared: dict[str, PreparedTask] = field(default_factory=dict)
    interrupted: bool = False  # Ctrl-C: the run stopped; what was stored stays stored
    left_in_flight: int = 0  # jobs an earlier SLURM array holds queued or running
    submitted: Any = None  # --detach: the SLURM submission (execution/slurm.py), not waited for
    planning_s: float = 0.0  # planning: generating and preparing data that was not yet

    def interruption(self) -> str:
        """The one line Ctrl-C gets."""
        to_go = (len(self.jobs) - self.already_done - self.ran - len(self.failed)
                 - self.left_in_flight)
        planned = f"{to_go} to go" if self.jobs else "not yet planned"
        return (f"interrupted: {self.ran} jobs stored this run, {planned}; run the same command "
                "to resume")


def run_grid(grid: Grid, config: RunConfig, folds: tuple[str, ...] = ()) -> RunSummary:
    return run_grids([grid], config, folds)


def run_grids(grids: list[Grid], config: RunConfig, folds: tuple[str, ...] = ()) -> RunSummary:
    """Runs every job of the grids once: a job in several grids (same key) runs once.
    `folds`: only these folds of each task (protocol/folds.py select_folds); () all of them:
    a run of some folds is stored fold by fold and stays incomplete (unscored) until the rest
    are run."""
    if (config.slurm or config.detach) and config.executor != "slurm":
        raise ValueError(f"{'--slurm' if config.slurm else '--detach'} is for a SLURM job "
                         "array: use it with --executor slurm")
    config.load_plugins()
    size = partial(execution.auto_size, config=config) if config.fold_parallel == 0 else config.fold_parallel
    if config.keep:  # artefacts are kept fold by fold
        size = 1
    if config.compile and config.fold_parallel != 1:
        raise ValueError("--compile compiles one fold's training step; fold-parallel training "
                         "is not compiled: use --compile without --fold-parallel")
    store = config.store
    gpus = visible_gpus() if config.device in ("auto", "cuda") else ()
    summary = RunSummary([])
    if config.executor == "slurm":
        executor = SlurmExecutor(config.results, merged(*(g.slurm for g in grids[:1]),
                                                        config.slurm),
                                 jobs_of=list, crashed=partial(_crashed, store=store),
                                 threads=config.threads)
    else:
        executor = make_executor(config.workers, config.executor, config.ray_address,
                                 partial(_crashed, store=store), config.gpus_per_job, gpus,
                                 preload=(execution.__name__,), threads=config.threads)
    with executor:
        try:
            _run(grids, config, size, executor, summary, folds)
        except KeyboardInterrupt:
            executor.abort()  # no worker takes another job
            summary.interrupted = True
    return summary


def _run(grids: list[Grid], config: RunConfig, size, executor, summary: RunSummary,
         folds: tuple[str, ...]) -> None:
    """Plans the grids (the workers start, importing torch, meanwhile) and runs what is not
    done, counting into `summary` as jobs finish (so an interrupted run can say how far)."""
    store = config.store
    jobs, prepared = [], {}
    started = time.perf_counter()
    for grid in grids:
        grid_jobs, grid_prepared = plan(grid, config)
        jobs += grid_jobs
        prepared.update(grid_prepared)
    summary.planning_s = time.perf_counter() - started
    jobs = list({job.key: job for job in jobs}.values())
    folds_of = Counter(job.run_key for job in jobs)  # every fold of each run, chosen or not
    if folds:
        jobs = of_folds(jobs, folds)
    store.sweep_temporary()
    pending = [job for job in jobs if not store.is_done(job)
               or (config.keep and not store.has(job, config.keep))]
    summary.jobs, summary.already_done = jobs, len(jobs) - len(pending)
    summary.prepared = prepared
    elsewhere = executor.in_flight()
    held = [job for job in pending if job.key in elsewhere]  # by an earlier SLURM array
    pending = [job for job in pending if job.key not in elsewhere]
    summary.left_in_flight = len(held)
    if config.progress:
        how = {"serial": "serial", "processes": f"{config.workers} worker processes",
               "ray": "Ray tasks", "slurm": "a SLURM job array"}[executor.name]
        holding = (f", {summary.left_in_flight} queued or running in earlier SLURM arrays (left "
                "to them)" if summary.left_in_flight else "")
        print(f"{len(jobs)} jobs: {summary.already_done} already done{holding}, {len(pending)} "
              f"to run ({how})", flush=True)
    if config.detach:
        if pending:
            summary.submitted = executor.submit(partial(execute_group, config=config),
                                                fold_groups(pending, size))[0]
        return
    costs = _weights(pending, config)
    log = FoldLog(store, config.results, folds_of)
    with tqdm(total=sum(costs.values()), disable=not config.progress,
              bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}, weighed by "
                         "the jobs' expected costs]") as bar:
        groups = fold_groups(pending, size)
        finished = 0
        bar.set_description_str(f"0/{len(pending)} jobs, now {_describe(groups, 0)}")
        for done, outcomes in enumerate(executor.map(partial(execute_group, config=config),
                                                     groups), 1):
            for job, error in outcomes:
                finished += 1
                bar.update(costs[job.key])
                if error is None:
                    summary.ran += 1
                    line = log.line(job)
                else:
                    summary.failed.append((job, error))
                    line = (f"FAILED {job.run_label} {job.task} fold {job.fold}: "
                            f"{error.strip().splitlines()[-1]}")
                if line:
                    log.write(line)
                    if config.progress or error is not None:  # a failure is said even --quiet
                        bar.write(line)
            bar.set_description_str(f"{finished}/{len(pending)} jobs, now "
                                    f"{_describe(groups, done)}")
    if held:
        _wait_for_earlier_arrays(held, executor, summary, config)
    log.close()
    if config.progress and log.path.exists():
        print(f"per-fold log: {log.path}", flush=True)


def _wait_for_earlier_arrays(held: list[Job], executor, summary: RunSummary,
                             config: RunConfig) -> None:
    """A waiting run ends when the jobs earlier SLURM arrays held have ended too: stored
    (counted as already done) or not (failed, as `mer-bench status` records them)."""
    if config.progress:
        print(f"waiting for the {len(held)} jobs earlier SLURM arrays hold", flush=True)
    executor.wait_for({job.key for job in held})
    for job in held:
        if config.store.is_done(job):
            summary.already_done += 1
        else:
            summary.failed.append((job, "an earlier SLURM array ended without storing it "
                                        "(mer-bench status says why)"))
    summary.left_in_flight = 0


def _describe(groups: list[list[Job]], index: int) -> str:
    """What runs next: the first group not finished (executors take groups in order)."""
    if index >= len(groups):
        return "nothing"
    job = groups[index][0]
    folds = f"folds {','.join(j.fold for j in groups[index])}" if len(groups[index]) > 1 \
        else f"fold {job.fold}"
    return f"{job.run_label} {job.task} {folds}"


def _weights(pending: list[Job], config: RunConfig) -> dict[str, float]:
    """Each pending job's expected seconds, as a plan estimates them (costs.py: stored like
    jobs, else a measured step, for a few seconds at most); a job nothing tells of weighs as
    the median of the runs that are known (1 s if none is)."""
    if not config.progress:
        return {job.key: 1.0 for job in pending}
    model = CostModel.of_store(config.store, config)
    by_run: dict[str, float | None] = {}
    for job in pending:
        if job.run_key not in by_run:
            by_run[job.run_key] = model.estimate(job)[0]
    known = {job.key: by_run[job.run_key] for job in pending}
    figures = [v for v in by_run.values() if v]
    fallback = statistics.median(figures) if figures else 1.0
    return {key: value or fallback for key, value in known.items()}


def of_folds(jobs: list[Job], chosen: tuple[str, ...]) -> list[Job]:
    """The jobs of the chosen folds of each task (folds in the order the jobs list them)."""
    by_task: dict[str, list[str]] = {}
    for job in jobs:
        by_task.setdefault(job.task, [])
        if job.fold not in by_task[job.task]:
            by_task[job.task].append(job.fold)
    kept = {(task, fold) for task, folds in by_task.items()
            for fold in select_folds(folds, chosen, task)}
    return [job for job in jobs if (job.task, job.fold) in kept]


def _crashed(jobs: list[Job], reason: str, store: Store) -> list[tuple[Job, str]]:
    """The outcome of a group whose worker died for good: recorded, retried next run."""
    for job in jobs:
        store.record_failure(job, reason)
    return [(job, reason) for job in jobs]
