"""The result store: one folder per finished job, written atomically, read by the tables.

A job's folder appears by one rename of a fully written temporary folder, so a killed run
leaves no half-written job, and its presence is what "done" means. Each folder records the
digest of every file it holds (`digests.json`, written last); a folder without digests, with
a file they do not cover, with one that cannot be read or does not match, or with a
non-finite logit is never counted as done nor read into a table: it is moved aside to
`quarantine/` (named in `quarantined`, and by the run's summary) and its job runs again. A
read-only store is only read: a damaged job there is skipped and named (`unmoved`), never
moved. Non-finite logits are never written. Failures go to a separate folder with their
traceback; they are never taken for results and are retried on the next run. Temporary
folders carry their writer's host and process id, so a run sweeps only those whose writer is
dead or that are old, never another live run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.storage.lifetimes import STALE_S, as_umask_allows, is_stale, owner_tag


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


FILES = ("job.json", "predictions.json", "info.json")
MANIFEST = "digests.json"
CURVES = "curves.csv"  # a trained job's loss per step and scored epochs (job_results.py)
WEIGHTS = "weights.safetensors"  # kept on request (--keep weights)
FEATURES = "features.npz"  # kept on request (--keep features)
KEPT = {"weights": WEIGHTS, "features": FEATURES}


class NonFiniteResult(ValueError):
    """Logits holding NaN or infinity: never stored as a result (the job fails instead)."""


def non_finite_row_count(values) -> int:
    """How many rows of a (samples, classes) logit array hold NaN or infinity."""
    values = np.asarray(values, dtype=np.float64)
    return int((~np.isfinite(values)).reshape(len(values), -1).any(axis=1).sum()) \
        if values.size else 0


def non_finite_rows(predictions: "Predictions") -> str:
    """'' if every logit is finite, else how many rows of which heads are not."""
    found = []
    for head, values in predictions.logits.items():
        rows = non_finite_row_count(values)
        if rows:
            found.append(f"head {head!r}: {rows} of {len(values)} rows non-finite")
    return "; ".join(found)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs = self.root / "runs"
        self.failures = self.root / "failures"
        self.quarantine = self.root / "quarantine"
        self.quarantined: list[tuple[Path, str]] = []  # (where it went, why), this process
        self.unmoved: list[tuple[Path, str]] = []  # damaged, skipped, not movable (read-only)

    def job_dir(self, job: Job) -> Path:
        return self.runs / job.key

    def is_done(self, job: Job, read_only: bool = False) -> bool:
        """Whether the job is stored whole; a damaged entry is not done, and is quarantined
        (left in place if `read_only`: a plan only looks)."""
        folder = self.job_dir(job)
        if not folder.exists():
            return False
        problem = self.problem(folder)
        if problem:
            if not read_only:
                self._quarantine(folder, problem)
            return False
        return True

    def problem(self, folder: Path) -> str | None:
        """What is wrong with a stored job's folder (None: nothing): no digests (then it is
        not a stored job), a missing or unreadable file, a file the digests do not cover or
        one that differs from its digest, a non-finite logit, a spec whose key is not its
        folder's."""
        return self._inspect(folder)[0]

    def _inspect(self, folder: Path) -> tuple[str | None, JobRecord | None]:
        """(problem, None) or (None, the job read whole): each file read once."""
        try:
            manifest = folder / MANIFEST
            if not manifest.is_file():
                return f"has no {MANIFEST}: not a stored job (its files cannot be checked)", None
            recorded = json.loads(manifest.read_text())
            if not isinstance(recorded, dict):
                return f"{MANIFEST} is not a mapping of file names to digests", None
            held = {p.name for p in folder.iterdir()} - {MANIFEST}
            uncovered = sorted(held - set(recorded))
            if uncovered:
                return (f"holds {', '.join(uncovered)}, which its {MANIFEST} does not cover "
                        "(not written with this job)"), None
            for name in dict.fromkeys([*FILES, *recorded]):
                if _digest(folder / name) != recorded.get(name):
                    return f"{name} differs from the digest recorded when it was written", None
            predictions = Predictions.from_json(
                json.loads((folder / "predictions.json").read_text()))
            bad = non_finite_rows(predictions)
            if bad:
                return f"predictions.json holds non-finite logits ({bad})", None
            job = Job.from_canonical((folder / "job.json").read_text())
            info = json.loads((folder / "info.json").read_text())
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            return f"cannot be read: {type(error).__name__}: {error}", None
        if job.key != folder.name:
            return f"job.json describes job {job.key}, not {folder.name}", None
        return None, JobRecord(job, predictions, info)

    def writable(self) -> bool:
        """Whether damaged entries can be moved aside here (a read-only store is only read)."""
        return os.access(self.runs, os.W_OK) and (
            os.access(self.quarantine, os.W_OK) if self.quarantine.exists()
            else os.access(self.root, os.W_OK))

    def _quarantine(self, folder: Path, reason: str) -> bool:
        """Moves a damaged entry aside; False (and noted in `unmoved`) where it cannot be."""
        if not self.writable():
            self.unmoved.append((folder, reason))
            return False
        target = self.quarantine / f"{folder.name}-{int(time.time())}-{os.getpid()}"
        try:
            self.quarantine.mkdir(parents=True, exist_ok=True)
            os.rename(folder, target)
        except FileNotFoundError:  # another process moved it first
            return False
        except OSError as error:
            self.unmoved.append((folder, f"{reason}; not moved: {error.strerror}"))
            return False
        (target / "QUARANTINED.txt").write_text(reason + "\n")
        self.quarantined.append((target, reason))
        return True

    def has(self, job: Job, keep: tuple[str, ...]) -> bool:
        """Whether the stored job holds the artefacts `keep` names (Store.KEPT)."""
        return all((self.job_dir(job) / KEPT[name]).is_file() for name in keep)

    def write(self, job: Job, predictions: Predictions, info: dict,
              extra: dict[str, str | bytes] | None = None) -> bool:
        """Stores a finished job (with `extra` files, name -> text or bytes: its training
        curves, kept artefacts); False if another process stored it first. A stored job
        without the artefacts a rerun keeps is replaced whole."""
        bad = non_finite_rows(predictions)
        if bad:
            raise NonFiniteResult(f"job {job.key} ({job.run_label}, fold {job.fold}): {bad}; "
                                  "a result is finite numbers or it is not stored")
        self.runs.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".tmp-{job.key}-{owner_tag()}", dir=self.runs))
        try:
            as_umask_allows(temp)
            _write_json(temp / "predictions.json", predictions.to_json())
            _write_json(temp / "info.json", info)
            (temp / "job.json").write_text(job.canonical())
            for name, content in (extra or {}).items():
                if isinstance(content, bytes):
                    (temp / name).write_bytes(content)
                else:
                    (temp / name).write_text(content)
            _write_json(temp / MANIFEST, {name: _digest(temp / name)
                                          for name in [*FILES, *(extra or {})]})
            target = self.job_dir(job)
            if target.is_dir() and not set(extra or {}) <= {p.name for p in target.iterdir()}:
                old = target.with_name(f".tmp-{job.key}-{owner_tag()}replaced")
                os.rename(target, old)  # the same result, without the artefacts now kept
                shutil.rmtree(old, ignore_errors=True)
            os.rename(temp, target)
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
        out = []
        for path in sorted(self.failures.glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # a damaged failure record says nothing; its job reruns anyway
        return out

    def records(self, read_only: bool = False) -> Iterator[JobRecord]:
        """Every stored job whole; a damaged one is quarantined (left in place if
        `read_only`: a plan only looks), never yielded."""
        if not self.runs.is_dir():
            return
        for folder in sorted(self.runs.iterdir()):
            if folder.name.startswith(".tmp-") or not folder.is_dir():
                continue
            problem, record = self._inspect(folder)
            if problem is None:
                yield record
            elif not read_only:
                self._quarantine(folder, problem)

    def record(self, job: Job) -> JobRecord | None:
        """The job as stored, read whole (None: not stored, or damaged, then quarantined)."""
        folder = self.job_dir(job)
        if not folder.is_dir():
            return None
        problem, record = self._inspect(folder)
        if problem:
            self._quarantine(folder, problem)
        return record

    def curves(self, job: Job) -> pd.DataFrame | None:
        """The job's training curves (step, loss, selection_accuracy), if it stored them."""
        path = self.job_dir(job) / CURVES
        return pd.read_csv(path) if path.is_file() else None

    def verify(self, repair: bool = False) -> list[tuple[Path, str, bool]]:
        """Every damaged entry of the store: (folder, why, moved). With `repair` each is
        quarantined where it can be (its job then runs again on the next run); `moved` says
        whether it was."""
        found = []
        if self.runs.is_dir():
            for folder in sorted(self.runs.iterdir()):
                if folder.is_dir() and not folder.name.startswith(".tmp-"):
                    problem = self.problem(folder)
                    if problem:
                        found.append((folder, problem,
                                      repair and self._quarantine(folder, problem)))
        return found

    def sweep_temporary(self, older_than_s: float = STALE_S) -> int:
        """Removes the temporary folders of killed writers (benchmark/storage/lifetimes.py): those of
        a process of this host that is gone, and any older than `older_than_s`; never a live
        writer's. Returns how many."""
        if not self.runs.is_dir():
            return 0
        stale = [p for p in self.runs.glob(".tmp-*") if p.is_dir() and is_stale(p, older_than_s)]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        return len(stale)
