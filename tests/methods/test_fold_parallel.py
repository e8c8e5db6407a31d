"""Fold-parallel training computes what sequential training computes, fold by fold."""

import copy

import numpy as np
import pytest
import torch

from mer_bench.methods import METHODS
from mer_bench.methods.fold_parallel import FoldData, train_folds
from mer_bench.methods.training import pick_device

CPU = pick_device("cpu")


def no_dropout(model):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def folds_of(shape, sizes, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return [FoldData(torch.rand(n, *shape, generator=generator, dtype=dtype),
                     np.arange(n) % 5, seed=100 + k) for k, n in enumerate(sizes)]


@pytest.mark.parametrize("name,shape,sizes,batch", [
    ("ststnet.shared", (3, 28, 28), [40, 37, 45], 32), ("skd_tstsan", (38, 48, 48), [6, 7], 4)])
def test_weights_after_a_few_steps_match_sequential_training_per_fold(name, shape, sizes, batch):
    # In float64, so that the comparison is not swamped by Adam turning float32 rounding in
    # near-zero gradients into full-size steps; SKD-TSTSAN at batch 4 (its steps are costly).
    method = METHODS.build(name).with_recipe({"batch_size": batch})
    folds = folds_of(shape, sizes, dtype=torch.float64)
    models = []
    for fold in folds:
        torch.manual_seed(fold.seed)
        models.append(no_dropout(method.build_model(5)).double())
    sequential = [method.fit(copy.deepcopy(m).to(memory_format=method.memory_format),
                             f.inputs, f.labels, 5, 2, f.seed, CPU)
                  for m, f in zip(models, folds)]
    parallel = train_folds(method, [copy.deepcopy(m) for m in models], folds, 5, 2, CPU)
    for alone, together in zip(sequential, parallel):
        a, b = alone.state_dict(), together.state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key], b[key], rtol=1e-7, atol=1e-9), key
    moved = [not torch.equal(a, b) for a, b in zip(models[0].state_dict().values(),
                                                    parallel[0].state_dict().values())]
    assert any(moved)  # it did train


def test_with_dropout_each_fold_draws_its_own_masks():
    method = METHODS.build("skd_tstsan").with_recipe({"batch_size": 4})
    fold = folds_of((38, 48, 48), [8])[0]
    torch.manual_seed(0)
    model = method.build_model(5)
    twins = [copy.deepcopy(model), copy.deepcopy(model)]
    trained = train_folds(method, twins, [fold, fold], 5, 2, CPU)
    weight = "classifier.linear.weight"
    assert not torch.allclose(trained[0].state_dict()[weight], trained[1].state_dict()[weight])
    twins = [no_dropout(copy.deepcopy(model)), no_dropout(copy.deepcopy(model))]
    trained = train_folds(method, twins, [fold, fold], 5, 2, CPU)
    assert torch.allclose(trained[0].state_dict()[weight], trained[1].state_dict()[weight])


def test_folds_smaller_than_a_batch_are_refused():
    method = METHODS.build("skd_tstsan")
    with pytest.raises(ValueError, match="one by one"):
        train_folds(method, [method.build_model(5)] * 2, folds_of((38, 48, 48), [40, 8]), 5, 1,
                    CPU)


@pytest.mark.slow
def test_the_runner_trains_a_runs_folds_together_with_the_sequential_results(results, tmp_path):
    """STSTNet has no dropout: fold-parallel and sequential give the same predictions."""
    import shutil

    from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.execution.runner import run_grid
    from mer_bench.benchmark.storage.store import Store

    alone = tmp_path / "alone"
    shutil.copytree(results, alone)
    grid = Grid((MethodSpec.make("ststnet.paper", budget=8), MethodSpec.make("majority")),
                ("synthetic-5",))
    together = run_grid(grid, RunConfig(results=results, progress=False, fold_parallel=4))
    sequential = run_grid(grid, RunConfig(results=alone, progress=False))
    assert together.ran == sequential.ran == 20 and not together.failed
    pairs = {}
    for root in (results, alone):
        for record in Store(root).records():
            pairs.setdefault(record.job.key, []).append(record)
    assert len(pairs) == 20 and all(len(p) == 2 for p in pairs.values())
    groups = sorted(r[0].info["timings"]["fold_parallel"] for r in pairs.values()
                    if r[0].job.method == "ststnet.paper")
    assert groups == [2, 2] + [4] * 8  # 10 folds in groups of 4, 4 and 2
    for first, second in pairs.values():
        assert np.allclose(first.predictions.logits["final"], second.predictions.logits["final"],
                           rtol=1e-3, atol=1e-4)


