"""A job's result: its logits checked against the task, then stored with its per-sample
predictions, fold scores, timings, speed settings, data source and environment."""

from __future__ import annotations

import io
import time
from dataclasses import asdict

import numpy as np

from mer_bench.benchmark.execution.environment import describe
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.stats.metrics import score
from mer_bench.benchmark.storage.store import (CURVES, FEATURES, WEIGHTS, NonFiniteResult,
                                        Predictions, Store, non_finite_row_count)


def write_result(job: Job, data, logits: dict, elapsed: float, store: Store,
                 fold_parallel: int = 1, log: dict | None = None,
                 kept: dict | None = None) -> None:
    """`data`: what the job trained and tested on (execution's _JobData); `log`: its
    method's training log of this fold (methods.base.Method.training_logs), if any; `kept`:
    the artefacts its method kept (Method.kept), stored as WEIGHTS and FEATURES."""
    fold, classes = data.fold, data.prepared.data.task.classes
    samples = data.prepared.data.samples
    _check_logits(logits, len(fold.test), len(classes), job)
    test_labels = data.labels[fold.test]
    predictions = Predictions(tuple(samples[i].clip.key for i in fold.test),
                              tuple(data.subjects[i] for i in fold.test), test_labels,
                              {h: np.asarray(v, dtype=np.float64) for h, v in logits.items()},
                              classes)
    info = {
        "fold_scores": score(test_labels, logits["final"].argmax(1), len(classes)).as_dict(),
        "timings": {"fit_predict_s": elapsed, "train_samples": len(fold.train),
                    "test_samples": len(fold.test), "fold_parallel": fold_parallel},
        "speed": asdict(data.context.speed),
        "task": {"folds": data.prepared.data.folds(), "synthetic": data.prepared.data.synthetic,
                 "data": data.prepared.data.data_label,
                 "samples": len(samples), "excluded": len(data.prepared.data.excluded),
                 **provenance(data.prepared.data)},
        # what tables and reports say of the method, kept so they never build it (a plugin's
        # runs render without the plugin)
        "display": {"budget": data.method.budget_text(job.budget)},
        "environment": describe(data.context.device),
        "finished": time.time(),
    }
    extra = {CURVES: curves_csv(log)} if log else {}
    extra |= artefact_files(kept or {})
    info["artefacts_bytes"] = {name: len(v) for name, v in extra.items() if isinstance(v, bytes)}
    store.write(job, predictions, info, extra or None)


def artefact_files(kept: dict) -> dict[str, bytes]:
    """A fold's kept artefacts as files: its weights (safetensors) and the test samples'
    features of each final layer (npz, in the order of the stored predictions)."""
    files = {}
    if "weights" in kept:
        from safetensors.torch import save

        files[WEIGHTS] = save(kept["weights"])
    if "features" in kept:
        buffer = io.BytesIO()
        np.savez(buffer, **kept["features"])
        files[FEATURES] = buffer.getvalue()
    return files


def curves_csv(log: dict) -> str:
    """A fold's training log as CSV: step, loss, and the accuracy of each epoch its rule
    scored (blank elsewhere), `selected` 1 on the epoch the rule kept."""
    scored = dict(log.get("selection", ()))
    rows = ["step,loss,selection_accuracy,selected"]
    for step, loss in enumerate(log["loss"], 1):
        accuracy = scored.get(step)
        rows.append(f"{step},{loss:.6g},{'' if accuracy is None else f'{accuracy:.6g}'},"
                    f"{int(step == log.get('selected'))}")
    return "\n".join(rows) + "\n"


def _check_logits(logits: dict, rows: int, classes: int, job: Job) -> None:
    if "final" not in logits:
        raise ValueError(f"method {job.method} returned heads {list(logits)}, none named 'final'")
    for head, values in logits.items():
        if np.shape(values) != (rows, classes):
            raise ValueError(f"method {job.method} head {head!r}: logits of shape "
                             f"{np.shape(values)}, expected ({rows}, {classes})")
        bad = non_finite_row_count(values)
        if bad:
            raise NonFiniteResult(
                f"method {job.method} ({job.run_label}), fold {job.fold}: head {head!r} "
                f"returned NaN or infinite logits in {bad} of {rows} rows; "
                "not stored (a result is finite numbers), recorded as a failure and retried "
                "on the next run")


def provenance(data) -> dict:
    """What a protocol card needs of the task's data as read (benchmark/protocol/cards.py)."""
    facts = {"exclusions": dict(sorted(data.exclusion_counts().items()))}
    if data.source:
        facts["source"] = data.source
    if data.dropped_classes:
        facts["dropped_classes"] = list(data.dropped_classes)
    return facts
