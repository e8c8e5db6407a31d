"""A command's plan before it runs (`run --plan`, `tables --plan`): every job it would run,
grouped by method x task x seed, what is stored and what is to run, and what the rest would
cost, with nothing generated, prepared or trained.

Jobs are planned from the task manifests earlier preparations left (manifests.py), so their
keys, and so what is stored, are exact. A task never prepared here has no manifest: its
folds are read from its annotations where its data are on disk (before preprocessing, which
may exclude clips), and are unknown where its data would be generated on first use or are
missing. Costs come from the stored timings of like jobs (costs.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.costs import CostModel
from mer_bench.benchmark.execution.manifests import NotPlanned, read_manifest
from mer_bench.benchmark.execution.planning import check_grid, plan
from mer_bench.benchmark.protocol.grids import Grid
from mer_bench.benchmark.protocol.jobs import Job


@dataclass
class Group:
    """The jobs of one method on one task with one seed."""

    label: str
    task: str
    seed: int
    folds: int | None  # None: unknown until the task is prepared
    stored: int
    seconds_per_job: float | None
    basis: str
    counted: bool = False  # its folds counted from the task's annotations (not yet prepared)

    @property
    def to_run(self) -> int | None:
        return None if self.folds is None else self.folds - self.stored

    @property
    def seconds(self) -> float | None:
        if self.to_run == 0:
            return 0.0
        if self.seconds_per_job is None or self.to_run is None:
            return None
        return self.seconds_per_job * self.to_run


@dataclass
class Plan:
    groups: list[Group]
    notes: list[str]  # one per task not planned from a manifest

    def render(self, workers: int = 1) -> str:
        rows = [("method x task x seed", "folds", "stored", "to run", "per job", "basis")]
        for g in self.groups:
            rows.append((f"{g.label} on {g.task} seed {g.seed}", _count(g.folds),
                         str(g.stored), _count(g.to_run),
                         "-" if g.to_run == 0 else _duration(g.seconds_per_job),
                         "" if g.to_run == 0 else g.basis))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i in (0, 5) else cell.rjust(w)
                           for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
                 for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        known = [g.to_run for g in self.groups if g.to_run is not None]
        stored = sum(g.stored for g in self.groups)
        unknown = [g for g in self.groups if g.to_run is None]
        costs = [g.seconds for g in self.groups if g.to_run]
        total = sum(c for c in costs if c is not None)
        lacking = sum(1 for c in costs if c is None)
        counted = sum(g.to_run for g in self.groups if g.counted and g.to_run is not None)
        summary = (f"{stored + sum(known)} jobs in {len(self.groups)} runs: {stored} stored, "
                   f"{sum(known)} to run")
        if counted:
            summary += (f" ({counted} of them on tasks not prepared here yet, counted from "
                        "their annotations)")
        if unknown:
            summary += (f" (and the jobs of {len(unknown)} run{'s' if len(unknown) > 1 else ''}"
                        " whose data are missing: not counted)")
        cost = f"estimated {_duration(total)} of computing"
        if workers > 1:
            cost += f" (about {_duration(total / workers)} on {workers} workers)"
        if lacking:
            cost += f", plus {lacking} run{'s' if lacking > 1 else ''} with no estimate"
        lines += ["", summary + "; " + cost + ", preparation aside.", *self.notes,
                  "Nothing was run (--plan)."]
        return "\n".join(lines)


def preview(grids: list[Grid], config: RunConfig, folds: tuple[str, ...] = ()) -> Plan:
    """The plan of `run` with these grids (`folds`: only these folds of each task), from the
    manifests and the store; every name is checked first."""
    from mer_bench.benchmark.execution.runner import of_folds

    config.load_plugins()
    for grid in grids:
        check_grid(grid, config, announce=False)
    costs = CostModel.of_store(config.store, config)
    groups: dict[str, Group] = {}
    notes: dict[str, tuple[list[str], str]] = {}  # why -> (runs, note)
    seen: set[str] = set()
    for grid in grids:
        for spec in grid.methods:
            for task in filter(spec.runs_on, grid.runnable_tasks):
                single = replace(grid, methods=(spec,), tasks=(task,))
                try:
                    jobs, _ = plan(single, config, from_manifests=True, checked=True)
                except NotPlanned as why:
                    folds_known = manifest_folds(task, config.for_bundles(spec))
                    if folds_known is None:
                        folds_known = annotated_folds(task, config)
                    labels = _unplanned(single, task, folds_known, costs, groups)
                    known = notes.get(str(why), ([], ""))[0]
                    notes[str(why)] = (known + labels, f"{why}" + (
                        f"; {task} has {folds_known} folds" if folds_known is not None else ""))
                    continue
                jobs = of_folds(jobs, folds) if folds else jobs
                for job in jobs:
                    if job.key in seen:
                        continue
                    seen.add(job.key)
                    key = job.run_key
                    if key not in groups:
                        per_job, basis = costs.estimate(job)
                        groups[key] = Group(run_name(job), job.task, job.seed, 0, 0, per_job,
                                            basis)
                    group = groups[key]
                    if group.folds is not None:
                        group.folds += 1
                        group.stored += config.store.is_done(job, read_only=True)
    return Plan(list(groups.values()),
                [f"{', '.join(dict.fromkeys(labels))}: {note}" for labels, note in notes.values()])


def _unplanned(grid: Grid, task: str, folds: int | None, costs: "CostModel",
               groups: dict[str, Group]) -> list[str]:
    """The runs of a task without a manifest (their labels): its jobs' keys are unknown (they
    hold the digest of its prepared data), so nothing of them can be found stored."""
    labels = []
    for job in grid.jobs({task: ["?"]}, _NoVersions()):
        labels.append(run_name(job))
        key = job.run_key
        if key not in groups:
            per_job, basis = costs.estimate(job)
            groups[key] = Group(run_name(job), task, job.seed, folds, 0, per_job, basis,
                                counted=folds is not None)
    return labels


class _NoVersions(dict):
    def __missing__(self, key):
        return {}


def manifest_folds(task: str, config: RunConfig) -> int | None:
    """The task's folds from its own manifest, where another one (a pretraining task's) is
    what is missing."""
    try:
        return len(read_manifest(task, config).folds)
    except NotPlanned:
        return None


def annotated_folds(task: str, config: RunConfig) -> int | None:
    """The task's folds as its annotations give them, where its data are on disk, or as a set
    generated on first use will hold them (from its spec: nothing generated); None where
    unknown (its data are missing)."""
    from mer_bench.benchmark.protocol.tasks import build_task, generated_on_first_use, load_task

    built = build_task(task)
    roots = {}
    for dataset in built.datasets:
        root = config.root_of(dataset, must_exist=False)
        if not root.exists() and not generated_on_first_use(dataset):
            return None
        roots[dataset] = root
    try:
        return len(load_task(built, roots, empty_classes="keep", planned=True).folds())
    except (OSError, ValueError, LookupError):
        return None


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}"


def run_name(job: Job) -> str:
    """The run's label with its budget and selection rule where they are not the defaults
    (a grid may run one method at two budgets, or under three rules)."""
    return (job.run_label + (f" budget {job.budget}" if job.budget is not None else "")
            + (f" selection {job.selection}" if job.selection != "last" else ""))
