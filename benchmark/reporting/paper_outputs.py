"""Regenerates every paper table and figure from the store and the tasks' manifests alone.

`mer-bench tables --grid paper [--profile quick]` calls `write_paper`; the same with
one table's grid (`--grid table5`) writes that table only.
"""

from __future__ import annotations

from pathlib import Path

from mer_bench.benchmark.paper.figures import (
    fig9_figure, fig9_points, sensitivity_figure, sensitivity_points)
from mer_bench.benchmark.reporting.figures import confusion_figure, save
from mer_bench.benchmark.paper.tables import (
    PAPER_GRIDS,
    SENSITIVITY_TABLES,
    PaperTable,
    load_paper_table,
    render,
    run_of,
    runs_by_key,
)
from mer_bench.benchmark.storage.store import JobRecord
from mer_bench.benchmark.stats.runs import RunScores, run_scores

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


def current_records(grid, records: list[JobRecord], config) -> tuple[list[JobRecord], list[str]]:
    """The stored jobs of `grid` that the data as the last run prepared them give (planned
    from the tasks' manifests, method by method: nothing is prepared or read here), and what
    cannot be planned so (a task never prepared with a method's settings and these folders, a
    released weights folder not given) where jobs of it are stored: those are kept,
    unchecked, and the table says so."""
    from dataclasses import replace

    from mer_bench.benchmark.execution.manifests import NotPlanned
    from mer_bench.benchmark.execution.planning import plan
    from mer_bench.datasets.errors import DatasetError

    stored = {r.job.task for r in records}
    keys, unchecked, kept = set(), [], {}
    quiet = replace(config, progress=False)
    for task in (t for t in grid.runnable_tasks if t in stored):
        for spec in (s for s in grid.methods if s.runs_on(task)):
            try:
                jobs, _ = plan(replace(grid, tasks=(task,), methods=(spec,)), quiet,
                               from_manifests=True)
            except (DatasetError, ValueError, NotPlanned) as error:
                same = [r for r in records if r.job.task == task and r.job.method == spec.name]
                if same:
                    unchecked.append(f"{task} ({str(error).splitlines()[0]})")
                    kept.update((r.job.key, r) for r in same)
                continue
            keys |= {job.key for job in jobs}
    kept.update((r.job.key, r) for r in records if r.job.key in keys)
    return list(kept.values()), list(dict.fromkeys(unchecked))


def unchecked_note(tasks: list[str]) -> str:
    return (f"Not checked against the data as last prepared here: {'; '.join(tasks)}; these "
            "cells are the newest stored jobs." if tasks else "")


def write_paper(names: tuple[str, ...], grid_paths: dict[str, Path], records: list[JobRecord],
                folder: Path, profile: str | None = None, precision: str | None = None,
                config=None, keys: set[str] | None = None) -> tuple[list[Path], list[str]]:
    """Writes each named table (md, tex, csv) and figure; returns the paths and the markdown.

    Each cell is the stored job of the data as they were last prepared: of `keys` (a run's
    planned jobs) if given, else planned from the tasks' manifests with `config`
    (`current_records`); with neither, the newest stored version of each row (tests of
    layouts)."""
    written, shown = [], []
    for name in names:
        table = load_paper_table(grid_paths[name], profile, precision)
        unchecked: list[str] = []
        if keys is not None:
            chosen = [r for r in records if r.job.key in keys]
        elif config is not None:
            chosen, unchecked = current_records(table.grid, records, config)
        else:
            chosen = records
        runs_by_head = scored_heads(chosen)
        name = Path(name).stem  # a grid given by its path is written under its file's name
        if name in FIGURE_GRIDS:
            runs = runs_by_head.get("final", [])
            points = fig9_points(table, runs)
            written.append(save(fig9_figure(table, runs, points), folder / f"{name}.png"))
            numbers = folder / f"{name}.csv"
            numbers.write_text(points.to_csv(index=False))
            written.append(numbers)
            continue
        for fmt, extension in FORMATS.items():
            path = folder / f"{name}.{extension}"
            path.parent.mkdir(parents=True, exist_ok=True)
            text = render(table, runs_by_head, fmt, notes=[unchecked_note(unchecked)])
            path.write_text(text)
            written.append(path)
            if fmt == "markdown":
                shown.append(text)
        if table.key in SENSITIVITY_TABLES:  # UF1 by setting, as a figure and its numbers
            points = sensitivity_points(table, runs_by_head.get("final", []))
            written.append(save(sensitivity_figure(table, points), folder / f"{name}.png"))
            numbers = folder / f"{name}-points.csv"
            numbers.write_text(points.to_csv(index=False))
            written.append(numbers)
        if table.key in ("1", "2", "3", "4"):
            written += _confusions(table, runs_by_head.get("final", []), folder, set(written))
    return written, shown


def _confusions(table: PaperTable, runs: list[RunScores], folder: Path,
                done: set[Path]) -> list[Path]:
    """Fig. 5: a confusion matrix per task for the table's full SKD-TSTSAN runs (a figure
    another table already drew, in `done`, is not drawn again)."""
    from mer_bench.methods import FLAGSHIP

    keyed, paths = runs_by_key(runs), []
    for spec in table.grid.methods:
        if spec.name != FLAGSHIP or spec.options:
            continue
        for task in table.grid.tasks:
            run, path = run_of(keyed, spec, table.grid, task), folder / f"fig5_{task}.png"
            if run and run.complete and path not in done:
                paths.append(save(confusion_figure(run), path))
                done.add(path)
    return paths


def diff_rows(name: str, grid_file: Path, records: list[JobRecord], a: str, b: str,
              profile: str | None = None, precision: str | None = None,
              config=None) -> list[str]:
    """How the protocols of two rows of one paper table differ (rows by number or name), as
    `write_paper` shows them (the jobs of the current data, where `config` can read it)."""
    import json

    from mer_bench.benchmark.paper.tables import CARD, table_frame
    from mer_bench.benchmark.protocol.cards import diff, find_card

    if name in FIGURE_GRIDS or name == "paper":
        raise ValueError(f"--diff compares two rows of one table: give --grid table1..table7 "
                         f"or honesty, not {name}")
    table = load_paper_table(grid_file, profile, precision)
    if config is not None:
        records, _ = current_records(table.grid, records, config)
    cards = [json.loads(text) for text in table_frame(table, scored_heads(records))[CARD]]
    first, second = find_card(cards, a), find_card(cards, b)
    lines = diff(first, second)
    head = f"{first['row']}  |  {second['row']}"
    return [head] + (lines or ["their protocols are the same"])
