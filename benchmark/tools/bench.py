"""`mer-bench bench`: a torch method's training throughput on this machine (by default the
registry's flagship, SKD-TSTSAN, at its batch of 16): one fold after another (sequential)
against K folds trained at once (fold-parallel), and one fold's step under each speed option
(precision, layout, torch.compile). Inputs are random, of the method's `input_shape`.

Steps per second count fold-steps: K folds advanced by one step each count K.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from mer_bench.benchmark.execution.environment import bf16_note
from mer_bench.methods.base import Speed
from mer_bench.methods.fold_parallel import FoldData, train_folds
from mer_bench.methods.training import pick_device


@dataclass(frozen=True)
class Throughput:
    mode: str
    folds: int
    device: str
    fold_steps_per_second: float


def bench_method(name: str | None = None):
    """The method to time: `name`, else the flagship; a torch method with an input shape."""
    from mer_bench.methods import FLAGSHIP, METHODS

    method = METHODS.build(name or FLAGSHIP)
    if getattr(method, "input_shape", None) is None:
        raise ValueError(f"method {name or FLAGSHIP} cannot be timed by bench: it is not a torch "
                         "method with an `input_shape`")
    return method


def synthetic_folds(method, folds: int, samples: int = 32, seed: int = 0) -> list[FoldData]:
    """Random inputs of the method's shape; throughput does not depend on their values."""
    generator = torch.Generator().manual_seed(seed)
    return [FoldData(torch.rand(samples, *method.input_shape, generator=generator),
                     np.arange(samples) % 5, seed=seed + k) for k in range(folds)]


def models_for(method, folds: list[FoldData], device: torch.device) -> list:
    models = []
    for fold in folds:
        torch.manual_seed(fold.seed)
        models.append(method.build_model(5).to(device, memory_format=method.memory_format))
    return models


def sequential_steps(method, folds: list[FoldData], steps: int, device: torch.device) -> None:
    for model, fold in zip(models_for(method, folds, device), folds):
        method.fit(model, fold.inputs, fold.labels, 5, steps, fold.seed, device)


def parallel_steps(method, folds: list[FoldData], steps: int, device: torch.device) -> None:
    train_folds(method, models_for(method, folds, device), folds, 5, steps, device)


Say = Callable[[str], None]  # progress: a line as each measurement starts and ends


def _quiet(line: str) -> None:
    pass


def measure(folds: int, steps: int = 3, device: str = "auto",
            method_name: str | None = None, say: Say = _quiet) -> list[Throughput]:
    """Fold-steps per second, sequential and fold-parallel, after one warm-up step each;
    `say` hears each as it is measured (a CPU measurement can take minutes)."""
    method, where = bench_method(method_name), pick_device(device)
    data = synthetic_folds(method, folds)
    rows = []
    for mode, run in (("sequential", sequential_steps), ("fold-parallel", parallel_steps)):
        say(f"timing K={folds} {mode} on {where} ...")
        run(method, data, 1, where)  # warm-up: allocations, kernels, autotuning
        if where.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        run(method, data, steps, where)
        if where.type == "cuda":
            torch.cuda.synchronize()
        rows.append(Throughput(mode, folds, str(where),
                               folds * steps / (time.perf_counter() - started)))
        say(f"  K={folds} {mode}: {rows[-1].fold_steps_per_second:.2f} fold-steps/s")
    return rows


SPEED_SETTINGS = {  # name -> Speed; "fp32" is the method's own layout
    "fp32": Speed(),
    "fp32 contiguous": Speed(channels_last=False),
    "bf16": Speed("bf16"),
    "bf16 contiguous": Speed("bf16", channels_last=False),
    "fp32 compile": Speed(compile=True),
    "bf16 compile": Speed("bf16", compile=True),
}


DEFAULT_SPEEDS = ("fp32", "fp32 contiguous", "bf16")


def speed_settings(asked: str | None, device: str = "auto") -> tuple[list[str], str]:
    """The speed settings to time, checked before any timing, and a line to print ('' if
    none). Asked for none (`None`): the defaults, bf16 left out where it cannot pay (a CPU
    without native bf16, by the check that `run --precision bf16` warns with) rather than
    timed for minutes to lose, and the line says so; asked for bf16 there: it is timed, and
    the line is that warning."""
    note = bf16_note("bf16", pick_device(device).type)
    if asked is not None:
        settings = [s.strip() for s in asked.split(",") if s.strip()]
        unknown = sorted(set(settings) - set(SPEED_SETTINGS))
        if unknown:
            raise ValueError(f"--speed: unknown speed settings {unknown}; known: "
                             f"{list(SPEED_SETTINGS)}")
        return settings, note if any("bf16" in s for s in settings) else ""
    if not note:
        return list(DEFAULT_SPEEDS), ""
    kept = [name for name in DEFAULT_SPEEDS if "bf16" not in name]
    return kept, (f"bf16 left out of the default speed settings: "
                  f"{note.removeprefix('warning: ')}; time it anyway with --speed "
                  f"{','.join([*kept, 'bf16'])}")


@dataclass(frozen=True)
class StepTime:
    setting: str
    device: str
    milliseconds: float


def measure_speed(settings: list[str], steps: int = 3, device: str = "auto",
                  method_name: str | None = None, say: Say = _quiet) -> list[StepTime]:
    """Milliseconds per training step of one fold under each setting, after two warm-up steps
    (which include torch.compile's compilation); `say` hears each as it is measured."""
    where = pick_device(device)
    unknown = set(settings) - set(SPEED_SETTINGS)
    if unknown:
        raise ValueError(f"unknown speed settings {sorted(unknown)}; known: {list(SPEED_SETTINGS)}")
    rows = []
    for name in settings:
        say(f"timing one fold's step under {name} on {where} ...")
        method = bench_method(method_name)
        method.configure(SPEED_SETTINGS[name])
        (fold,) = synthetic_folds(method, 1)
        (model,) = models_for(method, [fold], where)
        method.fit(model, fold.inputs, fold.labels, 5, 2, fold.seed, where)  # warm-up
        if where.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        method.fit(model, fold.inputs, fold.labels, 5, steps, fold.seed, where)
        if where.type == "cuda":
            torch.cuda.synchronize()
        rows.append(StepTime(name, str(where), 1000 * (time.perf_counter() - started) / steps))
        say(f"  {name}: {rows[-1].milliseconds:.1f} ms/step")
    return rows