def test_bench_prints_both_modes_and_their_ratio(capsys):
    from mer_bench.benchmark.cli import main

    assert main(["bench", "--folds", "1", "--steps", "1", "--device", "cpu", "--speed", ""]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| cpu")]
    assert [r.split("|")[3].strip() for r in rows] == ["sequential", "fold-parallel"]
    assert all(float(r.split("|")[4]) > 0 for r in rows)
    assert "fold-parallel / sequential" in out
    assert "SKD-TSTSAN training, batch 16" in out  # the flagship, by default


def test_bench_times_the_method_it_is_given_and_refuses_one_it_cannot(capsys):
    from mer_bench.benchmark.cli import main

    assert main(["bench", "--method", "off_apexnet", "--folds", "1", "--steps", "1", "--device",
                 "cpu", "--speed", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "OFF-ApexNet training, batch 32" in out and "OFF-ApexNet, one fold's training" in out
    assert main(["bench", "--method", "majority", "--folds", "1", "--speed", ""]) == 2
    assert "majority cannot be timed by bench" in capsys.readouterr().err


def test_auto_fold_parallel_is_sequential_on_cpu_and_fills_a_gpu_by_measured_memory():
    from mer_bench.benchmark.execution.one_job import HEADROOM, auto_fold_parallel

    assert auto_fold_parallel("cpu", 1e6) == 1
    gib = 2**30
    assert auto_fold_parallel("cuda", 3 * gib, free=80 * gib) == int(0.8 * 80 / (HEADROOM * 3))
    assert auto_fold_parallel("cuda", 0.1 * gib, free=80 * gib) == 32  # at most 32
    assert auto_fold_parallel("cuda", 3 * gib, free=2 * gib) == 1  # at least 1


def without_activations(method, inputs, batch):
    from mer_bench.methods.fold_parallel import fold_memory_bytes
    from mer_bench.methods.training import Recipe

    method.recipe = Recipe(batch_size=batch)
    total = fold_memory_bytes(method, inputs, 5)
    parameters = sum(p.numel() for p in method.build_model(5).parameters()) * 4
    return total, total - 4 * parameters - inputs[:1].nbytes * batch


def test_fold_memory_counts_weights_adam_and_the_activations_of_a_step():
    method = METHODS.build("ststnet.shared")
    inputs = torch.rand(40, 3, 28, 28)
    total16, saved16 = without_activations(method, inputs, 16)
    total32, saved32 = without_activations(method, inputs, 32)
    assert saved16 > 0 and saved32 == pytest.approx(2 * saved16, rel=0.02)  # per sample
    assert total32 > total16
    skd = METHODS.build("skd_tstsan")
    _, saved = without_activations(skd, torch.rand(20, 38, 48, 48), 16)
    # SKD-TSTSAN keeps about 20 MB a sample for its backward (three streams, the ACs):
    assert 100e6 < saved < 600e6


def test_fold_groups_take_each_runs_own_size():
    from mer_bench.benchmark.protocol.jobs import Job
    from mer_bench.benchmark.execution.one_job import fold_groups

    jobs = [Job(name, "synthetic-5", f"synthetic/sub{k:02d}") for name in ("ststnet.shared", "tscnn")
            for k in range(1, 8)]
    sizes = {"ststnet.shared": 3, "tscnn": 7}
    groups = fold_groups(jobs, lambda job, method: sizes[job.method])
    assert [len(g) for g in groups] == [3, 3, 1, 7]
    assert {j.method for j in groups[-1]} == {"tscnn"}


def test_auto_on_a_gpu_sizes_each_run_from_its_methods_measured_memory(results, monkeypatch):
    """The wiring of `--fold-parallel auto` on a GPU, with the GPU faked: 16 GiB free."""
    from functools import partial

    from mer_bench.methods import training as training_module
    from mer_bench.benchmark.protocol.jobs import Job
    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.execution.one_job import HEADROOM, auto_size, fold_groups
    from mer_bench.methods.fold_parallel import fold_memory_bytes

    monkeypatch.setattr(training_module, "pick_device", lambda requested=None:
                        torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (16 * 2**30, 80 * 2**30))
    config = RunConfig(results=results, progress=False)
    jobs = [Job(name, "synthetic-5", f"synthetic/sub{k:02d}") for name in ("skd_tstsan", "ststnet.shared")
            for k in range(1, 11)]
    groups = fold_groups(jobs, partial(auto_size, config=config))
    per_fold = HEADROOM * fold_memory_bytes(METHODS.build("skd_tstsan"),
                                            torch.rand(20, 38, 48, 48), 5)
    assert 10 <= int(0.8 * 16 * 2**30 / per_fold) < 32  # SKD-TSTSAN: about 24 folds in 16 GiB
    assert [len(g) for g in groups] == [10, 10]  # both runs fit whole (10 folds each)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * 2**30, 80 * 2**30))
    sizes = [len(g) for g in fold_groups(jobs, partial(auto_size, config=config))]
    k = int(0.8 * 2 * 2**30 / per_fold)  # 2 GiB: SKD-TSTSAN 3 folds at a time, STSTNet all 10
    assert k == 3 and sizes == [3, 3, 3, 1, 10]


def test_the_gpu_scale_grid_is_a_casme2_sized_loso_at_the_papers_budget():
    from mer_bench.benchmark.protocol.grids import grid_path
    from mer_bench.benchmark.protocol.grids import load_grid
    from mer_bench.benchmark.protocol.tasks import TASKS
    from mer_bench.datasets import DATASETS
    from mer_bench.datasets.synthetic_frames import SyntheticSpec

    grid = load_grid(grid_path("gpu_scale"))
    assert [(s.name, s.budget) for s in grid.methods] == [("skd_tstsan", 20000)]
    assert grid.tasks == ("synthetic_casme2-5",) and grid.selection == "last"
    assert load_grid(grid_path("gpu_scale"), "quick").methods[0].budget == 10
    (source,) = TASKS.build("synthetic_casme2-5").sources
    kwargs = dict(DATASETS.entry(source.dataset).kwargs)
    kwargs.pop("name")
    spec = SyntheticSpec(**kwargs)
    assert spec.subjects == 26 and spec.subjects * spec.clips_per_subject == 260  # CASME II: 255
