"""One line per finished fold, as the authors' per-subject scripts print them: the held-out
subject, the fold's final training loss and test accuracy, and the UF1 / UAR of the run's
predictions pooled over the folds finished so far. Printed unless --quiet, and always kept in
a log file of the command (RESULTS/logs/), which the harness names new and never reuses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.stats.metrics import score
from mer_bench.benchmark.storage.store import Store

LOSS_STEPS = 10  # the loss shown: the mean of a fold's last steps (one step's is noisy)


class FoldLog:
    def __init__(self, store: Store, results: Path, folds_of: dict[str, int]):
        """`folds_of`: each run's (Job.run_key) fold count, for "k of n"."""
        self.store, self.folds_of = store, folds_of
        self.pooled: dict[str, tuple[list, list, int]] = {}
        self.path = Path(results) / "logs" / (time.strftime("run-%Y%m%d-%H%M%S")
                                              + f"-{os.getpid()}.log")
        self._file = None

    def line(self, job: Job) -> str | None:
        """The finished fold's line (None where its stored record cannot be read)."""
        record = self.store.record(job)
        if record is None:
            return None
        predictions = record.predictions
        predicted = predictions.logits["final"].argmax(1)
        run = job.run_key
        labels, guesses, count = self.pooled.get(run, ([], [], 0))
        labels, guesses = labels + list(predictions.labels), guesses + list(predicted)
        self.pooled[run] = (labels, guesses, count + 1)
        pooled = score(np.array(labels), np.array(guesses), len(predictions.classes))
        accuracy = record.info["fold_scores"]["accuracy"]
        curves = self.store.curves(job)
        loss = ("" if curves is None or curves.empty else
                f"train loss {curves['loss'].tail(LOSS_STEPS).mean():.4f}, ")
        total = self.folds_of.get(run)
        return (f"{job.run_label} {job.task} seed {job.seed} fold {job.fold}: {loss}test acc "
                f"{accuracy:.4f} ({len(predicted)} clips); pooled over {count + 1}"
                f"{f' of {total}' if total else ''} folds so far: UF1 {pooled.uf1:.4f}, "
                f"UAR {pooled.uar:.4f}")

    def write(self, text: str) -> None:
        """Appends to the command's log; a log that cannot be written costs nothing else."""
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "x", encoding="utf-8")  # new, never another's
            self._file.write(text + "\n")
            self._file.flush()
        except OSError:
            pass

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
