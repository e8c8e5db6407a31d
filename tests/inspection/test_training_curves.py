"""Every torch job stores its training curves (loss per step, the epochs its selection rule
scored) beside its result, covered by the store's digests; `curves` draws a run's."""

import pandas as pd

from mer_bench.benchmark.cli import main


def test_a_trained_job_stores_its_loss_per_step_and_scored_epochs(results, capsys):
    assert main(["run", "--methods", "ststnet.shared", "--budget", "12", "--selection", "val",
                 "--results", str(results), "--quiet"]) == 0
    folders = [p for p in (results / "runs").iterdir()]
    curves = [pd.read_csv(p / "curves.csv") for p in folders]
    assert len(curves) == 10 and all(len(c) == 12 for c in curves)
    assert all(c.step.tolist() == list(range(1, 13)) and c.loss.notna().all() for c in curves)
    scored = curves[0].dropna(subset=["selection_accuracy"])
    assert len(scored) >= 1 and scored.step.iloc[-1] == 12  # the last step is scored
    assert curves[0].selected.sum() == 1  # the epoch `val` kept
    assert main(["store", "verify", "--results", str(results)]) == 0  # in the digests
    capsys.readouterr()
    assert main(["curves", "--results", str(results)]) == 0
    drawn = capsys.readouterr().out.split()
    assert len(drawn) == 1 and drawn[0].endswith(".png") and "ststnet.shared" in drawn[0]
    assert (results / "tables" / "curves").is_dir()


def test_folds_trained_together_store_a_curve_each(results):
    assert main(["run", "--methods", "ststnet.shared", "--budget", "6", "--fold-parallel", "4",
                 "--results", str(results), "--quiet"]) == 0
    curves = [pd.read_csv(p / "curves.csv") for p in (results / "runs").iterdir()]
    assert len(curves) == 10 and all(len(c) == 6 for c in curves)
    assert len({round(c.loss.iloc[0], 6) for c in curves}) > 1  # each fold its own loss
    assert all(c.selection_accuracy.isna().all() for c in curves)  # `last` scores no epoch


def test_a_method_that_does_not_train_stores_no_curves(results):
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    assert not any((p / "curves.csv").exists() for p in (results / "runs").iterdir())
