"""The speed options of the shared loop: bf16 autocast (part of the job), torch.compile and
channels-last (run settings that compute the same function)."""

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from mer_bench.benchmark.protocol.grids import Grid, MethodSpec, load_grid

from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.one_job import fold_groups
from mer_bench.benchmark.execution.runner import run_grid
from mer_bench.methods import METHODS
from mer_bench.methods.base import Speed
from mer_bench.methods.fold_parallel import FoldData, train_folds
from mer_bench.methods.training import Recipe, TorchMethod, pick_device

CPU = pick_device("cpu")


class Log(list):
    """Survives deepcopy (fold-parallel training runs a deep copy of the model)."""

    def __deepcopy__(self, memo):
        return self


class DtypeRecorder(nn.Module):
    """Notes the dtype its linear layer computes in, on every forward (vmapped ones too)."""

    def __init__(self, seen: list):
        super().__init__()
        self.linear, self.seen = nn.Linear(12, 5), seen

    def forward(self, x):
        y = self.linear(x.flatten(1))
        self.seen.append(y.dtype)
        return y


class Recording(TorchMethod):
    views = ("x",)
    recipe = Recipe(iterations=3, batch_size=4)

    def __init__(self):
        self.seen = Log()

    def build_model(self, num_classes):
        return DtypeRecorder(self.seen)


def data(n=12):
    return torch.rand(n, 3, 2, 2, generator=torch.Generator().manual_seed(0)), np.arange(n) % 5


