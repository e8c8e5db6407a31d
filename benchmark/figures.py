"""The paper's figures, drawn from stored runs with matplotlib: the confusion matrices of
Fig. 5 and the transfer-learning and amplification-factor panels of Fig. 9 (in UAR, as the
paper plots them, with its stated transfer gains beside the measured ones).

Every figure says in its title which data its runs read (SYNTHETIC where they are) and leaves
a run that is missing out, saying so, rather than drawing a zero.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mer_bench.benchmark.paper_tables import (  # noqa: E402
    MISSING, PaperTable, run_label, run_of, runs_by_key, setting_of)
from mer_bench.benchmark.reference import reported_figure  # noqa: E402
from mer_bench.benchmark.tables import RunScores  # noqa: E402


def _data_label(run: RunScores) -> str:
    return f"{run.task} (SYNTHETIC)" if run.synthetic else run.task


def confusion_figure(run: RunScores) -> plt.Figure:
    """Fig. 5: row-normalised confusion matrix (colour) with counts, summed over seeds."""
    counts = np.sum([np.array(s.confusion) for s in run.per_seed], axis=0)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    size = 1.2 + 0.9 * len(run.classes)
    figure, axes = plt.subplots(figsize=(size + 1.2, size))
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(share):
        axes.text(j, i, f"{value:.2f}\n({counts[i, j]})", ha="center", va="center", fontsize=8,
                  color="white" if value > 0.6 else "black")
    axes.set_xticks(range(len(run.classes)), run.classes, rotation=45, ha="right")
    axes.set_yticks(range(len(run.classes)), run.classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"{run.method}\n{_data_label(run)}, selection {run.selection}", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    figure.tight_layout()
    return figure


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


def curves_figure(title: str, folds: list[pd.DataFrame]) -> plt.Figure:
    """A run's training curves: each fold's loss per step (thin), their median (thick), and
    on a second axis the accuracy of every epoch a selection rule scored (dots; the epoch
    it kept ringed)."""
    figure, loss_axis = plt.subplots(figsize=(7, 4))
    longest = max(len(f) for f in folds)
    for fold in folds:
        loss_axis.plot(fold.step, fold.loss, color="tab:blue", alpha=0.25, linewidth=0.7)
    padded = np.full((len(folds), longest), np.nan)
    for row, fold in enumerate(folds):
        padded[row, :len(fold)] = fold.loss
    loss_axis.plot(np.arange(1, longest + 1), np.nanmedian(padded, axis=0), color="tab:blue",
                   linewidth=2, label=f"loss (median of {len(folds)} folds)")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("training loss")
    scored = [f.dropna(subset=["selection_accuracy"]) for f in folds]
    if any(len(f) for f in scored):
        accuracy_axis = loss_axis.twinx()
        for fold in scored:
            accuracy_axis.scatter(fold.step, fold.selection_accuracy, s=6, color="tab:orange")
            kept = fold[fold.selected == 1]
            accuracy_axis.scatter(kept.step, kept.selection_accuracy, s=40, facecolors="none",
                                  edgecolors="black")
        accuracy_axis.set_ylabel("accuracy of the epochs its rule scored (ringed: kept)")
        accuracy_axis.set_ylim(0, 1.05)
    loss_axis.legend(fontsize=7, loc="upper right")
    loss_axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def tsne_figure(title: str, features: np.ndarray, labels: np.ndarray,
                classes: tuple[str, ...], seed: int = 0) -> plt.Figure:
    """Figs. 8 and 11 kind: a 2-D t-SNE (scikit-learn, PCA start, seeded) of feature
    vectors, each point a test clip coloured by its true class."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca",
                  random_state=seed).fit_transform(features.astype(np.float64))
    figure, axes = plt.subplots(figsize=(5.5, 5))
    for index, name in enumerate(classes):
        chosen = labels == index
        if chosen.any():
            axes.scatter(points[chosen, 0], points[chosen, 1], s=12, label=f"{name} "
                         f"({int(chosen.sum())})")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(fontsize=7, markerscale=1.5)
    axes.set_title(title, fontsize=8)
    figure.tight_layout()
    return figure


def gradcam_figure(title: str, panels: list[tuple[np.ndarray, np.ndarray, str]]) -> plt.Figure:
    """Fig. 7 kind: each clip's image (grey) under its Grad-CAM map (jet, half transparent),
    captioned with its clip and classes."""
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.9 * rows + 0.4),
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (image, cam, caption) in zip(axes.flat, panels):
        axis.imshow(image, cmap="gray", vmin=0, vmax=1)
        axis.imshow(cam, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axis.set_title(caption, fontsize=7)
    figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    return figure


def save(figure: plt.Figure, path: Path, guard: bool = False) -> Path:
    """Writes the PNG whole (a temporary file renamed), marked as the harness's; `guard`: a
    path the user named, where only a PNG the harness wrote is replaced."""
    from mer_bench.benchmark.owned_outputs import PNG_MARK, write_file

    try:
        return write_file(path, "picture", lambda temp: figure.savefig(
            temp, dpi=120, format="png", metadata=PNG_MARK), guard=guard)
    finally:
        plt.close(figure)


def prediction_figure(title: str, panels: list[tuple], classes: tuple[str, ...],
                      probabilities: dict[str, np.ndarray]) -> plt.Figure:
    """`predict`'s picture: what the model saw (crops, its input, Grad-CAM where its method
    offers one) and the probabilities of each of its heads."""
    figure, axes = plt.subplots(1, len(panels) + 1, figsize=(2.7 * (len(panels) + 1), 3.2),
                                squeeze=False)
    for axis, (caption, image, overlay) in zip(axes[0], panels):
        axis.axis("off")
        axis.imshow(image, cmap=None if image.ndim == 3 else "gray", vmin=0, vmax=1)
        if overlay is not None:
            axis.imshow(overlay, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axis.set_title(caption, fontsize=7)
    bars = axes[0][-1]
    width = 0.8 / len(probabilities)
    for index, (head, values) in enumerate(probabilities.items()):
        bars.barh(np.arange(len(classes)) + index * width, values, height=width, label=head)
    bars.set_yticks(np.arange(len(classes)) + 0.4 - width / 2, classes, fontsize=7)
    bars.set_xlim(0, 1)
    bars.set_xlabel("probability", fontsize=7)
    bars.legend(fontsize=6)
    figure.suptitle(title, fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.9))
    return figure
