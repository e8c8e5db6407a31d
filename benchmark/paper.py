"""Regenerates every paper table and figure from the store alone, in seconds.

`run_benchmark.py tables --grid paper [--profile quick]` calls `write_paper`; the same with
one table's grid (`--grid table5`) writes that table only.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.figures import confusion_figure, fig9_figure, save
from benchmark.paper_tables import PAPER_GRIDS, PaperTable, load_paper_table, render, run_label
from benchmark.store import JobRecord
from benchmark.tables import RunScores, run_scores

FIGURE_GRIDS = ("fig9",)
FORMATS = {"markdown": "md", "latex": "tex", "csv": "csv"}


def paper_grid_names(name: str) -> tuple[str, ...]:
    """`paper` means every table and figure grid; a table's own name means itself."""
    return PAPER_GRIDS + FIGURE_GRIDS if name == "paper" else (name,)


def scored_heads(records: list[JobRecord]) -> dict[str, list[RunScores]]:
    """Runs scored on each classifier head that some record has."""
    heads = {h for r in records for h in r.predictions.logits}
    return {head: run_scores([r for r in records if head in r.predictions.logits], head)
            for head in sorted(heads)}


def write_paper(names: tuple[str, ...], grid_paths: dict[str, Path], records: list[JobRecord],
                folder: Path, profile: str | None = None) -> tuple[list[Path], list[str]]:
    """Writes each named table (md, tex, csv) and figure; returns the paths and the markdown."""
    runs_by_head = scored_heads(records)
    written, shown = [], []
    for name in names:
        table = load_paper_table(grid_paths[name], profile)
        if name in FIGURE_GRIDS:
            written.append(save(fig9_figure(table, runs_by_head.get("final", [])),
                                folder / f"{name}.png"))
            continue
        for fmt, extension in FORMATS.items():
            path = folder / f"{name}.{extension}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(table, runs_by_head, fmt))
            written.append(path)
        shown.append(render(table, runs_by_head, "markdown"))
        if table.key in ("1", "2", "3", "4"):
            written += _confusions(table, runs_by_head.get("final", []), folder)
    return written, shown


def _confusions(table: PaperTable, runs: list[RunScores], folder: Path) -> list[Path]:
    """Fig. 5: a confusion matrix per task for the table's full SKD-TSTSAN runs."""
    paths = []
    for spec in table.grid.methods:
        if spec.name != "skd_tstsan" or spec.options:
            continue
        label = run_label(spec)
        for run in runs:
            if (run.method, run.selection, run.budget) == (label, spec.selection
                                                           or table.grid.selection,
                                                           spec.budget) \
                    and run.task in table.grid.tasks and run.complete:
                paths.append(save(confusion_figure(run), folder / f"fig5_{run.task}.png"))
    return paths
