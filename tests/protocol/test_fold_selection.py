"""`run --folds` (some folds of each task: a quick check, stored fold by fold, the run
incomplete until the rest run) and `run --recipe KEY=VALUE` (a recipe field of --methods)."""

import json

import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.protocol.folds import select_folds

FOLDS = ["casme2/sub01", "casme2/sub02", "samm/006", "smic/s1"]


def test_counts_and_names_select_folds_in_the_tasks_order():
    assert select_folds(FOLDS, ("2",), "t") == FOLDS[:2]
    assert select_folds(FOLDS, ("s1", "casme2/sub02"), "t") == ["casme2/sub02", "smic/s1"]
    assert select_folds(FOLDS, ("1", "sub01"), "t") == ["casme2/sub01"]  # no fold twice
    assert select_folds(FOLDS, ("9",), "t") == FOLDS
    with pytest.raises(ValueError, match="--folds sub9: task t has no such fold; its folds: "
                                         "casme2/sub01, casme2/sub02, samm/006, smic/s1"):
        select_folds(FOLDS, ("sub9",), "t")


def test_a_run_of_some_folds_is_stored_incomplete_and_the_rest_run_later(results, capsys):
    common = ["run", "--methods", "majority", "--results", str(results), "--quiet"]
    assert main([*common, "--folds", "2,sub07"]) == 0
    out = capsys.readouterr().out
    assert "3 jobs run, 0 already done" in out and "incomplete (3/10 folds)" in out
    folds = {json.loads(p.read_text())["fold"]
             for p in (results / "runs").glob("*/job.json")}
    assert folds == {"synthetic/sub01", "synthetic/sub02", "synthetic/sub07"}
    assert main(common) == 0
    out = capsys.readouterr().out
    assert "7 jobs run, 3 already done" in out and "incomplete" not in out
    assert main([*common, "--folds", "sub99"]) == 2
    assert "task synthetic-5 has no such fold" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--folds", "0"])
    assert "expected a count (1 or more) or fold names" in capsys.readouterr().err


def test_a_recipe_field_enters_the_run_label_and_is_refused_where_it_cannot_apply(results,
                                                                                  capsys):
    common = ["run", "--results", str(results), "--quiet", "--folds", "1"]
    assert main([*common, "--methods", "ststnet.shared", "--budget", "1", "--recipe",
                 "batch_size=8", "--recipe", "lr=0.01"]) == 0
    assert "ststnet.shared[recipe.batch_size=8,recipe.lr=0.01]" in capsys.readouterr().out
    (spec,) = (results / "runs").glob("*/job.json")
    assert json.loads(spec.read_text())["recipe"] == {"batch_size": 8, "lr": 0.01}
    assert main([*common, "--methods", "majority", "--recipe", "batch_size=8"]) == 2
    assert "has no training recipe" in capsys.readouterr().err
    assert main([*common, "--methods", "ststnet.shared", "--recipe", "epochs=3"]) == 2
    assert "cannot be set per task" in capsys.readouterr().err
    assert main([*common, "--grid", "quick", "--recipe", "lr=1"]) == 2
    assert "a grid's methods set theirs in the grid file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--methods", "ststnet.shared", "--recipe", "lr=fast"])
    assert "expected KEY=NUMBER" in capsys.readouterr().err
