"""The paper's Fig. 9 (amplification factor and transfer learning, in UAR as the paper plots
them, with its stated transfer gains beside the measured ones) and the sensitivity figures
(key frames, preprocessing), drawn from stored runs with matplotlib.

A point no run produced is left out, saying so, rather than drawn as a zero.
"""

from __future__ import annotations

from dataclasses import replace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mer_bench.benchmark.paper.reference import reported_figure  # noqa: E402
from mer_bench.benchmark.paper.tables import (  # noqa: E402
    MISSING, PaperTable, run_label, run_of, runs_by_key, setting_of)
from mer_bench.benchmark.stats.runs import RunScores  # noqa: E402


def _uar(run: RunScores | None) -> float | None:
    return run.mean_std("uar")[0] if run and run.complete else None


def _alpha(spec) -> float:
    return dict(spec.options).get("alpha", 2.0)


GAIN = "gain with CK+ transfer (points)"


def fig9_points(table: PaperTable, runs: list[RunScores],
                reported: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fig. 9 as numbers: each measured point (UAR, %) of its two panels, and the transfer
    gain per task, measured beside the paper's stated one (results/reference/
    paper_figures.csv). A point no run produced is `missing`, never drawn."""
    reported = reported_figure(9) if reported is None else reported
    keyed, grid, rows = runs_by_key(runs), table.grid, []
    default = next((s for s in grid.methods if s.pretrain and _alpha(s) == 2.0), None)
    scratch = next((s for s in grid.methods if not s.pretrain and _alpha(s) == 2.0), None)
    sweep = sorted((s for s in grid.methods if s.pretrain), key=_alpha)
    for task in grid.tasks:
        points = [s for s in sweep if s.runs_on(task)]
        for spec in points if len(points) > 1 else ():
            rows.append(("amplification", task, f"factor {_alpha(spec):g}, with transfer",
                         _uar(run_of(keyed, spec, grid, task)), None))
        if default and scratch and default.runs_on(task) and scratch.runs_on(task):
            with_, without = (_uar(run_of(keyed, s, grid, task)) for s in (default, scratch))
            stated = reported[(reported.task == task) & (reported.quantity == GAIN)]
            rows += [("transfer", task, "with transfer", with_, None),
                     ("transfer", task, "without transfer", without, None),
                     ("transfer", task, GAIN,
                      None if None in (with_, without) else with_ - without,
                      stated.value.item() if len(stated) else None)]
    return pd.DataFrame(rows, columns=["panel", "task", "point", "measured UAR",
                                       "reported (the paper's text)"])


def fig9_figure(table: PaperTable, runs: list[RunScores],
                points: pd.DataFrame | None = None) -> plt.Figure:
    """Fig. 9 as the paper draws it, in UAR: against the amplification factor (left), and
    with and without transfer per task with the measured and stated gains (right).
    `points`: `fig9_points` of the same, if the caller has them already."""
    points = fig9_points(table, runs) if points is None else points
    synthetic = {r.task for r in runs if r.synthetic}
    figure, (sweep, bars) = plt.subplots(1, 2, figsize=(10, 4))
    drawn = points.dropna(subset=["measured UAR"])
    for task, rows in drawn[drawn.panel == "amplification"].groupby("task", sort=False):
        factors = [float(p.split()[1].rstrip(",")) for p in rows.point]
        label = task + (" (SYNTHETIC)" if task in synthetic else "")
        sweep.plot(factors, rows["measured UAR"], marker="o", label=label)
    sweep.set_xlabel("amplification factor (with transfer)")
    sweep.set_ylabel("UAR (%)")
    sweep.set_xticks([1, 2, 3, 4, 5])
    if sweep.get_legend_handles_labels()[0]:
        sweep.legend(fontsize=7)
    transfer = points[points.panel == "transfer"]
    tasks = list(dict.fromkeys(transfer.task))
    width = 0.38
    for offset, point in ((-width / 2, "without transfer"), (width / 2, "with transfer")):
        heights = [_value(transfer, t, point) for t in tasks]
        bars.bar([i + offset for i, h in enumerate(heights) if h is not None],
                 [h for h in heights if h is not None], width, label=point)
    for i, task in enumerate(tasks):
        gain = transfer[(transfer.task == task) & (transfer.point == GAIN)].iloc[0]
        measured, stated = gain["measured UAR"], gain["reported (the paper's text)"]
        text = ("measured " + (MISSING if pd.isna(measured) else f"{measured:+.2f}")
                + ("" if pd.isna(stated) else f"\npaper {stated:+.2f}"))
        bars.annotate(text, (i, 0), xytext=(0, 4), textcoords="offset points", ha="center",
                      fontsize=7)
    bars.set_xticks(range(len(tasks)),
                    [t + (" (SYNTHETIC)" if t in synthetic else "") for t in tasks])
    bars.set_ylabel("UAR (%), amplification factor 2")
    if bars.get_legend_handles_labels()[0]:
        bars.legend(fontsize=7)
    title = "Fig. 9: amplification factor and transfer learning (SKD-TSTSAN)"
    missing = points[points.point != GAIN]["measured UAR"].isna().sum()
    if missing:
        title += f"\n{MISSING}: {missing} points have no run in the store"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def sensitivity_points(table: PaperTable, runs: list[RunScores]) -> pd.DataFrame:
    """A sensitivity table (key frames, preprocessing) as numbers: each method's UF1 (%, seed
    mean) and its 95% interval at each setting, per task; a setting no run produced is
    `missing` (no number), never drawn."""
    keyed, grid, rows = runs_by_key(runs), table.grid, []
    for task in grid.tasks:
        for spec in (s for s in grid.methods if s.runs_on(task)):
            run = run_of(keyed, spec, grid, task)
            done = bool(run and run.complete)
            low, high = run.intervals.get("uf1", (None, None)) if done else (None, None)
            rows.append((task, run_label(replace(spec, preprocess=()), grid),
                         setting_of(spec, table.key, grid),
                         run.mean_std("uf1")[0] if done else None, low, high,
                         run.data if run else MISSING))
    return pd.DataFrame(rows, columns=["task", "method", "setting", "UF1", "UF1 low",
                                       "UF1 high", "data"])


def sensitivity_figure(table: PaperTable, points: pd.DataFrame) -> plt.Figure:
    """Each method's UF1 against the setting (the key-frame figure: annotated, k = 1, 2, 4,
    then the estimated apexes), one panel per task, with 95% intervals."""
    tasks = list(dict.fromkeys(points.task))
    figure, panels = plt.subplots(1, max(len(tasks), 1), figsize=(5.5 * max(len(tasks), 1), 4),
                                  squeeze=False)
    for axes, task in zip(panels[0], tasks):
        rows = points[points.task == task]
        settings = list(dict.fromkeys(rows.setting))
        for method, own in rows.groupby("method", sort=False):
            drawn = own.dropna(subset=["UF1"])
            x = [settings.index(s) for s in drawn.setting]
            errors = [drawn.UF1 - drawn["UF1 low"], drawn["UF1 high"] - drawn.UF1]
            axes.errorbar(x, drawn.UF1, yerr=errors, marker="o", capsize=3, label=method)
        axes.set_xticks(range(len(settings)), [s.replace("key_frame_shift=", "k=")
                                              for s in settings], rotation=30, ha="right")
        data = ", ".join(sorted(set(rows.data) - {MISSING})) or "no runs"
        axes.set_title(f"{task} ({'SYNTHETIC' if data == 'synthetic' else data})", fontsize=9)
        axes.set_ylabel("UF1 (%), 95% interval")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    title = f"{table.key}: UF1 by setting"
    missing = int(points.UF1.isna().sum())
    if missing:
        title += f"\n{MISSING}: {missing} points have no run in the store"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def _value(points: pd.DataFrame, task: str, point: str) -> float | None:
    value = points[(points.task == task) & (points.point == point)]["measured UAR"].iloc[0]
    return None if pd.isna(value) else float(value)
