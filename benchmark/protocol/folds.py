"""Folds: one per key (a (dataset, subject) under LOSO, a dataset under leave one dataset out);
the samples of a key are tested together and never trained on in their fold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    """The held-out subject and the sample indices on each side."""

    subject: str
    train: np.ndarray
    test: np.ndarray


def loso_folds(subject_keys: list[str]) -> list[Fold]:
    """One fold per subject, in sorted order; a subject is never on both sides."""
    return [fold_of(subject_keys, subject) for subject in sorted(set(subject_keys))]


def fold_of(subject_keys: list[str], subject: str) -> Fold:
    """The fold of one key over each sample's key (TaskData.fold_keys)."""
    keys = np.asarray(subject_keys)
    if subject not in set(subject_keys):
        raise KeyError(f"no fold {subject!r} in this task; folds: {sorted(set(subject_keys))}")
    return Fold(subject, np.flatnonzero(keys != subject), np.flatnonzero(keys == subject))
