"""`run --task casme2-5 --data-root DIR` end to end on a tree in CASME II's real layout."""

import os
import subprocess
import sys

import cv2
import pandas as pd
import pytest
from openpyxl import Workbook

from mer_bench.datasets.sheets import ANNOTATIONS_ENV
from tests import dataset_trees as trees
from tests.conftest import REPO, face_frame

SUBJECTS = ("04", "15", "21")  # every class, few clips; sub04 EP12_01f has its apex written "/"


def cli(*args):
    env = {k: v for k, v in os.environ.items() if k != ANNOTATIONS_ENV}
    return subprocess.run([sys.executable, str(REPO / "run_benchmark.py"), *args], env=env,
                          capture_output=True, text=True, timeout=600, cwd=REPO)


def casme2_tree(root, sheet):
    """The real rows of SUBJECTS in a sheet of the 2014 format, the astronaut face at their
    onset, apex and offset frames (the lower face moved at the apex)."""
    table = pd.read_excel(sheet, dtype=str)
    rows = table[table["Subject"].isin(SUBJECTS)]
    book = Workbook()
    book.active.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame",
                        None, "Action Units", "Estimated Emotion"])
    images = {shift: cv2.imencode(".jpg", face_frame(shift))[1].tobytes() for shift in (0, 2)}
    for _, row in rows.iterrows():
        cells = [row["OnsetFrame"], row["ApexFrame"], row["OffsetFrame"]]
        book.active.append([row["Subject"], row["Filename"], None,
                            *(int(c) if c.isdigit() else c for c in cells), None,
                            row["Action Units"], row["Estimated Emotion"]])
        for role, cell in zip(("onset", "apex", "offset"), cells):
            if cell.isdigit():
                trees.put(root / f"sub{row['Subject']}" / row["Filename"] / f"img{cell}.jpg",
                          images[2 if role == "apex" else 0])
    root.mkdir(parents=True, exist_ok=True)
    book.save(root / "CASME2-coding-20140508.xlsx")
    return len(rows)


@pytest.mark.slow
def test_run_casme2_5_on_a_real_layout_tree_end_to_end(tmp_path):
    rows = casme2_tree(tmp_path / "CASME2", trees.real(trees.CASME2_2014))
    assert rows == 10
    done = cli("run", "--task", "casme2-5", "--data-root", str(tmp_path / "CASME2"),
               "--methods", "ststnet", "--budget", "20", "--quiet", "--prepare-workers", "2",
               "--results", str(tmp_path / "results"))
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| ststnet"))
    assert "3 x 1" in row  # three subjects: three LOSO folds, one seed
    assert "| casme2-5 " in row and "(synthetic)" not in done.stdout
    listed = cli("list", "tasks", "--data-root", str(tmp_path / "CASME2"), "--results",
                 str(tmp_path / "results"))
    block = next(b for b in listed.stdout.split("\n\n") if b.startswith("casme2-5"))
    assert "9 samples (real), 3 subjects" in block and "excluded 1: apex missing" in block


def test_a_wrong_data_root_exits_2_and_says_what_was_looked_for(tmp_path):
    missing = cli("run", "--task", "casme2-5", "--data-root", str(tmp_path / "nowhere"),
                  "--methods", "ststnet", "--quiet", "--results", str(tmp_path / "results"))
    assert missing.returncode == 2  # a root that does not exist: named, never created
    assert f"error: --data-root: {tmp_path / 'nowhere'} does not exist" in missing.stderr
    assert not (tmp_path / "nowhere").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    no_sheet = cli("run", "--task", "casme2-5", "--data-root", str(empty), "--methods",
                   "ststnet", "--quiet", "--results", str(tmp_path / "results"))
    assert no_sheet.returncode == 2
    assert f"no CASME II coding sheet (CASME2-coding-*.xls*) in {empty}" in no_sheet.stderr
    # The sheet is found (in --annotations) but the root holds none of its subject folders.
    wrong = cli("run", "--task", "casme2-5", "--data-root", str(empty), "--methods", "ststnet",
                "--annotations", str(trees.real(trees.CASME2_2014).parent), "--quiet",
                "--results", str(tmp_path / "results"))
    assert wrong.returncode == 2
    assert "none of the 26 folders the annotation names exists under the data root" in \
        wrong.stderr and f"{empty}/sub01" in wrong.stderr
