"""A run's scores from its stored jobs: every fold of one (method, options, task, selection,
budget, seed) under one set of versions, pooled (MEGC 2019), over seeds, with intervals and
paired tests against another run. A run missing folds is incomplete, never scored. A run over
clips of several datasets (the MEGC 2019 composite) is also scored on each dataset's clips of
the same predictions, as MEGC 2019 reports its parts: task `TASK[dataset]`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from mer_bench.benchmark.stats.metrics import Scores, score
from mer_bench.benchmark.stats.uncertainty import (
    Pooled, bootstrap_ci, difference_ci, on_shared_clips, paired_p_value, subject_mean)
from mer_bench.benchmark.storage.store import JobRecord


@dataclass(frozen=True)
class RunScores:
    """One row of the tidy results: a method on a task, pooled over folds, over seeds."""

    method: str
    task: str
    selection: str
    budget: int | None
    synthetic: bool
    folds: int
    folds_expected: int
    seeds: tuple[int, ...]
    per_seed: tuple[Scores, ...]
    classes: tuple[str, ...] = ()
    data: str = ""  # where the inputs came from: synthetic, real, released flows
    pooled: tuple[Pooled, ...] = ()  # each seed's pooled predictions (for intervals, tests)
    # What its stored jobs say of their data, for protocol cards: annotation versions,
    # exclusions, source (benchmark/protocol/cards.py; jobs stored before cards lack some).
    provenance: dict = field(default_factory=dict, compare=False)
    data_version: str = ""  # a digest of what its jobs read (`data_identity`)

    def __post_init__(self):
        if not self.data:
            object.__setattr__(self, "data", "synthetic" if self.synthetic else "real")

    @property
    def complete(self) -> bool:
        return self.folds == self.folds_expected and bool(self.per_seed)

    def mean_std(self, metric: str) -> tuple[float, float]:
        values = np.array([getattr(s, metric) for s in self.per_seed]) * 100
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

    @cached_property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """Subject-bootstrap 95% intervals (%) of the seed mean (benchmark/stats/uncertainty.py)."""
        if not (self.complete and self.pooled):
            return {}
        return {m: (100 * low, 100 * high)
                for m, (low, high) in bootstrap_ci(list(self.pooled)).items()}

    @cached_property
    def subject_mean(self) -> dict[str, float]:
        """The mean of per-subject scores (%), which some papers report; never the default."""
        if not (self.complete and self.pooled):
            return {}
        return {m: 100 * v for m, v in subject_mean(list(self.pooled)).items()}

    def p_value(self, reference: "RunScores", metric: str = "uf1") -> float | None:
        """Paired permutation p of this run against `reference` on the same clips and folds
        (seeds paired in order); None where they do not share them."""
        if not (self.complete and reference.complete and self.pooled and reference.pooled):
            return None
        count = min(len(self.pooled), len(reference.pooled))
        try:
            return paired_p_value(*on_shared_clips(list(self.pooled[:count]),
                                                   list(reference.pooled[:count])), metric)
        except ValueError:
            return None

    def change(self, reference: "RunScores", metric: str = "uf1",
               ) -> tuple[float, tuple[float, float]] | None:
        """This run's seed mean less `reference`'s (percentage points) and its paired 95%
        interval (the same subjects resampled for both); None where they do not share their
        clips and folds."""
        if not (self.complete and reference.complete and self.pooled and reference.pooled):
            return None
        count = min(len(self.pooled), len(reference.pooled))
        try:
            low, high = difference_ci(*on_shared_clips(list(self.pooled[:count]),
                                                       list(reference.pooled[:count])), metric)
        except ValueError:
            return None
        return self.mean_std(metric)[0] - reference.mean_std(metric)[0], (100 * low, 100 * high)


CODE_VERSIONS = ("method", "views")  # what a newer run of the same data may supersede


def data_identity(job) -> tuple:
    """The versions of what a job read (data, annotations, preprocessing, weights...), not of
    the code that read it: two runs with different identities are different rows."""
    return tuple((k, v) for k, v in job.versions if k not in CODE_VERSIONS)


def run_scores(records: list[JobRecord], head: str = "final",
               keys: set[str] | None = None) -> list[RunScores]:
    """Groups job records into runs and scores each seed's pooled predictions. `keys`: only
    the jobs with these keys (those a run just planned from the data as they are now).

    A run of newer code on the same data supersedes the old one; runs on different data
    (another version of a dataset tree, other annotations) are never merged and never hide
    each other: each is its own row, with its data version."""
    groups: dict[tuple, dict[int, list[JobRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        job = record.job
        if keys is not None and job.key not in keys:
            continue
        key = (job.run_label, job.task, job.selection, job.budget, job.versions)
        groups[key][job.seed].append(record)
    newest: dict[tuple, tuple[float, tuple]] = {}
    for key, seeds in groups.items():
        finished = max(r.info.get("finished", 0.0) for rs in seeds.values() for r in rs)
        job = next(iter(seeds.values()))[0].job
        row = (*key[:4], data_identity(job))
        if row not in newest or finished > newest[row][0]:
            newest[row] = (finished, key)
    rows = []
    for _, key in sorted(newest.values(), key=lambda item: item[1][:2]):
        seeds = groups[key]
        first = next(iter(seeds.values()))[0]
        expected = len(first.info["task"]["folds"])
        folds = min(len({r.job.fold for r in rs}) for rs in seeds.values())
        complete = folds == expected
        pooled = tuple(_pooled(rs, head) for _, rs in sorted(seeds.items())) if complete else ()
        synthetic = first.info["task"]["synthetic"]
        data = first.info["task"].get("data", "synthetic" if synthetic else "real")
        row = RunScores(key[0], key[1], key[2], key[3], synthetic, folds, expected,
                        tuple(sorted(seeds)), tuple(_scored(p) for p in pooled),
                        tuple(first.predictions.classes), data, pooled,
                        _provenance(first, [r for rs in seeds.values() for r in rs]),
                        _digest(data_identity(first.job)))
        rows.append(row)
        parts = sorted({clip.split("/")[0] for r in seeds[min(seeds)] for clip in
                        r.predictions.clips})
        for dataset in parts if len(parts) > 1 else ():
            part = tuple(_pooled(rs, head, dataset) for _, rs in sorted(seeds.items())) \
                if complete else ()
            rows.append(replace(row, task=f"{row.task}[{dataset}]",
                                per_seed=tuple(_scored(p) for p in part), pooled=part))
    return rows


def _digest(identity: tuple) -> str:
    return hashlib.sha256(repr(identity).encode()).hexdigest()[:8]


def _provenance(record: JobRecord, records: list[JobRecord]) -> dict:
    facts = {k: record.info["task"][k] for k in CARD_FACTS if k in record.info["task"]}
    threads = {r.info.get("environment", {}).get("cpu_threads") for r in records} - {None}
    if threads:  # more than one: its folds' float reductions differed (the bits may)
        facts["cpu threads"] = sorted(threads)
    return {"annotations": dict(record.job.versions).get("annotations", ""), **facts}


CARD_FACTS = ("exclusions", "source", "dropped_classes")  # as job_results.provenance writes


def _pooled(records: list[JobRecord], head: str, dataset: str | None = None) -> Pooled:
    """The records' predictions pooled, in fold order (only `dataset`'s clips, if given)."""
    records = sorted(records, key=lambda r: r.job.fold)
    labels = np.concatenate([r.predictions.labels for r in records])
    predicted = np.concatenate([r.predictions.logits[head].argmax(1) for r in records])
    subjects = np.array([s for r in records for s in r.predictions.subjects])
    clips = np.array([c for r in records for c in r.predictions.clips])
    if dataset is not None:
        keep = np.array([c.split("/")[0] == dataset for c in clips], dtype=bool)
        labels, predicted, subjects, clips = labels[keep], predicted[keep], subjects[keep], \
            clips[keep]
    return Pooled(labels, predicted, tuple(subjects), len(records[0].predictions.classes),
                  tuple(clips))


def _scored(pooled: Pooled) -> Scores:
    return score(pooled.labels, pooled.predicted, pooled.num_classes)


def format_cell(run: RunScores, metric: str, interval: bool = False) -> str:
    """Mean (± sd over seeds), with its 95% subject-bootstrap interval if asked and known."""
    if not run.complete:
        return f"incomplete ({run.folds}/{run.folds_expected} folds)"
    mean, std = run.mean_std(metric)
    text = f"{mean:.2f} ± {std:.2f}" if len(run.per_seed) > 1 else f"{mean:.2f}"
    if interval and metric in run.intervals:
        low, high = run.intervals[metric]
        text += f" [{low:.1f}, {high:.1f}]"
    return text


def synthetic_note(runs: list[RunScores]) -> str:
    synthetic = sorted({run.task for run in runs if run.synthetic})
    if not synthetic:
        return ""
    return (f"Data: {', '.join(synthetic)} = SYNTHETIC clips generated from scikit-image's "
            "astronaut face; not a real micro-expression dataset, so these numbers say nothing "
            "about real MER performance.")


PUBLISHED = "published"  # the selection of a stored published log (execution/published_rows.py)


def published_note(runs: list[RunScores]) -> str:
    if not any(run.selection == PUBLISHED for run in runs):
        return ""
    return ("Selection `published`: predictions their authors published (a per-clip log), "
            "scored under the task's labels on the clips the log covers; how the authors "
            "selected their models is theirs, and no budget applies.")


def released_note(runs: list[RunScores]) -> str:
    released = sorted({run.task for run in runs if run.data == "released flows"})
    if not released:
        return ""
    return (f"Data: {', '.join(released)} = real clips read from the flow images their "
            "authors released (whose: `list tasks`): the authors' preprocessing, not the "
            "harness's; TASK[dataset] scores one dataset's clips of the composite's predictions.")
