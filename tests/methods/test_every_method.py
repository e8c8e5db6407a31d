"""Every registered method, found in the registry (not a hand-kept list): it keeps the method
contract (benchmark/tools/contract.py), and a torch model's loss falls on a fixed batch."""

import numpy as np
import pytest
import torch

from mer_bench.benchmark.tools.contract import ContractFold, check_method, fold_splits
from mer_bench.methods import METHODS
from mer_bench.methods.training import TorchMethod, pick_device

NAMES = METHODS.names()
CLASSES = 5


@pytest.fixture(scope="module")
def fold(synthetic_samples) -> ContractFold:
    return ContractFold(*synthetic_samples, num_classes=CLASSES)


def test_the_registry_holds_the_paper_baselines():
    assert {"tscnn", "off_apexnet", "htnet", "lbp_top_svm", "timm_apex", "ststnet",
            "skd_tstsan"} <= set(NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_keeps_the_method_contract(name, fold):
    """Views registered and read exactly, finite logits per head, deterministic, no held-out
    labels read (benchmark/tools/contract.py, what `check-plugin` runs)."""
    checks = check_method(name, fold)
    assert len(checks) == 6 and [c for c in checks if not c.passed] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NAMES if isinstance(METHODS.build(n), TorchMethod)])
def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(name, fold):
    method = METHODS.build(name)
    train, _ = fold_splits(method, fold)
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
