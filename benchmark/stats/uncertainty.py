"""Uncertainty of pooled LOSO scores, as pure functions of stored predictions.

The unit that varies is the subject (the LOSO fold), not the clip: clips of one subject are
not independent. So the confidence interval resamples subjects with replacement (all clips of
a drawn subject, pooled as MEGC 2019 pools folds), and the paired test of two methods on the
same folds swaps the two methods' predictions subject by subject (a permutation test: under
"no difference", either method's predictions of a subject are as likely to be either's). With
several seeds, each draw scores every seed's predictions and averages them, so the interval is
that of the seed mean. Draws are seeded: the same predictions give the same numbers.

The mean of per-subject scores, which some papers report, is here as `subject_mean`, named
wherever it is shown and never the default.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

METRICS = ("uf1", "uar", "accuracy")
DRAWS = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Pooled:
    """One seed's predictions of a run, every fold pooled: true and predicted class and the
    subject (fold) of each clip, and the clips' keys where known (`on_clips` pairs two runs
    on the clips both cover)."""

    labels: np.ndarray
    predicted: np.ndarray
    subjects: tuple[str, ...]
    num_classes: int
    clips: tuple[str, ...] = ()

    def on_clips(self, clips: set[str]) -> "Pooled":
        """Only these clips, in this run's order."""
        keep = np.array([c in clips for c in self.clips], dtype=bool)
        return Pooled(self.labels[keep], self.predicted[keep],
                      tuple(s for s, k in zip(self.subjects, keep) if k), self.num_classes,
                      tuple(c for c, k in zip(self.clips, keep) if k))

    def confusions(self, subjects: list[str]) -> np.ndarray:
        """(subjects, K, K) confusion matrix of each subject's clips, in `subjects` order."""
        where = {s: i for i, s in enumerate(subjects)}
        counts = np.zeros((len(subjects), self.num_classes, self.num_classes))
        np.add.at(counts, ([where[s] for s in self.subjects], self.labels, self.predicted), 1)
        return counts


def metrics_of(confusion: np.ndarray) -> np.ndarray:
    """(..., K, K) confusion matrices -> (..., 3): UF1, UAR, accuracy as metrics.score."""
    true_positive = np.diagonal(confusion, axis1=-2, axis2=-1)
    per_class, predicted = confusion.sum(-1), confusion.sum(-2)
    denominator = per_class + predicted
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive),
                   where=denominator > 0)
    recall = np.divide(true_positive, per_class, out=np.zeros_like(true_positive),
                       where=per_class > 0)
    accuracy = true_positive.sum(-1) / np.maximum(confusion.sum((-2, -1)), 1)
    return np.stack([f1.mean(-1), recall.mean(-1), accuracy], axis=-1)


def _subjects(seeds: list[Pooled]) -> list[str]:
    return sorted(set(seeds[0].subjects))


