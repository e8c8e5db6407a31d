"""Pretraining checkpoints (e.g. CK+ before micro-expressions): cached, keyed artefacts.

A checkpoint is trained once on every sample of its task and reused by every fold and every
task that starts from it. Its key hashes the method, its options, the pretraining task's
data, budget and seed, like a job's. A lock file makes parallel workers wait for the one that
trains it instead of training it twice; the file appears by an atomic rename.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.storage.lifetimes import as_umask_allows

ALL_SUBJECTS = "(all subjects)"


def pretraining_job(job: Job, data_digest: str) -> Job:
    """The job that trains the checkpoint a fold job starts from."""
    versions = dict(job.versions)
    return Job(method=job.method, task=job.pretrain, fold=ALL_SUBJECTS, seed=job.seed,
               budget=job.pretrain_budget, options=job.options, precision=job.precision,
               versions=(("method", versions["method"]), ("preprocess", versions["preprocess"]),
                         ("data", data_digest)))


def checkpoint_path(results: Path, job: Job) -> Path:
    return Path(results) / "checkpoints" / f"{job.key}.pt"


def ensure_checkpoint(results: Path, job: Job, train) -> Path:
    """The checkpoint of pretraining `job`, calling `train()` -> state dict only if absent."""
    import torch

    path = checkpoint_path(results, job)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even on a crash
        if path.exists():
            return path
        state = train()
        handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(handle)
        try:
            as_umask_allows(Path(temp), folder=False)
            torch.save(state, temp)
            os.replace(temp, path)
        finally:
            Path(temp).unlink(missing_ok=True)
        path.with_suffix(".json").write_text(job.canonical())
    return path
