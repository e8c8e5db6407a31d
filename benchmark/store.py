"""The result store: one folder per finished job, written atomically, read by the tables.

A job's folder appears by one rename of a fully written temporary folder, so a killed run
leaves no half-written job, and its presence is what "done" means. Failures go to a separate
folder with their traceback; they are never taken for results and are retried on the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mer_bench.benchmark.jobs import Job


@dataclass(frozen=True)
class Predictions:
    """Per-sample predictions of one job: every classifier head's logits."""

    clips: tuple[str, ...]
    subjects: tuple[str, ...]
    labels: np.ndarray
    logits: dict[str, np.ndarray]
    classes: tuple[str, ...]

    def to_json(self) -> dict:
        return {"clips": list(self.clips), "subjects": list(self.subjects),
                "labels": self.labels.tolist(), "classes": list(self.classes),
                "logits": {head: values.tolist() for head, values in self.logits.items()}}

    @classmethod
    def from_json(cls, raw: dict) -> "Predictions":
        return cls(tuple(raw["clips"]), tuple(raw["subjects"]), np.asarray(raw["labels"]),
                   {head: np.asarray(v, dtype=np.float64) for head, v in raw["logits"].items()},
                   tuple(raw["classes"]))


@dataclass(frozen=True)
class JobRecord:
    job: Job
    predictions: Predictions
    info: dict  # metrics, timings, environment


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True))


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs = self.root / "runs"
        self.failures = self.root / "failures"

    def job_dir(self, job: Job) -> Path:
        return self.runs / job.key

    def is_done(self, job: Job) -> bool:
        return (self.job_dir(job) / "job.json").exists()

    def write(self, job: Job, predictions: Predictions, info: dict) -> bool:
        """Stores a finished job; False if another process stored it first."""
        self.runs.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".tmp-{job.key}-", dir=self.runs))
        try:
            _write_json(temp / "predictions.json", predictions.to_json())
            _write_json(temp / "info.json", info)
            (temp / "job.json").write_text(job.canonical())
            os.rename(temp, self.job_dir(job))
        except OSError:
            shutil.rmtree(temp, ignore_errors=True)
            if self.is_done(job):
                return False
            raise
        (self.failures / f"{job.key}.json").unlink(missing_ok=True)
        return True

    def record_failure(self, job: Job, error: str) -> None:
        self.failures.mkdir(parents=True, exist_ok=True)
        _write_json(self.failures / f"{job.key}.json",
                    {"job": json.loads(job.canonical()), "error": error, "time": time.time()})

    def failed(self) -> list[dict]:
        if not self.failures.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.failures.glob("*.json"))]

    def records(self) -> Iterator[JobRecord]:
        if not self.runs.is_dir():
            return
        for folder in sorted(self.runs.iterdir()):
            if folder.name.startswith(".tmp-") or not (folder / "job.json").exists():
                continue
            yield JobRecord(
                Job.from_canonical((folder / "job.json").read_text()),
                Predictions.from_json(json.loads((folder / "predictions.json").read_text())),
                json.loads((folder / "info.json").read_text()),
            )

    def sweep_temporary(self) -> int:
        """Removes the temporary folders of killed runs; returns how many."""
        if not self.runs.is_dir():
            return 0
        stale = [p for p in self.runs.glob(".tmp-*") if p.is_dir()]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        return len(stale)
