"""`run --plan` / `tables --plan`: every job and its cost shown, every name checked, and
nothing generated, prepared or run; the costs behind plans and the progress bar."""

from __future__ import annotations

import textwrap

import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.execution.costs import CostModel
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.storage.store import Store


def _refuse_preparation(monkeypatch) -> None:
    """Any generation or preparation of data fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a plan prepared or generated data")

    monkeypatch.setattr("mer_bench.benchmark.execution.planning.prepare_task", refuse)
    monkeypatch.setattr("mer_bench.benchmark.execution.planning.prepare_clips", refuse)
    monkeypatch.setattr("mer_bench.datasets.synthetic.generate", refuse)


def _table(out: str) -> dict[str, str]:
    """The plan's rows: run and task ("NAME on TASK seed N") -> the rest of the line."""
    rows = {}
    for line in out.splitlines()[2:]:
        if not line.strip():
            break
        label, _, rest = line.partition(" seed ")
        seed, _, cells = rest.strip().partition(" ")
        rows[f"{label} seed {seed}"] = cells.strip()
    return rows


def _counts(cells: str) -> list[str]:
    """folds, stored, to run."""
    return cells.split()[:3]


def test_run_plan_shows_stored_and_to_run_jobs_and_prepares_nothing(results, monkeypatch,
                                                                     capsys):
    folds = len([s for s in (results / "data" / "synthetic").iterdir() if s.is_dir()])
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    stored = sorted(p.name for p in (results / "runs").iterdir())
    capsys.readouterr()
    _refuse_preparation(monkeypatch)
    assert main(["run", "--plan", "--grid", "paper", "--profile", "quick",
                 "--results", str(results)]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert _counts(rows["ststnet budget 30 on synthetic-5 seed 0"]) == [str(folds), "0",
                                                                        str(folds)]
    # the first run of a torch method nothing stored tells of gets a measured step
    assert "measured step x 30" in rows["skd_tstsan budget 30 on synthetic-5 seed 0"]
    assert _counts(rows["tscnn budget 30 selection oracle on synthetic-5 seed 0"]) == \
        [str(folds), "0", str(folds)]
    # a task never prepared under a grid's settings: its folds counted from its annotations
    # (its jobs' keys, which hold its bundles' digest, unknown: none can be found stored)
    assert _counts(rows["skd_tstsan[segments=5,domains=5] budget 10 on synthetic-5 seed 0"]) \
        == [str(folds), "0", str(folds)]
    assert "skd_tstsan[segments=5,domains=5] budget 10: synthetic-5: not prepared" in out
    assert "counted from their annotations" in out
    assert "Nothing was run (--plan)." in out
    assert sorted(p.name for p in (results / "runs").iterdir()) == stored  # nothing ran

    # what is stored counts as stored: the quick grid's majority row, nothing to run
    assert main(["run", "--plan", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert rows["majority on synthetic-5 seed 0"].split() == [str(folds), str(folds), "0", "-"]
    assert _counts(rows["ststnet budget 400 on synthetic-5 seed 0"]) == [str(folds), "0",
                                                                         str(folds)]
    assert f"{5 * folds} jobs in 5 runs: {folds} stored, {4 * folds} to run" in out

    # a damaged stored job counts as to run, and a plan leaves it where it is (only a run
    # moves it aside)
    damaged = results / "runs" / stored[0] / "predictions.json"
    damaged.write_text(damaged.read_text().replace("[", "[ ", 1))
    assert main(["run", "--plan", "--results", str(results)]) == 0
    rows = _table(capsys.readouterr().out)
    assert rows["majority on synthetic-5 seed 0"].split()[:3] == [str(folds), str(folds - 1), "1"]
    assert damaged.is_file() and not (results / "quarantine").exists()

    # tables --plan: the same for a table's grid
    assert main(["tables", "--plan", "--grid", "table5", "--profile", "quick",
                 "--results", str(results)]) == 0
    rows = _table(capsys.readouterr().out)
    assert _counts(rows["skd_tstsan.base budget 30 on synthetic-5 seed 0"]) == \
        [str(folds), "0", str(folds)]


TYPO = textwrap.dedent('''
    import numpy as np
    from mer_bench.methods import register
    from mer_bench.methods.base import Method

    class Typo(Method):
        views = ("flowz",)
        def fit_predict(self, train, test, context):
            return {"final": np.zeros((len(test), context.num_classes))}

    register("typo_view_NAME", Typo)
''')


@pytest.mark.parametrize("plan", [["--plan"], []])
def test_a_view_name_typo_fails_before_any_data_are_prepared(results, tmp_path, monkeypatch,
                                                             capsys, plan):
    name = f"typo_view_{len(plan)}"  # a registry holds a name once per process
    plugin = tmp_path / f"{name}.py"
    plugin.write_text(TYPO.replace("typo_view_NAME", name))
    _refuse_preparation(monkeypatch)
    assert main(["run", *plan, "--plugin", str(plugin), "--methods", name,
                 "--results", str(results), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert f"method {name} reads view 'flowz'" in error
    assert "Did you mean flows" in error


def test_an_unknown_task_in_a_plan_is_named(results, monkeypatch, capsys):
    _refuse_preparation(monkeypatch)
    assert main(["run", "--plan", "--methods", "majority", "--tasks", "synthetic-55",
                 "--results", str(results)]) == 2
    assert "unknown task 'synthetic-55'" in capsys.readouterr().err


def _job(method="ststnet", task="t", fold="s1", budget=None) -> Job:
    return Job(method, task, fold, budget=budget)


def test_costs_come_from_like_jobs_then_per_iteration_then_a_measured_step():
    model = CostModel(measure=True)
    for fold, seconds in (("s1", 2.0), ("s2", 4.0), ("s3", 30.0)):
        model.add(_job(task="a", fold=fold, budget=100), seconds)
    model.add(_job(task="a", fold="s4", budget=100), float("nan"))  # never a figure
    assert model.estimate(_job(task="a", budget=100)) == (4.0, "3 stored like jobs")
    seconds, basis = model.estimate(_job(task="b", budget=200))  # another task: per iteration
    assert seconds == pytest.approx(0.04 * 200) and "per iteration" in basis
    seconds, basis = model.estimate(_job(method="off_apexnet", task="b", budget=5))
    assert seconds > 0 and basis == "measured step x 5"
    assert model.estimate(_job(method="majority", task="b")) == \
        (None, "no stored like job, no training step to time")
    unmeasured = CostModel(measure=False)
    assert unmeasured.estimate(_job(method="off_apexnet", budget=5))[0] is None


def test_a_plan_reads_timings_the_store_holds(results):
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    records = list(Store(results).records())
    model = CostModel.of_store(Store(results), measure=False)
    seconds, basis = model.estimate(records[0].job)
    timings = sorted(r.info["timings"]["fit_predict_s"] for r in records)
    assert seconds == pytest.approx(timings[len(timings) // 2] if len(timings) % 2 else
                                    (timings[len(timings) // 2 - 1] + timings[len(timings) // 2]) / 2)
    assert basis == f"{len(records)} stored like jobs"


def test_the_progress_bar_weighs_each_job_by_its_expected_cost(monkeypatch, tmp_path):
    from mer_bench.benchmark.execution import runner
    from mer_bench.benchmark.execution.config import RunConfig

    model = CostModel(measure=False)
    model.add(_job(method="ststnet", task="a", fold="s9", budget=100), 30.0)
    model.add(_job(method="off_apexnet", task="a", fold="s9", budget=100), 2.0)
    monkeypatch.setattr(CostModel, "of_store", classmethod(lambda cls, *a, **k: model))
    pending = [_job(method="ststnet", task="a", budget=100),
               _job(method="off_apexnet", task="a", budget=100),
               _job(method="majority", task="a")]
    weights = runner._weights(pending, RunConfig(results=tmp_path, progress=True))
    assert [weights[job.key] for job in pending] == [30.0, 2.0, 16.0]  # unknown: the median
    quiet = runner._weights(pending, RunConfig(results=tmp_path, progress=False))
    assert set(quiet.values()) == {1.0}


def test_a_measured_step_is_kept_for_the_machine_so_a_second_plan_gives_the_same_figure(
        tmp_path, monkeypatch):
    """`run --plan` twice: the second reads the first's measured step (the same estimate, no
    timing); another thread count is another machine setting, measured anew."""
    from mer_bench.benchmark.execution.config import RunConfig

    config = RunConfig(results=tmp_path, threads=1)
    first = CostModel.of_store(Store(tmp_path), config).estimate(
        _job(method="off_apexnet", budget=7))
    cache = tmp_path / "cache" / "step-costs.json"
    assert first[0] > 0 and first[1] == "measured step x 7" and cache.is_file()

    def never(self, method):
        raise AssertionError("measured again")

    monkeypatch.setattr(CostModel, "_time_steps", never)
    again = CostModel.of_store(Store(tmp_path), config).estimate(
        _job(method="off_apexnet", budget=7))
    assert again == first
    two_threads = CostModel.of_store(Store(tmp_path), RunConfig(results=tmp_path, threads=2))
    with pytest.raises(AssertionError, match="measured again"):
        two_threads.estimate(_job(method="off_apexnet", budget=7))
    cache.write_text("{not json")  # a damaged cache is measured anew, never trusted
    monkeypatch.undo()
    assert CostModel.of_store(Store(tmp_path), config).estimate(
        _job(method="off_apexnet", budget=7))[0] > 0


def test_a_runs_closing_line_says_its_planning_apart_from_its_jobs(results, capsys):
    """Generating and preparing data is not the jobs' time: the closing line splits the two
    and they add up to the whole."""
    import re

    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if " jobs run, " in line)
    found = re.search(r"in ([\d.]+) s: ([\d.]+) s planning \(generating and preparing data\), "
                      r"([\d.]+) s running jobs\.", line)
    assert found, line
    total, planning, running = map(float, found.groups())
    assert planning > 0 and running > 0 and abs(planning + running - total) <= 0.11


def test_a_plan_on_a_fresh_folder_counts_every_runs_jobs_and_generates_nothing(tmp_path,
                                                                              monkeypatch,
                                                                              capsys):
    """Before anything was generated or prepared, the folds of the synthetic tasks come from
    their generator's spec: every row has its jobs, the summary never says 0 of them."""
    import re

    _refuse_preparation(monkeypatch)
    fresh = tmp_path / "fresh"
    assert main(["run", "--plan", "--grid", "paper", "--profile", "quick", "--results",
                 str(fresh)]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert len(rows) == 34 and all(_counts(cells)[0] != "?" for cells in rows.values())
    assert _counts(rows["ststnet budget 30 on synthetic-5 seed 0"]) == ["10", "0", "10"]
    summary = next(line for line in out.splitlines() if " jobs in 34 runs: " in line)
    jobs = int(summary.split()[0])
    assert jobs == sum(int(_counts(cells)[0]) for cells in rows.values()) > 300
    assert re.search(rf": 0 stored, {jobs} to run \({jobs} of them on tasks not prepared here "
                     r"yet, counted from their annotations\)", summary), summary
    assert not (fresh / "data").exists()  # nothing generated
