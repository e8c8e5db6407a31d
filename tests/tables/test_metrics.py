"""UF1/UAR as MEGC 2019 defines them, checked against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, recall_score

from mer_bench.benchmark.stats.metrics import score


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_scikit_learn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    classes = 5
    labels = rng.integers(0, classes, size=200)
    predictions = np.where(rng.random(200) < 0.4, labels, rng.integers(0, classes, size=200))
    result = score(labels, predictions, classes)
    everyone = list(range(classes))
    assert result.uf1 == pytest.approx(f1_score(labels, predictions, average="macro",
                                                labels=everyone, zero_division=0))
    assert result.uar == pytest.approx(recall_score(labels, predictions, average="macro",
                                                    labels=everyone, zero_division=0))
    assert np.array_equal(np.array(result.confusion),
                          confusion_matrix(labels, predictions, labels=everyone))


def test_pooling_over_folds_where_a_test_subject_lacks_a_class():
    rng = np.random.default_rng(7)
    # Three folds; fold 0's subject has no class-2 sample, fold 2's none of class 0.
    folds = [rng.choice([0, 1], 30), rng.integers(0, 3, 40), rng.choice([1, 2], 25)]
    guesses = [np.where(rng.random(len(f)) < 0.5, f, rng.integers(0, 3, len(f))) for f in folds]
    labels, predictions = np.concatenate(folds), np.concatenate(guesses)
    pooled = score(labels, predictions, 3)
    assert pooled.uf1 == pytest.approx(f1_score(labels, predictions, average="macro"))
    assert pooled.uar == pytest.approx(recall_score(labels, predictions, average="macro"))
    # Pooling is not the mean of per-fold scores: the MEGC definition is the pooled one.
    per_fold = np.mean([score(f, g, 3).uf1 for f, g in zip(folds, guesses)])
    assert pooled.uf1 != pytest.approx(per_fold)


def test_class_never_seen_nor_predicted_scores_zero_like_scikit_learn():
    labels = np.array([0, 0, 1, 1])
    predictions = np.array([0, 1, 1, 1])
    result = score(labels, predictions, 3)
    assert result.recall[2] == 0.0 and result.f1[2] == 0.0
    assert result.uar == pytest.approx(recall_score(labels, predictions, average="macro",
                                                    labels=[0, 1, 2], zero_division=0))
