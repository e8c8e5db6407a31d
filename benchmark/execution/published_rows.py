"""Predictions published by a paper's authors (a per-clip log, scored by `score`) stored as a
run of their own, `published[source=NAME]`, one stored job per fold, so that tables put the
published row beside measured ones and pair them, subject by subject, on the clips both
cover (stats/uncertainty.py on_shared_clips).

A log holds classes, not logits: each clip's stored logits are one-hot (1 for the published
class), so its argmax, all any score reads, is the published prediction. The labels stored
are the task's, as for every run. Folds the file covers none of (all their clips declared
missing) are not part of the run; its display text says how many clips it covers.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mer_bench.benchmark.execution.job_results import provenance
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.protocol.tasks import TaskData
from mer_bench.benchmark.stats.metrics import score
from mer_bench.benchmark.stats.runs import PUBLISHED
from mer_bench.benchmark.stats.scoring import ScoreReport
from mer_bench.benchmark.storage.store import Predictions, Store
from mer_bench.datasets.sheets import file_digest

METHOD = "published"
DATA = "published predictions"


def store_published(report: ScoreReport, data: TaskData, source: Path, name: str,
                    store: Store) -> list[Job]:
    """Stores the scored file as the run `published[source=name]`; refused unless every clip
    it lacks was declared. Returns its jobs (one per fold it covers)."""
    if not report.whole:
        raise ValueError(f"{source} is not stored: it lacks clips that were not declared "
                         "missing (give --missing or --allow-missing), or a declaration is "
                         "wrong; see above")
    task = data.task
    by_fold: dict[str, list[int]] = {}
    for index, sample in enumerate(data.samples):
        if sample.clip.key in report.predicted:
            by_fold.setdefault(task.fold_key(sample.clip), []).append(index)
    folds = [f for f in data.folds() if f in by_fold]
    versions = {"predictions": file_digest(source),
                "annotations": ",".join(f"{d}:{v}" for d, v in
                                        sorted(data.annotation_versions.items()))}
    covered = sum(len(v) for v in by_fold.values())
    text = (f"published predictions ({source.name}): {covered} of {len(data.samples)} clips"
            + (f", {len(report.declared)} declared missing" if report.declared else ""))
    jobs = []
    for fold in folds:
        samples = [data.samples[i] for i in by_fold[fold]]
        labels = np.array([s.label for s in samples])
        predicted = np.array([report.predicted[s.clip.key] for s in samples])
        job = Job(METHOD, task.name, fold, selection=PUBLISHED, options=(("source", name),),
                  versions=versions)
        predictions = Predictions(tuple(s.clip.key for s in samples),
                                  tuple(s.clip.subject_key for s in samples), labels,
                                  {"final": np.eye(len(task.classes))[predicted]}, task.classes)
        info = {"fold_scores": score(labels, predicted, len(task.classes)).as_dict(),
                "task": {"folds": folds, "synthetic": False, "data": DATA,
                         "samples": len(data.samples), "excluded": len(data.excluded),
                         **provenance(data)},
                "display": {"budget": text},
                "published": {"file": source.name, "declared_missing": report.declared},
                "finished": time.time()}
        store.write(job, predictions, info)
        jobs.append(job)
    return jobs
