"""A table row is the data it came from: the same task run on two versions of a dataset tree
gives two rows that never hide each other, and a run (or `tables --grid`) shows the row of
the data as they are now, whichever version was stored last."""

import json
import shutil

import cv2
import pandas as pd

from mer_bench.benchmark.cli import main

PAPER_GRID = """
description = "one row on the synthetic default"
table = 2
tasks = ["synthetic-5"]
[[methods]]
name = "lbp_top_svm"
"""


def second_version(results, tmp_path):
    """A copy of the synthetic tree with one clip's frames changed."""
    copy = tmp_path / "synthetic-v2"
    shutil.copytree(results / "data" / "synthetic", copy)
    for frame in (copy / "sub01" / "EP01_01").glob("img*.jpg"):
        cv2.imwrite(str(frame), 255 - cv2.imread(str(frame)))
    return copy


def printed_row(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("| lbp_top_svm"))


def test_each_data_version_is_its_own_row_and_a_run_shows_its_own(results, tmp_path, capsys):
    v2 = second_version(results, tmp_path)
    common = ["--methods", "lbp_top_svm", "--results", str(results), "--quiet"]
    assert main(["run", *common]) == 0
    first = printed_row(capsys.readouterr().out)
    assert main(["run", *common, "--data", f"synthetic={v2}"]) == 0
    second = printed_row(capsys.readouterr().out)
    assert main(["run", *common]) == 0  # version 1 again: its own stored jobs, its own row
    out = capsys.readouterr().out
    assert "0 jobs run" in out and printed_row(out) == first != second
    every = (results / "tables" / "comparison.md").read_text()
    assert every.count("| lbp_top_svm (data ") == 2  # both stored, each named by its data
    tidy = pd.read_csv(results / "tables" / "comparison.csv")
    assert tidy.data_version.nunique() == 2


def test_paper_tables_take_the_jobs_of_the_data_as_they_are_now(results, tmp_path, capsys):
    v2 = second_version(results, tmp_path)
    grid = tmp_path / "one.toml"
    grid.write_text(PAPER_GRID)
    base = ["--grid", str(grid), "--results", str(results), "--quiet"]
    assert main(["run", *base]) == 0
    assert main(["run", *base, "--data", f"synthetic={v2}"]) == 0  # stored last

    def version_shown(*extra):
        assert main(["tables", "--grid", str(grid), "--results", str(results), *extra]) == 0
        frame = pd.read_csv(results / "tables" / "paper" / "one.csv", keep_default_na=False)
        card = json.loads(frame[frame.source == "measured"]["protocol card"].item())
        return card["tasks"]["synthetic-5"]["data version"]

    capsys.readouterr()
    now, other = version_shown(), version_shown("--data", f"synthetic={v2}")
    assert now != other and version_shown() == now
