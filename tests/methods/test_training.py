"""The shared loop: selection rules and epoch selection."""

import numpy as np
import pytest
import torch

from mer_bench.methods.base import FitContext, Split
from mer_bench.methods.batches import class_weights
from mer_bench.methods.training import EpochSelector, TorchMethod, validation_split


def test_validation_split_takes_whole_training_subjects():
    subjects = tuple(f"d/s{i % 10}" for i in range(100))
    keep, held = validation_split(subjects, seed=4)
    held_subjects = {subjects[i] for i in held}
    assert len(held_subjects) == 2  # a fifth of ten
    assert not held_subjects & {subjects[i] for i in keep}
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(100))
    assert validation_split(subjects, seed=4)[1].tolist() == held.tolist()  # seeded


def test_class_weights_are_inverse_frequency_summing_to_one():
    weights = class_weights(np.array([0, 0, 0, 1, 2, 2]), 4).numpy()
    assert weights == pytest.approx(np.array([1 / 3, 1, 1 / 2, 0]) / (1 / 3 + 1 + 1 / 2))


class Linear(TorchMethod):
    views = ("x",)

    def build_model(self, num_classes):
        return torch.nn.Linear(2, num_classes)


def blobs(n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = (rng.normal(size=(n, 2)) + 8 * labels[:, None]).astype(np.float32)  # separable
    return x, labels


def test_oracle_selection_stops_at_perfect_test_accuracy():
    x, y = blobs()
    method = Linear()
    selector = EpochSelector(torch.from_numpy(x), y)
    torch.manual_seed(0)
    model = method.fit(method.build_model(2), torch.from_numpy(x), y, 2, 2000, 0,
                       torch.device("cpu"), selector)
    assert selector.best_accuracy == 1.0
    assert selector.best_iteration < 2000  # stopped as soon as it was perfect
    assert (model(torch.from_numpy(x)).argmax(1).numpy() == y).all()


def test_epoch_selector_prefers_the_later_epoch_on_ties():
    x, y = blobs(8)
    selector = EpochSelector(torch.from_numpy(x), y)
    model = torch.nn.Linear(2, 2)
    selector.observe(model, torch.device("cpu"), 10)
    with torch.no_grad():
        model.bias += 0.0  # same predictions, later epoch
    selector.observe(model, torch.device("cpu"), 20)
    assert selector.best_iteration == 20


def test_only_the_oracle_rule_reads_test_labels():
    x, y = blobs()
    train = Split({"x": x[:48]}, y[:48], tuple(f"d/s{i % 6}" for i in range(48)), ("c",) * 48)
    test = Split({"x": x[48:]}, None, ("d/s9",) * 16, ("c",) * 16)
    for rule in ("last", "val"):
        logits = Linear().fit_predict(train, test, FitContext(2, seed=0, budget=20, selection=rule))
        assert logits["final"].shape == (16, 2)
    with pytest.raises(ValueError, match="oracle rule selects on the held-out labels"):
        Linear().fit_predict(train, test, FitContext(2, seed=0, budget=20, selection="oracle"))
