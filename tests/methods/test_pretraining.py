"""Pretraining checkpoints: trained once, keyed, reused; transfer loads all but the heads."""

import pytest
import torch

from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.runner import run_grid
from mer_bench.benchmark.storage.store import Store
from mer_bench.methods import METHODS


def test_transfer_loads_every_weight_but_the_three_final_linear_layers(tmp_path):
    method = METHODS.build("skd_tstsan")
    torch.manual_seed(0)
    source = method.build_model(7)
    torch.save(source.state_dict(), tmp_path / "ck.pt")
    torch.manual_seed(1)
    target = method.build_model(5)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    method.start_from(target, str(tmp_path / "ck.pt"))
    heads = {k for k in fresh if k.startswith(("classifier.", "auxiliary_classifiers."))}
    assert heads == {"classifier.linear.weight", "classifier.linear.bias",
                     *(f"auxiliary_classifiers.{i}.linear.{p}" for i in (0, 1)
                       for p in ("weight", "bias"))}
    for name, value in target.state_dict().items():
        expected = fresh[name] if name in heads else source.state_dict()[name]
        assert torch.equal(value, expected), name


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    torch.save(METHODS.build("ststnet.paper").build_model(7).state_dict(), tmp_path / "other.pt")
    method = METHODS.build("skd_tstsan")
    with pytest.raises(ValueError, match="does not fit"):
        method.start_from(method.build_model(5), str(tmp_path / "other.pt"))


@pytest.mark.slow
def test_folds_start_from_one_cached_checkpoint_of_the_macro_set(results):
    config = RunConfig(results=results, progress=False)
    spec = MethodSpec.make("ststnet.paper", budget=5, pretrain="synthetic_macro-5", pretrain_budget=20)
    summary = run_grid(Grid((spec,), ("synthetic-5",)), config)
    assert summary.ran == 10 and not summary.failed
    checkpoints = list((results / "checkpoints").glob("*.pt"))
    assert len(checkpoints) == 1  # one pretraining for all ten folds
    state = torch.load(checkpoints[0], weights_only=True)
    assert state["classifier.weight"].shape[0] == 5  # the macro set's own five classes
    stamp = checkpoints[0].stat().st_mtime_ns
    records = list(Store(results).records())
    assert all(r.job.pretrain == "synthetic_macro-5" for r in records)
    assert all("pretrain_data" in dict(r.job.versions) for r in records)
    assert records[0].job.run_label == "ststnet.paper[pretrain=synthetic_macro-5:20]"

    other = MethodSpec.make("ststnet.paper", budget=6, pretrain="synthetic_macro-5", pretrain_budget=20)
    assert run_grid(Grid((other,), ("synthetic-5",)), config).ran == 10
    assert list((results / "checkpoints").glob("*.pt")) == checkpoints  # reused, not retrained
    assert checkpoints[0].stat().st_mtime_ns == stamp


def test_a_method_that_cannot_pretrain_is_refused_at_planning(results):
    """Pretraining is a capability the method declares (it implements `pretrain`)."""
    from mer_bench.benchmark.execution.planning import plan

    assert METHODS.build("skd_tstsan").can_pretrain()
    assert not METHODS.build("majority").can_pretrain()
    grid = Grid((MethodSpec.make("majority", pretrain="synthetic_macro-5", pretrain_budget=2),),
                ("synthetic-5",))
    with pytest.raises(ValueError, match="majority cannot be pretrained"):
        plan(grid, RunConfig(results=results, progress=False))
