"""Metrics as MEGC 2019 defines them, over predictions pooled across all folds.

Per class c: F1 = 2TP / (2TP + FP + FN), recall = TP / N_c; UF1 and UAR are their unweighted
means over the task's classes. (The SKD-TSTSAN paper prints F1 = 2TP / (TP + FP + FN), a typo
of MEGC's formula; the harness uses MEGC's.) A class with no samples and no predictions scores 0 (as
scikit-learn's zero_division=0), so a table never silently averages over fewer classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scores:
    uf1: float
    uar: float
    accuracy: float
    f1: tuple[float, ...]
    recall: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted class

    def as_dict(self) -> dict:
        return {"uf1": self.uf1, "uar": self.uar, "accuracy": self.accuracy,
                "f1": list(self.f1), "recall": list(self.recall),
                "confusion": [list(row) for row in self.confusion]}


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def score(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> Scores:
    matrix = confusion_matrix(labels, predictions, num_classes)
    true_positive = np.diag(matrix).astype(np.float64)
    per_class = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    f1_denominator = per_class + predicted  # = 2TP + FP + FN
    f1 = np.divide(2 * true_positive, f1_denominator, out=np.zeros(num_classes),
                   where=f1_denominator > 0)
    recall = np.divide(true_positive, per_class, out=np.zeros(num_classes), where=per_class > 0)
    return Scores(
        uf1=float(f1.mean()),
        uar=float(recall.mean()),
        accuracy=float(true_positive.sum() / max(matrix.sum(), 1)),
        f1=tuple(float(v) for v in f1),
        recall=tuple(float(v) for v in recall),
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
    )