@pytest.mark.parametrize("precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_sets_what_training_and_prediction_compute_in(precision, dtype):
    method = Recording()
    method.configure(Speed(precision))
    inputs, labels = data()
    model = method.fit(method.build_model(5), inputs, labels, 5, 3, 0, CPU)
    logits = method.predict(model, inputs, CPU)["final"]
    assert method.seen == [dtype] * 4  # 3 training steps, 1 prediction batch
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    assert model.linear.weight.dtype == torch.float32  # autocast: weights stay fp32


def test_autocast_does_not_reach_inside_vmap_so_bf16_is_trained_fold_by_fold():
    """Why fold-parallel training refuses bf16: under vmap, autocast leaves the model in fp32
    (torch 2.14). If a torch release fixes this, this test says so."""
    method = Recording()
    inputs, labels = data()
    template = method.build_model(5)
    params = {k: torch.stack([v, v]) for k, v in template.named_parameters()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.vmap(lambda p, x: torch.func.functional_call(template, p, (x,)))(
            params, torch.stack([inputs, inputs]))
    assert method.seen == [torch.float32]
    method.configure(Speed("bf16"))
    with pytest.raises(ValueError, match="fp32 only, not bf16"):
        train_folds(method, [method.build_model(5)] * 2,
                    [FoldData(inputs, labels, seed) for seed in (1, 2)], 5, 2, CPU)
    bf16 = [Job("ststnet.paper", "synthetic-5", f"synthetic/sub0{k}", precision="bf16")
            for k in (1, 2)]
    fp32 = [replace(job, precision="fp32") for job in bf16]
    assert fold_groups(bf16 + fp32, 4) == [fp32, [bf16[0]], [bf16[1]]]


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"precision 'fp16' is not available; choose from "
                                         r"\['fp32', 'bf16'\]"):
        Speed("fp16")


def test_bf16_is_part_of_the_job_and_its_label_fp32_leaves_old_keys_alone():
    job = Job("ststnet", "synthetic-5", "synthetic/sub01")
    bf16 = Job("ststnet", "synthetic-5", "synthetic/sub01", precision="bf16")
    assert "precision" not in job.canonical()  # keys made before the field are unchanged
    assert bf16.key != job.key and bf16.rng_seed != job.rng_seed
    assert bf16.run_label == "ststnet[precision=bf16]" and job.run_label == "ststnet"
    assert Job.from_canonical(bf16.canonical()) == bf16


def test_a_grid_sets_precision_and_the_command_line_overrides_it(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('tasks = ["synthetic-5"]\nprecision = "bf16"\n[[methods]]\nname = "ststnet"\n')
    assert load_grid(path).precision == "bf16"
    assert load_grid(path, precision="fp32").precision == "fp32"
    path.write_text('tasks = ["synthetic-5"]\n[[methods]]\nname = "ststnet"\n')
    assert load_grid(path).precision == "fp32"


@pytest.mark.slow
def test_a_bf16_run_is_stored_apart_with_its_speed_settings(results):
    config = RunConfig(results=results, progress=False)
    grid = Grid((MethodSpec.make("ststnet", budget=5),), ("synthetic-5",), precision="bf16")
    summary = run_grid(grid, config)
    assert summary.ran == 10 and not summary.failed
    folder = results / "runs" / summary.jobs[0].key
    assert json.loads((folder / "info.json").read_text())["speed"] == {
        "precision": "bf16", "compile": False, "channels_last": None}
    assert json.loads((folder / "job.json").read_text())["precision"] == "bf16"
    fp32 = run_grid(Grid((MethodSpec.make("ststnet", budget=5),), ("synthetic-5",)), config)
    assert fp32.ran == 10  # not taken for the bf16 results
    with pytest.raises(ValueError, match="precision 'fp16' is not available"):
        run_grid(Grid((MethodSpec.make("ststnet"),), ("synthetic-5",), precision="fp16"), config)


def test_compile_is_refused_with_fold_parallel_training(results):
    config = RunConfig(results=results, progress=False, compile=True, fold_parallel=4)
    with pytest.raises(ValueError, match="use --compile without --fold-parallel"):
        run_grid(Grid((MethodSpec.make("ststnet"),), ("synthetic-5",)), config)


def trained(name: str, speed: Speed, steps: int = 3, shape=(3, 28, 28)):
    method = METHODS.build(name)
    method.configure(speed)
    torch.manual_seed(0)
    model = method.build_model(5).to(memory_format=method.memory_format)
    inputs = torch.rand(24, *shape, generator=torch.Generator().manual_seed(1))
    return method, method.fit(model, inputs, np.arange(24) % 5, 5, steps, 0, CPU)


def assert_same_weights(a: nn.Module, b: nn.Module, atol: float) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x, y, rtol=1e-4, atol=atol), name


def test_channels_last_overrides_the_methods_layout_and_computes_the_same():
    method, eager = trained("ststnet.paper", Speed())
    assert method.memory_format == torch.contiguous_format  # STSTNet's own
    method, last = trained("ststnet.paper", Speed(channels_last=True))
    assert method.memory_format == torch.channels_last
    assert last.branches[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert_same_weights(eager, last, atol=1e-5)
    skd = METHODS.build("skd_tstsan")
    skd.configure(Speed(channels_last=False))
    assert skd.memory_format == torch.contiguous_format  # SKD-TSTSAN's own is channels-last


@pytest.mark.slow
def test_compiled_training_computes_what_eager_training_computes():
    _, eager = trained("ststnet.paper", Speed())
    _, compiled = trained("ststnet.paper", Speed(compile=True))
    assert_same_weights(eager, compiled, atol=1e-5)
    assert not any(k.startswith("_orig_mod") for k in compiled.state_dict())  # saves as eager
    untrained = METHODS.build("ststnet.paper")
    torch.manual_seed(0)
    assert not torch.equal(untrained.build_model(5).classifier.weight,
                           copy.deepcopy(compiled.classifier.weight))  # it did train


def test_bench_times_a_step_under_each_speed_setting(capsys):
    from mer_bench.benchmark.cli import main

    assert main(["bench", "--method", "ststnet.shared", "--folds", "", "--speed", "fp32,bf16",
                 "--steps", "1", "--device", "cpu"]) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| cpu")]
    assert [r[2].strip() for r in rows] == ["fp32", "bf16"]
    assert all(float(r[3]) > 0 for r in rows) and rows[0][4].strip() == "1.00x"
    assert main(["bench", "--folds", "", "--speed", "fp16", "--device", "cpu"]) == 2
    assert "unknown speed settings ['fp16']" in capsys.readouterr().err


AVX2_ONLY = {"fpu", "sse2", "avx", "avx2", "fma"}


def test_bench_leaves_bf16_out_by_default_on_a_cpu_without_it_and_says_so(monkeypatch, capsys):
    from mer_bench.benchmark.cli import main
    from mer_bench.benchmark.execution import environment

    monkeypatch.setattr(environment, "cpu_flags", lambda: set(AVX2_ONLY))
    command = ["bench", "--method", "ststnet.shared", "--folds", "", "--steps", "1",
               "--device", "cpu"]
    assert main(command) == 0
    said = capsys.readouterr()
    settings = [line.split("|")[2].strip() for line in said.out.splitlines()
                if line.startswith("| cpu")]
    assert settings == ["fp32", "fp32 contiguous"]
    assert "bf16 left out of the default speed settings: this CPU has no native bf16" in said.err
    assert "--speed fp32,fp32 contiguous,bf16" in said.err
    assert main([*command, "--speed", "fp32,bf16"]) == 0  # asked for: timed, with the warning
    said = capsys.readouterr()
    assert [line.split("|")[2].strip() for line in said.out.splitlines()
            if line.startswith("| cpu")] == ["fp32", "bf16"]
    assert "left out" not in said.err and "no native bf16 instructions" in said.err
    monkeypatch.setattr(environment, "cpu_flags", lambda: AVX2_ONLY | {"avx512_bf16"})
    from mer_bench.benchmark.tools.bench import DEFAULT_SPEEDS, speed_settings

    assert speed_settings(None, "cpu") == (list(DEFAULT_SPEEDS), "")  # native: bf16 timed


def test_bench_says_each_measurement_as_it_goes_unless_quiet(capsys):
    from mer_bench.benchmark.cli import main

    command = ["bench", "--method", "ststnet.shared", "--folds", "1", "--steps", "1",
               "--device", "cpu", "--speed", "fp32"]
    assert main(command) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.startswith("timing")] == [
        "timing K=1 sequential on cpu ...", "timing K=1 fold-parallel on cpu ...",
        "timing one fold's step under fp32 on cpu ..."]
    assert any(line.startswith("  K=1 fold-parallel: ") and line.endswith(" fold-steps/s")
               for line in err)
    assert any(line.startswith("  fp32: ") and line.endswith(" ms/step") for line in err)
    assert main([*command, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
