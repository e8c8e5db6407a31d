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


def select_folds(folds: list[str], chosen: tuple[str, ...], task: str) -> list[str]:
    """The folds of `task` that `run --folds` keeps, in the task's order: an entry `N` keeps
    the first N folds, a name keeps the fold of that name (`casme2/sub01`) or of that held-out
    subject (`sub01`). A name that is no fold of the task is refused, naming the folds."""
    kept: set[str] = set()
    for entry in chosen:
        if entry.isdigit():
            kept.update(folds[:int(entry)])
            continue
        named = [f for f in folds if entry in (f, f.rsplit("/", 1)[-1])]
        if not named:
            raise ValueError(f"--folds {entry}: task {task} has no such fold; its folds: "
                             f"{', '.join(folds)}")
        kept.update(named)
    return [f for f in folds if f in kept]
