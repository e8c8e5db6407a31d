"""Figures drawn from stored runs with matplotlib: confusion matrices (the paper's Fig. 5),
training curves, t-SNE of features, Grad-CAM panels, `predict`'s picture; `save` writes one
as the harness's own PNG. The paper's Fig. 9 and sensitivity figures: paper/figures.py.

Every figure says in its title which data its runs read (SYNTHETIC where they are) and leaves
a run that is missing out, saying so, rather than drawing a zero.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mer_bench.benchmark.stats.runs import RunScores  # noqa: E402


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
    from mer_bench.benchmark.storage.owned_outputs import PNG_MARK, write_file

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
