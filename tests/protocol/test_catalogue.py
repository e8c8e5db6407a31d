"""`list methods --details` and `list grids`: what a method reads and trains with, and what
each grid and profile would run, without preparing any data."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np

from mer_bench.benchmark.protocol.grids import shipped_grids
from mer_bench.benchmark.tools.catalogue import (SHAPE_UNKNOWN, grid_details, method_details,
                                                 view_shape)
from mer_bench.datasets import VIEWS
from tests.conftest import REPO

GRID = """
description = "Two methods. Then more text."
tasks = ["synthetic-5", "casme2-5"]
seeds = [0, 1, 2]

[[methods]]
name = "off_apexnet"

[[methods]]
name = "majority"
tasks = ["casme2-5"]

[[methods]]
name = "ststnet"
weights = "released"

[profiles.small]
tasks = { casme2-5 = "synthetic-5" }
seeds = [0]
"""


def test_grid_details_count_runs_per_profile(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GRID)
    lines = grid_details(path)
    assert lines[0] == "mine: Two methods"
    # 2 tasks x 3 seeds + 1 task x 3 seeds + released weights on 2 tasks, seed 0 only
    assert lines[1] == "  as written: 11 runs on synthetic-5, casme2-5"
    assert lines[2] == "  --profile small: 3 runs on synthetic-5"


def test_list_grids_names_every_shipped_grid_and_profile():
    listed = subprocess.run([sys.executable, str(REPO / "run_benchmark.py"), "list", "grids"],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    for path in shipped_grids():
        assert f"\n{path.stem}" in "\n" + listed.stdout
    assert "--profile released: 14 runs on composite-3-flows, composite-3-causalnet" \
        in listed.stdout


def test_method_details_views_shapes_budget_and_parameters():
    lines = method_details("off_apexnet")
    assert lines[0].startswith("off_apexnet: OFF-ApexNet (OFFApexNet)")
    assert "  view flow_28: 2 x 28 x 28" in lines
    assert "  default budget: 400 iterations, batch 32, lr 1e-03" in lines
    assert any(line.startswith("  recipe: iterations=400, batch_size=32, lr=0.001")
               for line in lines)
    parameters = [line for line in lines if line.startswith("  parameters: ")]
    assert parameters and int(parameters[0].split()[1].replace(",", "")) > 1_000_000
    # counted for the default task's five classes, and said so: the final layer follows them
    assert parameters[0].endswith("(for 5 classes, as synthetic-5 has)")
    from mer_bench.methods import METHODS

    five = sum(p.numel() for p in METHODS.build("off_apexnet").build_model(5).parameters())
    assert int(parameters[0].split()[1].replace(",", "")) == five
    three = [line for line in method_details("off_apexnet", "composite-3-flows")
             if line.startswith("  parameters: ")]
    assert three[0].endswith("(for 3 classes, as composite-3-flows has)")
    assert method_details("majority")[1:] == []  # no views, nothing trained by a recipe
    assert not any("not N epochs" in line for line in lines)  # its budget is iterations
    # a default that counts epochs says what a budget counts instead
    assert "  a budget N (--budget, a grid's `budget`): N iterations of batch 256 in order, " \
        "not N epochs" in method_details("ststnet")
    assert view_shape("skd_tstsan_38") == "38 x 48 x 48"
    assert view_shape("released_apex_offset_direction_28") == "3 x 28 x 28"


def test_a_view_that_needs_more_than_a_blank_bundle_says_so(monkeypatch):
    def needs_landmarks(bundle):
        return np.asarray(bundle["landmarks"])

    monkeypatch.setitem(VIEWS._entries, "landmarks_view",
                        replace(VIEWS.entry("faces"), name="landmarks_view",
                                target=needs_landmarks))
    assert view_shape("landmarks_view") == SHAPE_UNKNOWN
    assert view_shape("landmarks_vieww").startswith("NOT A REGISTERED VIEW")  # listed, not fatal
