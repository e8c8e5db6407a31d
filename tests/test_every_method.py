"""Every registered method, found in the registry (not a hand-kept list): it reads exactly the
views it declares, predicts every test sample, and a torch model's loss falls on a fixed batch."""

import numpy as np
import pytest
import torch

from mer_bench.datasets import VIEWS
from mer_bench.datasets.views import build_view
from mer_bench.methods import METHODS
from mer_bench.methods.base import FitContext, Split
from mer_bench.methods.training import TorchMethod, pick_device

NAMES = METHODS.names()
CLASSES = 5


class RecordingViews(dict):
    """A views dict that remembers which views were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, name):
        self.read.add(name)
        return super().__getitem__(name)


def splits(method, samples):
    bundles, labels, subjects, keys = samples
    views = {name: build_view(name, bundles) for name in method.views}
    test = np.array([s == subjects[0] for s in subjects])

    def side(mask, with_labels):
        return Split(RecordingViews({n: v[mask] for n, v in views.items()}),
                     labels[mask] if with_labels else None,
                     tuple(np.array(subjects)[mask]), tuple(np.array(keys)[mask]))

    return side(~test, True), side(test, False)


def test_the_registry_holds_the_paper_baselines():
    assert {"tscnn", "off_apexnet", "htnet", "lbp_top_svm", "timm_apex", "ststnet",
            "skd_tstsan"} <= set(NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_reads_exactly_its_declared_views_and_predicts_every_test_sample(name, synthetic_samples):
    method = METHODS.build(name)
    assert set(method.views) <= set(VIEWS.names()), f"{name} declares a view that does not exist"
    train, test = splits(method, synthetic_samples)
    logits = method.fit_predict(train, test, FitContext(CLASSES, seed=0, budget=2))
    assert next(iter(logits)) == "final"
    for head in logits.values():
        assert head.shape == (len(test), CLASSES) and np.isfinite(head).all()
    assert train.views.read == set(method.views) and test.views.read == set(method.views)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NAMES if isinstance(METHODS.build(n), TorchMethod)])
def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(name, synthetic_samples):
    method = METHODS.build(name)
    train, _ = splits(method, synthetic_samples)
    inputs, labels = method.inputs(train), train.labels
    torch.manual_seed(0)
    model = method.build_model(CLASSES).to(memory_format=method.memory_format)
    weights = torch.full((CLASSES,), 1 / CLASSES)
    targets = torch.as_tensor(labels)

    def loss_on_the_batch() -> float:
        torch.manual_seed(1)  # the same dropout masks each time
        with torch.no_grad():
            return method.loss(model.train(), inputs.contiguous(memory_format=method.memory_format),
                               targets, weights).item()

    before = loss_on_the_batch()
    method.fit(model, inputs, labels, CLASSES, iterations=5, seed=0, device=pick_device("cpu"))
    after = loss_on_the_batch()
    assert np.isfinite(before) and after < before
    heads = model.eval()(inputs[:2].contiguous(memory_format=method.memory_format))
    heads = heads if isinstance(heads, dict) else {"final": heads}
    assert all(h.shape == (2, CLASSES) for h in heads.values())
