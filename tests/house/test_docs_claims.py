"""Statements of the docs that a source can contradict, checked against that source: the paper
page's quick-profile budgets against the shipped grids, the reliability page's word on where
the fault suite runs against the suite's own markers."""

from __future__ import annotations

import re

from mer_bench.benchmark.protocol.grids import grid_path, load_grid
from tests.conftest import REPO

PAPER_GRIDS = ("table1", "table2", "table3", "table4", "table5", "table6", "table7", "honesty",
               "fig9")


def test_the_paper_page_gives_each_quick_profiles_budget_as_its_grid_sets_it():
    text = " ".join((REPO / "docs" / "paper.md").read_text().split())
    said = re.search(r"with a budget of (\d+) iterations \((\d+) for Table 6 and Fig\. 9", text)
    assert said, "docs/paper.md no longer states the quick profile's budgets"
    usual, fewer = map(int, said.groups())
    budgets = {name: {m.budget for m in load_grid(grid_path(name), "quick").methods}
               for name in PAPER_GRIDS}
    assert budgets == {name: {fewer if name in ("table6", "fig9") else usual}
                       for name in PAPER_GRIDS}


def test_the_reliability_page_says_where_the_slow_part_of_the_fault_suite_runs():
    page = " ".join((REPO / "docs" / "reliability.md").read_text().split())
    suite = [REPO / "tests" / "runs" / name for name in ("test_faults.py",
                                                         "test_never_destroy.py")]
    slow = sum(text.count("@pytest.mark.slow") for text in (p.read_text() for p in suite))
    if slow:
        assert "`pytest -m slow`" in page and "runs those not marked slow" in page
    else:
        assert "runs them all, in the README's test command" in page
