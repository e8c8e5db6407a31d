"""The paper's figures, drawn from stored runs with matplotlib: the confusion matrices of
Fig. 5 and the transfer-learning and amplification-factor panels of Fig. 9.

Every figure says in its title which data its runs read (SYNTHETIC where they are) and leaves
a run that is missing out, saying so, rather than drawing a zero.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mer_bench.benchmark.paper_tables import (  # noqa: E402
    MISSING, PaperTable, run_label, run_of, runs_by_key)
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


def _uf1(run: RunScores | None) -> float | None:
    return run.mean_std("uf1")[0] if run and run.complete else None


def fig9_figure(table: PaperTable, runs: list[RunScores]) -> plt.Figure:
    """Fig. 9: UF1 against the amplification factor with and without transfer (left), and
    UF1 per task with and without transfer at the default factor (right)."""
    keyed = runs_by_key(runs)
    grid = table.grid
    figure, (sweep, bars) = plt.subplots(1, 2, figsize=(10, 4))
    missing = []
    synthetic = {r.task for r in runs if r.synthetic}
    for transfer in (False, True):
        specs = sorted((s for s in grid.methods if bool(s.pretrain) == transfer),
                       key=lambda s: dict(s.options).get("alpha", 2.0))
        for task in grid.tasks:
            points = []
            for spec in specs:
                value = _uf1(run_of(keyed, spec, grid, task))
                if value is None:
                    missing.append(run_label(spec, grid))
                else:
                    points.append((dict(spec.options).get("alpha", 2.0), value))
            if points:
                label = f"{task}{' (SYNTHETIC)' if task in synthetic else ''}, " \
                        f"{'with' if transfer else 'without'} transfer"
                sweep.plot(*zip(*points), marker="o", label=label)
    sweep.set_xlabel("amplification factor")
    sweep.set_ylabel("UF1 (%)")
    sweep.set_xticks([1, 2, 3, 4, 5])
    sweep.legend(fontsize=7)
    width = 0.38
    for offset, transfer in ((-width / 2, False), (width / 2, True)):
        spec = next((s for s in grid.methods if bool(s.pretrain) == transfer
                     and dict(s.options).get("alpha", 2.0) == 2.0), None)
        heights = [_uf1(run_of(keyed, spec, grid, t)) if spec else None for t in grid.tasks]
        positions = [i + offset for i, h in enumerate(heights) if h is not None]
        bars.bar(positions, [h for h in heights if h is not None], width,
                 label="with transfer" if transfer else "without transfer")
    bars.set_xticks(range(len(grid.tasks)),
                    [t + (" (SYNTHETIC)" if t in synthetic else "") for t in grid.tasks])
    bars.set_ylabel("UF1 (%), amplification factor 2")
    bars.legend(fontsize=7)
    title = "Fig. 9: amplification factor and transfer learning (SKD-TSTSAN)"
    if missing:
        title += f"\n{MISSING}: {len(set(missing))} runs not in the store"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
