"""STSTNet at its authors' schedule (800 epochs of batch 256 in order) on the released
composite flows: the time of one fold's epochs, timed on a few epochs of a real fold and
extrapolated, stated as such, to the whole 68-fold LOSO (`extra_info`); and the whole LOSO
itself, trained through the runner as `run` trains it.

Run with timings: `python -m pytest tests/benchmarks/test_ststnet_release_speed.py
--benchmark-enable` (the whole LOSO takes about an hour on 2 cores; `-k epochs` for the fold
alone). Skipped where the released flows are absent.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
from mer_bench.benchmark.execution.planning import prepare_task
from mer_bench.benchmark.execution.runner import run_grid
from mer_bench.benchmark.stats.runs import run_scores
from mer_bench.methods.ststnet import STSTNet
from tests.released import FLOWS, released

EPOCHS_TIMED = 5


@pytest.fixture(scope="module")
def fold():
    """The training side of fold sub01 of the composite: 67 subjects' images as the release
    reads them, with their labels."""
    import csv

    root = released(FLOWS)
    images, labels = [], []
    with open(root / "combined_3_class2_for_optical_flow.csv") as file:
        for row in csv.DictReader(file):
            if row["sub"] == "sub01":
                continue
            path = root / "STSNet_whole_norm_u_v_os" / f"{row['sub']}_{row['filename_o']} .png"
            images.append(cv2.imread(str(path)).transpose(2, 0, 1))
            labels.append(int(row["label"]))
    return torch.tensor(np.stack(images), dtype=torch.float32), np.array(labels)


def test_release_schedule_epochs_of_one_fold(benchmark, fold):
    inputs, labels = fold
    method = STSTNet()
    method.recipe = replace(method.recipe, epochs=EPOCHS_TIMED)
    steps = method.recipe.steps(len(labels))

    def train():
        torch.manual_seed(0)
        model = method.build_model(3)
        method.fit(model, inputs, labels, 3, None, 0, torch.device("cpu"))
        return model

    model = benchmark.pedantic(train, rounds=3, warmup_rounds=1)
    seconds = benchmark.stats.stats.mean if benchmark.stats else float("nan")
    per_epoch = seconds / EPOCHS_TIMED
    benchmark.extra_info.update(
        threads=torch.get_num_threads(), train_samples=len(labels), steps=steps,
        seconds_per_epoch=per_epoch,
        extrapolated_fold_seconds=per_epoch * STSTNet().recipe.epochs,
        extrapolated_loso_seconds=per_epoch * STSTNet().recipe.epochs * 68)
    assert steps == EPOCHS_TIMED * 2  # 442 - 3 clips of sub01 = 439: batches of 256 and 183
    assert all(torch.isfinite(p).all() for p in model.parameters())


# Where the whole-LOSO benchmark keeps its store (an empty or absent folder), so that
# `tables --results DIR` shows the row it trained; unset: a temporary folder.
LOSO_RESULTS_ENV = "MER_BENCH_LOSO_RESULTS"


def test_release_schedule_whole_composite_loso(benchmark, tmp_path):
    """The 68 folds of composite-3-flows, each 800 epochs, seed 0, in 2 worker processes of one
    thread (faster here than one process of two threads: 56 against 76 s a fold): the figure
    is the wall time of the whole LOSO, nothing extrapolated."""
    if benchmark.disabled:
        pytest.skip("a whole LOSO at the authors' schedule takes about an hour on 2 cores: "
                    "run with --benchmark-enable")
    results = Path(os.environ.get(LOSO_RESULTS_ENV) or tmp_path / "results")
    if (results / "runs").is_dir() and any((results / "runs").iterdir()):
        pytest.fail(f"{LOSO_RESULTS_ENV}={results} holds stored jobs: the benchmark times "
                    "training, not reading the store; give an empty folder")
    config = RunConfig(results=results, data_roots=(("composite_flows", str(released(FLOWS))),),
                       workers=2, threads=1, progress=False)
    prepare_task("composite-3-flows", config)  # reading the 442 images: not timed
    grid = Grid((MethodSpec.make("ststnet"),), ("composite-3-flows",), seeds=(0,))
    summary = benchmark.pedantic(run_grid, args=(grid, config), rounds=1, iterations=1)
    assert summary.ran == 68 and not summary.failed
    runs = {r.task: r for r in run_scores(list(config.store.records()))}
    composite = runs["composite-3-flows"]
    assert composite.complete and composite.seeds == (0,)
    benchmark.extra_info.update(
        workers=2, threads_per_worker=1, folds=68, epochs_per_fold=STSTNet().recipe.epochs,
        **{f"{task} {metric}": round(getattr(run.per_seed[0], metric), 4)
           for task, run in runs.items() for metric in ("uf1", "uar")})
