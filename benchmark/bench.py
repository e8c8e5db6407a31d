"""`run_benchmark.py bench`: SKD-TSTSAN training throughput on this machine, one fold after
another (sequential) against K folds trained at once (fold-parallel), at batch 16.

Steps per second count fold-steps: K folds advanced by one step each count K.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from methods.fold_parallel import FoldData, train_folds
from methods.training import pick_device


@dataclass(frozen=True)
class Throughput:
    mode: str
    folds: int
    device: str
    fold_steps_per_second: float


def synthetic_folds(method, folds: int, samples: int = 32, seed: int = 0) -> list[FoldData]:
    """Random inputs of SKD-TSTSAN's shape; throughput does not depend on their values."""
    generator = torch.Generator().manual_seed(seed)
    return [FoldData(torch.rand(samples, 38, 48, 48, generator=generator), np.arange(samples) % 5,
                     seed=seed + k) for k in range(folds)]


def _models(method, folds: list[FoldData], device: torch.device) -> list:
    models = []
    for fold in folds:
        torch.manual_seed(fold.seed)
        models.append(method.build_model(5).to(device, memory_format=method.memory_format))
    return models


def sequential_steps(method, folds: list[FoldData], steps: int, device: torch.device) -> None:
    for model, fold in zip(_models(method, folds, device), folds):
        method.fit(model, fold.inputs, fold.labels, 5, steps, fold.seed, device)


def parallel_steps(method, folds: list[FoldData], steps: int, device: torch.device) -> None:
    train_folds(method, _models(method, folds, device), folds, 5, steps, device)


def measure(folds: int, steps: int = 3, device: str = "auto") -> list[Throughput]:
    """Fold-steps per second, sequential and fold-parallel, after one warm-up step each."""
    from methods import METHODS

    method, where = METHODS.build("skd_tstsan"), pick_device(device)
    data = synthetic_folds(method, folds)
    rows = []
    for mode, run in (("sequential", sequential_steps), ("fold-parallel", parallel_steps)):
        run(method, data, 1, where)  # warm-up: allocations, kernels, autotuning
        if where.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        run(method, data, steps, where)
        if where.type == "cuda":
            torch.cuda.synchronize()
        rows.append(Throughput(mode, folds, str(where),
                               folds * steps / (time.perf_counter() - started)))
    return rows
