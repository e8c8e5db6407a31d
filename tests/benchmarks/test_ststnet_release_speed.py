"""STSTNet at its authors' schedule (800 epochs of batch 256 in order) on the released
composite flows: the time of one fold's epochs, timed on a few epochs of a real fold and
extrapolated, stated as such, to the whole 68-fold LOSO (`extra_info`).

Run with timings: `python -m pytest tests/benchmarks/test_ststnet_release_speed.py
--benchmark-enable`. Skipped where the released flows are absent.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

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
