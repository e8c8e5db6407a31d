"""`tables --grid` plans from the tasks' manifests that the run left, never preparing data,
generating a synthetic set or detecting a face: each test makes all of those fail once its
store is made, and renders the tables anyway."""

import json
import os
import re
import shutil

import pandas as pd
import pytest

from mer_bench.benchmark.cli import main
from tests.conftest import REPO
from tests.house.docs_blocks import check_block

ONE_ROW = """
description = "one row on the synthetic default"
table = 2
tasks = ["synthetic-5"]
[[methods]]
name = "lbp_top_svm"
"""


def refuse_preparation(monkeypatch) -> None:
    """Every way to prepare data raises from now on: a table that needs it fails the test."""
    from mer_bench.benchmark.execution import planning
    from mer_bench.datasets import bundle_cache, faces, synthetic_frames

    def refuse(*args, **kwargs):
        raise AssertionError("tables prepared data")

    for module, name in ((planning, "prepare_task"), (planning, "prepare_clips"),
                         (bundle_cache, "prepare_clips"), (synthetic_frames, "generate"),
                         (faces, "detect_face")):
        monkeypatch.setattr(module, name, refuse)


def measured_lbp_row(results, folder: str, table: str) -> pd.Series:
    frame = pd.read_csv(results / "tables" / folder / f"{table}.csv", keep_default_na=False)
    return frame[(frame.source == "measured") & frame.method.str.contains("LBP-TOP")].iloc[0]


def test_the_refusal_is_real(results, monkeypatch):
    refuse_preparation(monkeypatch)
    with pytest.raises(AssertionError, match="prepared data"):
        main(["run", "--methods", "majority", "--results", str(results), "--quiet"])


def test_paper_tables_render_from_the_store_and_manifests_alone(results, capsys, monkeypatch):
    """LBP-TOP on synthetic-5 at the quick profile's budget (30, which changes nothing it
    computes but is part of its key) is a cell of Table 1 under that profile: found through
    the manifest the run left, nothing prepared."""
    assert main(["run", "--methods", "lbp_top_svm", "--budget", "30", "--results",
                 str(results), "--quiet"]) == 0
    manifests = list((results / "manifests").glob("synthetic-5-*.json"))
    assert len(manifests) == 1 and len(json.loads(manifests[0].read_text())["folds"]) == 10
    capsys.readouterr()
    refuse_preparation(monkeypatch)
    assert main(["tables", "--grid", "paper", "--profile", "quick", "--results", str(results),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert all(f"Table {n}" in out for n in range(1, 8)) and "Not checked" not in out
    row = measured_lbp_row(results, "paper-quick", "table1")
    assert float(row["synthetic-5 (SYNTHETIC) UF1"].split()[0]) >= 0  # a number, not `missing`


def test_a_task_without_its_manifest_is_left_unchecked_and_says_so(results, tmp_path, capsys,
                                                                   monkeypatch):
    """As a store copied from another machine: its rows stay (the newest stored), and the
    table names the task it could not check; nothing is prepared to check it."""
    grid = tmp_path / "one.toml"
    grid.write_text(ONE_ROW)
    assert main(["run", "--grid", str(grid), "--results", str(results), "--quiet"]) == 0
    for manifest in (results / "manifests").glob("*.json"):
        manifest.unlink()
    capsys.readouterr()
    refuse_preparation(monkeypatch)
    assert main(["tables", "--grid", str(grid), "--results", str(results), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Not checked against the data as last prepared here: synthetic-5" in out
    assert float(measured_lbp_row(results, "paper", "one")["synthetic-5 (SYNTHETIC) UF1"].split()[0]) >= 0


@pytest.mark.slow
def test_tables_of_the_paper_on_the_main_commands_store_prepare_nothing(results, capsys,
                                                                        monkeypatch):
    """The README's path: the main command, then the paper's tables under the quick profile
    with preparation made to fail (the main command's budgets are not the profile's, so its
    runs fill no cell: every table renders, its measured cells `missing`). CI runs the main
    command as the README writes it and names its store in MER_BENCH_MAIN_STORE: a copy of
    that store serves here instead of a second run."""
    made = os.environ.get("MER_BENCH_MAIN_STORE")
    if made:
        shutil.rmtree(results)
        shutil.copytree(made, results, symlinks=True)
        out = (results / "tables" / "comparison.md").read_text()
    else:
        assert main(["--results", str(results), "--quiet"]) == 0
        out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "| ststnet" in out
    refuse_preparation(monkeypatch)
    assert main(["tables", "--grid", "paper", "--profile", "quick", "--results", str(results),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert all(f"Table {n}" in out for n in range(1, 8)) and "missing" in out
    row = measured_lbp_row(results, "paper-quick", "table1")
    # no stored run fills the column, so no run marks it SYNTHETIC: it holds no number at all
    assert row["synthetic-5 UF1"] == "missing" and "synthetic-5 (SYNTHETIC) UF1" not in row
    # docs/commands.md shows the plans of this store: their jobs as printed now, their
    # seconds this machine's
    for name, grid in (("plan-table1", "table1"), ("plan-paper", "paper")):
        assert main(["run", "--plan", "--grid", grid, "--profile", "quick", "--results",
                     str(results)]) == 0
        printed = capsys.readouterr().out
        check_block(REPO / "docs" / "commands.md", name,
                    printed if name == "plan-table1" else
                    next(line for line in printed.splitlines() if " jobs in " in line) + "\n",
                    same=plan_jobs)


def plan_jobs(text: str) -> str:
    """A plan less what this machine's speed decides: each row's seconds and their basis,
    and the summary's estimate."""
    lines = []
    for line in text.splitlines():
        if " jobs in " in line and " runs: " in line:
            line = line.split("; estimated")[0]
        elif re.match(r"^\S.*  +(\d+|\?)  +\d+  +(\d+|\?)  +", line):
            line = "  ".join(re.split(r"\s{2,}", line)[:4])
        lines.append(line)
    return "\n".join(lines)
