"""Confidence intervals and paired tests against brute-force computations on small cases."""

import itertools

import numpy as np
import pytest

from mer_bench.benchmark.stats.metrics import score
from mer_bench.benchmark.stats.uncertainty import (Pooled, bootstrap_ci, metrics_of, paired_p_value,
                                             subject_draws, subject_mean)

K = 3


def pooled(rng, subjects=4, clips=6, skill=0.6, labels=None) -> Pooled:
    names = tuple(f"d/s{i}" for i in range(subjects) for _ in range(clips))
    labels = rng.integers(0, K, len(names)) if labels is None else labels
    guess = np.where(rng.random(len(names)) < skill, labels, rng.integers(0, K, len(names)))
    return Pooled(labels, guess, names, K)


def brute(p: Pooled, subjects: list[str], predicted=None) -> np.ndarray:
    predicted = p.predicted if predicted is None else predicted
    index = np.concatenate([[i for i, s in enumerate(p.subjects) if s == subject]
                            for subject in subjects]).astype(int)
    s = score(p.labels[index], predicted[index], K)
    return np.array([s.uf1, s.uar, s.accuracy])


def test_metrics_of_a_confusion_matrix_are_the_megc_scores():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = pooled(rng)
        assert np.allclose(metrics_of(p.confusions(sorted(set(p.subjects))).sum(0)),
                           brute(p, sorted(set(p.subjects))))


def test_bootstrap_interval_is_the_percentile_of_subject_resamples_of_both_seeds():
    rng = np.random.default_rng(1)
    seeds = [pooled(rng), pooled(rng)]
    seeds[1] = Pooled(seeds[0].labels, seeds[1].predicted, seeds[0].subjects, K)
    subjects = sorted(set(seeds[0].subjects))
    weights = subject_draws(len(subjects), 200, seed=7)
    values = []
    for row in weights:  # each draw: every subject as many times as drawn, both seeds
        drawn = [s for s, n in zip(subjects, row) for _ in range(n)]
        values.append(np.mean([brute(p, drawn) for p in seeds], axis=0))
    low, high = np.percentile(values, [2.5, 97.5], axis=0)
    ci = bootstrap_ci(seeds, draws=200, seed=7)
    for i, metric in enumerate(("uf1", "uar", "accuracy")):
        assert ci[metric] == pytest.approx((low[i], high[i]))
        assert ci[metric][0] < ci[metric][1]
    assert bootstrap_ci(seeds, draws=200, seed=7) == ci  # seeded


def test_paired_p_value_is_exact_over_every_swap_of_four_subjects():
    rng = np.random.default_rng(2)
    a = pooled(rng, skill=0.8)
    b = Pooled(a.labels, pooled(rng, skill=0.3, labels=a.labels).predicted, a.subjects, K)
    subjects = sorted(set(a.subjects))
    observed = abs(brute(a, subjects)[0] - brute(b, subjects)[0])
    extreme = 0
    for pattern in itertools.product((False, True), repeat=4):
        swapped = {s for s, flip in zip(subjects, pattern) if flip}
        mask = np.array([s in swapped for s in a.subjects])
        first = np.where(mask, b.predicted, a.predicted)
        second = np.where(mask, a.predicted, b.predicted)
        extreme += abs(brute(a, subjects, first)[0] - brute(b, subjects, second)[0]) >= observed
    assert paired_p_value([a], [b]) == pytest.approx(extreme / 16)
    assert paired_p_value([a], [a]) == 1.0


def test_a_clearly_better_method_on_many_subjects_has_a_small_p():
    rng = np.random.default_rng(3)
    a = pooled(rng, subjects=20, skill=0.95)
    b = Pooled(a.labels, pooled(rng, subjects=20, skill=0.2, labels=a.labels).predicted,
               a.subjects, K)
    p = paired_p_value([a], [b], draws=2000, seed=0)
    assert p < 0.01 and p == paired_p_value([a], [b], draws=2000, seed=0)
    with pytest.raises(ValueError, match="same clips"):
        paired_p_value([a], [pooled(rng, subjects=20)])


def test_subject_mean_averages_each_subjects_own_scores():
    rng = np.random.default_rng(4)
    p = pooled(rng)
    by_subject = [brute(p, [s]) for s in sorted(set(p.subjects))]
    expected = np.mean(by_subject, axis=0)
    assert list(subject_mean([p]).values()) == pytest.approx(list(expected))
