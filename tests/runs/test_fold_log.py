"""A line per finished fold (subject, train loss, test accuracy, pooled UF1 / UAR so far),
printed unless --quiet and always kept in the command's log file; progress names what runs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.stats.metrics import score
from mer_bench.benchmark.storage.store import Store

LINE = re.compile(r"^ststnet synthetic-5 seed 0 fold (\S+): train loss (\d+\.\d{4}), test acc "
                  r"(\d\.\d{4}) \((\d+) clips\); pooled over (\d) of 10 folds so far: "
                  r"UF1 (\d\.\d{4}), UAR (\d\.\d{4})$")


def _lines(text: str) -> list[re.Match]:
    return [m for m in map(LINE.match, text.splitlines()) if m]


@pytest.mark.parametrize("quiet", [False, True])
def test_each_finished_fold_gets_its_line_and_the_log_keeps_it(results, capsys, quiet):
    assert main(["run", "--methods", "ststnet", "--budget", "12", "--folds", "2",
                 "--results", str(results), *(["--quiet"] if quiet else [])]) == 0
    captured = capsys.readouterr()
    logs = list((results / "logs").glob("run-*.log"))
    assert len(logs) == 1
    logged = _lines(logs[0].read_text())
    assert [m.group(5) for m in logged] == ["1", "2"]
    assert _lines(captured.out) == [] if quiet else \
        [m.group(0) for m in _lines(captured.out)] == [m.group(0) for m in logged]

    records = {r.job.fold: r for r in Store(results).records()}
    assert [m.group(1) for m in logged] == sorted(records)
    labels, guesses = [], []
    for match in logged:
        record = records[match.group(1)]
        predicted = record.predictions.logits["final"].argmax(1)
        assert float(match.group(3)) == pytest.approx(
            float(np.mean(predicted == record.predictions.labels)), abs=5e-5)
        assert int(match.group(4)) == len(predicted)
        curves = Store(results).curves(record.job)
        assert float(match.group(2)) == pytest.approx(curves["loss"].tail(10).mean(), abs=5e-5)
        labels += list(record.predictions.labels)
        guesses += list(predicted)
    pooled = score(np.array(labels), np.array(guesses), 5)
    assert (float(logged[-1].group(6)), float(logged[-1].group(7))) == \
        (pytest.approx(pooled.uf1, abs=5e-5), pytest.approx(pooled.uar, abs=5e-5))
    if not quiet:  # the bar names the run, task and fold that runs, and where the log is
        assert "now ststnet synthetic-5 fold" in captured.err
        assert f"per-fold log: {logs[0]}" in captured.out
