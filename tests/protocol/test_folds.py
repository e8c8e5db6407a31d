"""LOSO folds: no subject on both sides, every sample tested exactly once."""

import numpy as np
import pytest

from mer_bench.benchmark.protocol.folds import fold_of, loso_folds


def test_loso_folds_partition_the_samples_by_subject():
    rng = np.random.default_rng(3)
    subjects = [f"casme2/sub{int(s):02d}" for s in rng.integers(1, 9, size=120)]
    subjects += ["samm/006", "smic/s1"]  # same-named subjects in other datasets stay apart
    folds = loso_folds(subjects)
    assert [f.subject for f in folds] == sorted(set(subjects))
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(subjects)))  # each sample exactly once
    for fold in folds:
        train_subjects = {subjects[i] for i in fold.train}
        test_subjects = {subjects[i] for i in fold.test}
        assert test_subjects == {fold.subject}
        assert fold.subject not in train_subjects
        assert len(fold.train) + len(fold.test) == len(subjects)


def test_fold_of_an_unknown_subject_names_the_known_ones():
    with pytest.raises(KeyError, match="casme2/sub01"):
        fold_of(["casme2/sub01"], "casme2/sub99")
