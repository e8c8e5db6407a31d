"""Protocol cards: each row of a paper table carries what it was measured under (CSV, LaTeX),
from the stored jobs and the task registry, and `tables --diff A B` says how two rows differ."""

import json

import pandas as pd

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.protocol.cards import diff, find_card, flatten

GRID = """
description = "two rows on the synthetic default"
table = 2
tasks = ["synthetic-5"]
seeds = [0]
[[methods]]
name = "majority"
[[methods]]
name = "stratified"
selection = "last"
budget = 7
"""


def test_cards_carry_the_stored_data_facts_and_diff_names_what_differs(results, tmp_path,
                                                                        capsys):
    grid = tmp_path / "two.toml"
    grid.write_text(GRID)
    assert main(["run", "--grid", str(grid), "--results", str(results)]) == 0
    assert main(["tables", "--grid", str(grid), "--results", str(results)]) == 0
    folder = results / "tables" / "paper"
    frame = pd.read_csv(folder / "two.csv", keep_default_na=False)
    cards = [json.loads(text) for text in frame["protocol card"]]
    measured = [c for c in cards if c["source"] == "measured"]
    assert [c["row"] for c in measured] == ["majority (majority)", "stratified (stratified)"]
    task = measured[0]["tasks"]["synthetic-5"]
    assert task["data"] == "synthetic" and task["classes"][0] == "happiness"
    assert sum(task["clips scored"].values()) == 110 and "annotations" in task  # every clip
    assert task["exclusions"] == {}
    assert task["mapping"]["synthetic"]["happiness"] == "happiness"
    assert measured[0]["aggregation"].startswith("UF1 / UAR / accuracy of the predictions pooled")
    assert "\\paragraph{Protocol cards}" in (folder / "two.tex").read_text()
    capsys.readouterr()
    assert main(["tables", "--grid", str(grid), "--results", str(results),
                 "--diff", "majority", "stratified"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "majority (majority)  |  stratified (stratified)"
    assert "budget: budget default  |  budget 7" in lines
    assert not any(line.startswith("tasks.") for line in lines)  # same task, same data


def test_a_row_that_names_no_row_or_several_lists_the_rows(results, tmp_path, capsys):
    grid = tmp_path / "two.toml"
    grid.write_text(GRID)
    assert main(["tables", "--grid", str(grid), "--results", str(results),
                 "--diff", "(", "nothing"]) == 2  # "(": both measured rows
    error = capsys.readouterr().err
    assert "'(' names 2 rows" in error and "  1: LR-GACNN" in error
    assert main(["tables", "--results", str(results), "--diff", "1", "2"]) == 2


def test_diff_compares_nested_fields_and_ignores_the_row_names():
    a = {"row": "A", "seeds": [0], "tasks": {"t": {"classes": ["x", "y"], "data": "real"}}}
    b = {"row": "B", "seeds": [0, 1], "tasks": {"t": {"classes": ["x", "y"], "data": "real"}}}
    assert flatten(a)["tasks.t.classes"] == '["x", "y"]'
    assert diff(a, b) == ["seeds: [0]  |  [0, 1]"] and diff(a, dict(a, row="C")) == []
    assert find_card([a, b], "2") is b and find_card([a, b], "A") is a
