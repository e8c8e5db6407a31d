"""The docs-block machinery itself: a stale block fails with a diff, UPDATE_DOCS=1 rewrites
only the named block, and the main command's table and fold lines are cut from a terminal's
output as a person sees it."""

from __future__ import annotations

import pytest

from tests.house.docs_blocks import block, check_block
from tests.house.main_command_output import fold_lines, table

PAGE = """# A page

<!-- output: first -->
```text
old output
```

<!-- output: second -->
```text
kept
```
"""


def test_a_stale_block_fails_with_a_diff_and_update_docs_rewrites_only_it(tmp_path,
                                                                          monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    with pytest.raises(AssertionError, match=r"(?s)block first is not what.*-old output.*\+new"):
        check_block(page, "first", "new output\n")
    monkeypatch.setenv("UPDATE_DOCS", "1")
    check_block(page, "first", "new output")
    assert block(page, "first") == "new output\n" and block(page, "second") == "kept\n"
    with pytest.raises(AssertionError, match="no block <!-- output: third -->"):
        check_block(page, "third", "x")


OUTPUT = (
    "preparing task synthetic-5 ...\n"
    "\r  0%|          | 0/50\rststnet synthetic-5 seed 0 fold synthetic/sub01: train loss 0.5\n"
    "ststnet synthetic-5 seed 0 fold synthetic/sub02: train loss 0.4\n"
    "ststnet synthetic-5 seed 0 fold synthetic/sub03: train loss 0.3\n"
    "ststnet synthetic-5 seed 0 fold synthetic/sub04: train loss 0.2\n"
    "ststnet synthetic-5 seed 0 fold synthetic/sub05: train loss 0.2\n"
    "ststnet synthetic-5 seed 0 fold synthetic/sub10: train loss 0.1\n"
    "UF1 and UAR (%) pooled over the folds\n"
    "Data: SYNTHETIC\n"
    "| method | UF1 |\n"
    "|--------|-----|\n"
    "| ststnet | 95.0 |\n"
    "50 jobs run in 170.4 s\n"
)


def test_the_table_and_the_fold_lines_are_cut_as_the_terminal_shows_them():
    assert table(OUTPUT) == ("UF1 and UAR (%) pooled over the folds\nData: SYNTHETIC\n"
                             "| method | UF1 |\n|--------|-----|\n| ststnet | 95.0 |\n")
    folds = fold_lines(OUTPUT).splitlines()
    assert folds[0] == "ststnet synthetic-5 seed 0 fold synthetic/sub01: train loss 0.5"
    assert [line.split(": ")[0][-5:] for line in folds] == [
        "sub01", "sub02", "sub03", "sub04", "sub10"]
    with pytest.raises(AssertionError, match="no table"):
        table("nothing here\n")


def test_fold_lines_compare_without_their_running_totals_but_with_every_fold_number():
    from tests.house.main_command_output import per_fold

    line = ("ststnet synthetic-5 seed 0 fold synthetic/sub05: train loss 0.4540, test acc 1.0000 "
            "(13 clips); pooled over {k} of 10 folds so far: UF1 {uf1}, UAR 0.8814")
    serial, workers = line.format(k=5, uf1="0.8560"), line.format(k=6, uf1="0.8962")
    assert per_fold(serial) == per_fold(workers) != per_fold(serial.replace("0.4540", "0.4541"))
    other = serial.replace("sub05", "sub04")
    assert per_fold(f"{serial}\n{other}") == per_fold(f"{other}\n{serial}")  # finishing order