def subject_draws(count: int, draws: int, seed: int) -> np.ndarray:
    """(draws, count): how many times each subject is drawn in each resample (with
    replacement, `count` draws per resample)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, count, (draws, count))
    return np.stack([np.bincount(row, minlength=count) for row in picks])


def bootstrap_ci(seeds: list[Pooled], draws: int = DRAWS, seed: int = 0,
                 level: float = LEVEL) -> dict[str, tuple[float, float]]:
    """Percentile interval of each metric (fractions) over subject resamples."""
    subjects = _subjects(seeds)
    weights = subject_draws(len(subjects), draws, seed)
    values = np.mean([metrics_of(np.einsum("ds,skl->dkl", weights, s.confusions(subjects)))
                      for s in seeds], axis=0)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return {m: (float(low[i]), float(high[i])) for i, m in enumerate(METRICS)}


def difference_ci(a: list[Pooled], b: list[Pooled], metric: str = "uf1", draws: int = DRAWS,
                  seed: int = 0, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval (fractions) of a's metric less b's over subject resamples, the
    same subjects drawn for both (paired: `a` and `b` hold the same clips in the same folds,
    one entry per seed, paired by position)."""
    _check_paired(a, b)
    subjects, column = _subjects(a), METRICS.index(metric)
    weights = subject_draws(len(subjects), draws, seed)

    def resampled(seeds: list[Pooled]) -> np.ndarray:
        return np.mean([metrics_of(np.einsum("ds,skl->dkl", weights, s.confusions(subjects)))
                        [:, column] for s in seeds], axis=0)

    values = resampled(a) - resampled(b)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def on_shared_clips(a: list[Pooled], b: list[Pooled]) -> tuple[list[Pooled], list[Pooled]]:
    """Both runs' seeds on the clips both cover, in one order: where one run lacks clips the
    other has (a published log of 435 of 442 clips), the comparison is on the 435. Runs
    without clip keys are returned as they are."""
    if not all(p.clips for p in [*a, *b]):
        return a, b
    shared = set.intersection(*(set(p.clips) for p in [*a, *b]))
    order = [c for c in a[0].clips if c in shared]

    def ordered(pooled: Pooled) -> Pooled:
        kept = pooled.on_clips(shared)
        where = {c: i for i, c in enumerate(kept.clips)}
        index = np.array([where[c] for c in order], dtype=int)
        return Pooled(kept.labels[index], kept.predicted[index],
                      tuple(kept.subjects[i] for i in index), kept.num_classes, tuple(order))

    return [ordered(p) for p in a], [ordered(p) for p in b]


def _check_paired(a: list[Pooled], b: list[Pooled]) -> None:
    for x, y in zip(a, b, strict=True):
        if x.subjects != y.subjects or not np.array_equal(x.labels, y.labels):
            raise ValueError("a paired comparison needs both runs' predictions of the same "
                             "clips in the same folds")


def swap_patterns(count: int, draws: int, seed: int) -> np.ndarray:
    """(patterns, count): which subjects swap their two methods' predictions: every pattern
    where 2**count is at most `draws` (the test is then exact), else `draws` seeded ones."""
    if 2 ** count <= draws:
        return np.array(list(itertools.product((0, 1), repeat=count)), dtype=float)
    return np.random.default_rng(seed).integers(0, 2, (draws, count)).astype(float)


def paired_p_value(a: list[Pooled], b: list[Pooled], metric: str = "uf1", draws: int = DRAWS,
                   seed: int = 0) -> float:
    """Two-sided p of "a and b score the same" by swapping their predictions per subject.

    `a` and `b`: the same clips in the same folds (one entry per seed, paired by position)."""
    _check_paired(a, b)
    subjects, column = _subjects(a), METRICS.index(metric)
    swap = swap_patterns(len(subjects), draws, seed)
    differences, observed = [], []
    for x, y in zip(a, b):
        cx, cy = x.confusions(subjects), y.confusions(subjects)
        total_x, total_y = cx.sum(0), cy.sum(0)
        first = np.einsum("ps,skl->pkl", 1 - swap, cx) + np.einsum("ps,skl->pkl", swap, cy)
        second = total_x + total_y - first  # each subject's clips are in one or the other
        differences.append(metrics_of(first)[:, column] - metrics_of(second)[:, column])
        observed.append(metrics_of(total_x)[column] - metrics_of(total_y)[column])
    difference = np.mean(differences, axis=0)
    observed = abs(float(np.mean(observed)))
    extreme = int((np.abs(difference) >= observed - 1e-12).sum())
    exact = 2 ** len(subjects) <= draws
    return extreme / len(swap) if exact else (extreme + 1) / (len(swap) + 1)


def subject_mean(seeds: list[Pooled]) -> dict[str, float]:
    """The mean over subjects of each subject's own scores (averaged over seeds): what some
    papers report instead of MEGC's pooled scores; never the default here."""
    subjects = _subjects(seeds)
    means = np.mean([metrics_of(s.confusions(subjects)).mean(0) for s in seeds], axis=0)
    return {m: float(means[i]) for i, m in enumerate(METRICS)}
