"""Tables from stored predictions: pooled scores, seeds, incomplete runs, the synthetic label."""

import numpy as np
import pytest

from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.stats.metrics import score
from mer_bench.benchmark.storage.store import JobRecord, Predictions
from mer_bench.benchmark.stats.runs import run_scores
from mer_bench.benchmark.reporting.tables import comparison_frame, render_markdown, tidy_frame

FOLDS = ["synthetic/sub01", "synthetic/sub02", "synthetic/sub03"]


def record(fold: str, seed: int, labels, predicted, method="m", folds=FOLDS) -> JobRecord:
    logits = np.eye(3)[predicted]
    job = Job(method, "synthetic-5", fold, seed=seed, versions=(("method", "1"),))
    predictions = Predictions(tuple(f"{fold}/c{i}" for i in range(len(labels))),
                              (fold,) * len(labels), np.asarray(labels), {"final": logits},
                              ("a", "b", "c"))
    return JobRecord(job, predictions, {"task": {"folds": folds, "synthetic": True},
                                        "finished": 1.0})


def test_scores_pool_folds_and_average_seeds():
    rng = np.random.default_rng(0)
    records, pooled = [], {}
    for seed in (0, 1):
        labels, predicted = [], []
        for fold in FOLDS:
            y, p = rng.integers(0, 3, 8), rng.integers(0, 3, 8)
            records.append(record(fold, seed, y, p))
            labels.append(y)
            predicted.append(p)
        pooled[seed] = score(np.concatenate(labels), np.concatenate(predicted), 3)
    (run,) = run_scores(records)
    assert run.complete and run.seeds == (0, 1)
    expected = np.array([pooled[0].uf1, pooled[1].uf1]) * 100
    assert run.mean_std("uf1") == pytest.approx((expected.mean(), expected.std(ddof=1)))
    cell = comparison_frame([run]).iloc[0]["synthetic-5 (synthetic) UF1"]
    assert cell == f"{expected.mean():.2f} ± {expected.std(ddof=1):.2f}"


def test_a_run_missing_folds_is_shown_incomplete_never_scored():
    records = [record(fold, 0, [0, 1], [0, 1]) for fold in FOLDS[:2]]
    (run,) = run_scores(records)
    assert not run.complete
    assert comparison_frame([run]).iloc[0]["synthetic-5 (synthetic) UF1"] == \
        "incomplete (2/3 folds)"
    assert np.isnan(tidy_frame([run]).iloc[0]["uf1_mean"])


def test_markdown_says_the_data_is_synthetic_and_missing_cells_say_missing():
    complete = [record(fold, 0, [0, 1, 2], [0, 1, 2]) for fold in FOLDS]
    other_task = Job("n", "casme2-5", "casme2/sub01", versions=(("method", "1"),))
    real = JobRecord(other_task, complete[0].predictions,
                     {"task": {"folds": ["casme2/sub01"], "synthetic": False}, "finished": 1.0})
    runs = run_scores(complete + [real])
    text = render_markdown(runs)
    assert "SYNTHETIC" in text and "synthetic-5" in text
    frame = comparison_frame(runs)
    row_m = frame[frame.method == "m"].iloc[0]
    assert row_m["synthetic-5 (synthetic) UF1"] == "100.00"
    assert row_m["casme2-5 UF1"] == "missing"


def test_the_printed_comparison_is_one_row_per_run_and_fits_a_terminal():
    """Many methods on many tasks: rows grow, columns do not (a line per method x task)."""
    records = []
    for task in ("synthetic-5", "casme2-5", "samm-5", "mmew-6"):
        for method in ("majority", "stratified", "ststnet[flows=one]"):
            for fold in FOLDS:
                budget = 400 if method.startswith("ststnet") else None
                job = Job(method, task, fold, budget=budget, versions=(("method", "1"),))
                predictions = Predictions((f"{fold}/c0", f"{fold}/c1"), (fold, fold),
                                          np.array([0, 1]), {"final": np.eye(3)[[0, 2]]},
                                          ("a", "b", "c"))
                records.append(JobRecord(job, predictions, {
                    "task": {"folds": FOLDS, "synthetic": task == "synthetic-5"},
                    "finished": 1.0}))
    text = render_markdown(run_scores(records))
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 4 * 3  # header, rule, a row per method x task
    assert max(len(line) for line in table) <= 120
    assert table[0].split("|")[1:-1] == [f" {name:<{len(cell) - 2}} " for name, cell in zip(
        ["method", "task", "selection", "budget", "UF1", "UAR", "folds x seeds"],
        table[0].split("|")[1:-1])]
    assert sum("synthetic-5 (synthetic)" in line for line in table) == 3
    # the budget says its unit, and the caption what `default` means
    assert all("| 400 it " in line for line in table if line.startswith("| ststnet"))
    assert "Budget: `N it`, N training iterations" in text


def test_ablation_table_puts_a_check_mark_per_switch_in_table5_order():
    """The columns are the switches the registered entries declare (ablation_switches)."""
    from mer_bench.benchmark.cli.results import method_switches
    from mer_bench.benchmark.reporting.tables import ablation_frame, render_ablation

    records = [record(fold, 0, [0, 1, 2], [0, 1, 1], method=m)
               for m in ("skd_tstsan", "skd_tstsan.base", "majority") for fold in FOLDS]
    runs = run_scores(records)
    switches, legends = method_switches(runs)
    assert set(switches) == {"skd_tstsan", "skd_tstsan.base"}  # majority has none
    assert "Mag = motion magnification" in legends[0]
    frame = ablation_frame(runs, switches)
    assert list(frame.columns[:5]) == ["method", "Mag", "ECA", "TSM", "SKD"]
    assert frame.method.tolist() == ["skd_tstsan.base", "skd_tstsan"]  # fewest modules first
    assert frame.iloc[1][["Mag", "ECA", "TSM", "SKD"]].tolist() == ["✓"] * 4
    assert frame.iloc[0][["Mag", "ECA", "TSM", "SKD"]].tolist() == [""] * 4
    rendered = render_ablation(runs, switches, legends)
    assert "SYNTHETIC" in rendered and "TSM = temporal shift" in rendered
    assert ablation_frame(runs, {}).empty


def test_runs_carry_subject_intervals_accuracy_and_paired_p_values_into_the_csv():
    """From stored records: the interval brackets the pooled score, accuracy and the
    subject-mean variant are in the tidy CSV, and a run paired with itself has p = 1."""
    rng = np.random.default_rng(5)
    labels = {fold: rng.integers(0, 3, 12) for fold in FOLDS}  # the same clips for both
    records = []
    for method, skill in (("good", 0.7), ("poor", 0.3)):
        for fold, y in labels.items():
            p = np.where(rng.random(12) < skill, y, rng.integers(0, 3, 12))
            records.append(record(fold, 0, y, p, method=method))
    good, poor = run_scores(records)
    line = tidy_frame([good]).iloc[0]
    assert line.uf1_ci95_low <= line.uf1_mean <= line.uf1_ci95_high
    assert line.uf1_ci95_low < line.uf1_ci95_high and 0 <= line.accuracy_mean <= 100
    assert line.uf1_subject_mean == pytest.approx(good.subject_mean["uf1"])
    assert good.p_value(good) == 1.0 and 0 < poor.p_value(good) <= 1
    assert good.intervals == run_scores(records)[0].intervals  # seeded: the same again
