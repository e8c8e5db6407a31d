"""Comparison and ablation tables as pure functions of scored runs (stats/runs.py): nothing
here trains or preprocesses. Cells are UF1 and UAR pooled over folds (MEGC 2019), mean and
standard deviation over seeds; an incomplete run is shown as such, never scored.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from mer_bench.benchmark.stats.runs import (PUBLISHED, RunScores, format_cell, published_note,
                                           released_note, synthetic_note)


DATA_VERSION_MARK = " (data "  # a row label's suffix where several data versions are stored


def comparison_frame(runs: list[RunScores]) -> pd.DataFrame:
    """Methods x tasks, UF1/UAR in percent, with folds, seeds and the selection rule."""
    labels = {run.task: run.task + (f" ({run.data})" if run.data != "real" else "")
              for run in runs}
    columns = [f"{labels[task]} {metric}" for task in sorted(labels)
               for metric in ("UF1", "UAR", "folds x seeds")]
    table: dict[tuple, dict[str, str]] = defaultdict(dict)
    versions = defaultdict(set)
    for run in runs:
        versions[(run.method, run.task, run.selection, run.budget)].add(run.data_version)
    for run in runs:
        method = run.method
        if len(versions[(run.method, run.task, run.selection, run.budget)]) > 1:
            method += f"{DATA_VERSION_MARK}{run.data_version})"  # several versions stored
        budget = ("—" if run.selection == PUBLISHED else "default" if run.budget is None
                  else f"{run.budget} it")
        row = table[(method, run.selection, budget)]
        row[f"{labels[run.task]} UF1"] = format_cell(run, "uf1")
        row[f"{labels[run.task]} UAR"] = format_cell(run, "uar")
        row[f"{labels[run.task]} folds x seeds"] = f"{run.folds} x {len(run.seeds)}"
    frame = pd.DataFrame([{"method": m, "selection": s, "budget": b, **cells}
                          for (m, s, b), cells in table.items()],
                         columns=["method", "selection", "budget", *columns])
    return frame.fillna("missing")


def tidy_frame(runs: list[RunScores]) -> pd.DataFrame:
    """One line per run, numbers unformatted: the CSV that other tools read."""
    lines = []
    for run in runs:
        line = {"method": run.method, "task": run.task, "data": run.data,
                "data_version": run.data_version, "selection": run.selection, "budget": run.budget,
                "folds": run.folds, "folds_expected": run.folds_expected,
                "seeds": " ".join(map(str, run.seeds))}
        for metric in ("uf1", "uar", "accuracy"):
            mean, std = run.mean_std(metric) if run.complete else (np.nan, np.nan)
            line[f"{metric}_mean"], line[f"{metric}_std"] = mean, std
            low, high = run.intervals.get(metric, (np.nan, np.nan))
            line[f"{metric}_ci95_low"], line[f"{metric}_ci95_high"] = low, high
        for metric in ("uf1", "uar"):  # named apart: never MEGC's pooled score
            line[f"{metric}_subject_mean"] = run.subject_mean.get(metric, np.nan)
        lines.append(line)
    return pd.DataFrame(lines)


def comparison_rows(runs: list[RunScores]) -> pd.DataFrame:
    """The comparison as printed: one row per run (method x task x selection x budget), so a
    table of any number of tasks stays as narrow as one (comparison_frame: one column group
    per task)."""
    frame = comparison_frame(runs)
    tasks = [column[: -len(" UF1")] for column in frame.columns if column.endswith(" UF1")]
    lines = [{"method": row["method"], "task": task, "selection": row["selection"],
              "budget": row["budget"], "UF1": row[f"{task} UF1"], "UAR": row[f"{task} UAR"],
              "folds x seeds": row[f"{task} folds x seeds"]}
             for task in tasks for _, row in frame.iterrows()
             if row[f"{task} UF1"] != "missing"]
    return pd.DataFrame(lines, columns=["method", "task", "selection", "budget", "UF1", "UAR",
                                        "folds x seeds"])


def render_markdown(runs: list[RunScores]) -> str:
    if not runs:
        return "No finished runs in the store."
    frame = comparison_rows(runs)
    lines = ["UF1 and UAR (%) pooled over the folds (MEGC 2019; folds leave one subject out, "
             "or one dataset out where a task says @lodo); mean ± sd over seeds.",
             "Selection `last`: the model at the end of a fixed budget (no test labels read); "
             "`weights=NAME`: released per-subject weights, evaluated without training.",
             "Budget: `N it`, N training iterations (optimizer steps, whatever the batch); "
             "`default`: the method's own schedule, which may count epochs "
             "(`mer-bench list methods --details` gives each)."]
    lines += [note for note in (published_note(runs), synthetic_note(runs), released_note(runs))
              if note]
    return "\n".join(lines) + "\n\n" + tabulate(frame, headers="keys", tablefmt="github",
                                               showindex=False, disable_numparse=True) + "\n"


def ablation_frame(runs: list[RunScores], switches: dict[str, dict]) -> pd.DataFrame:
    """The paper's Table 5 layout: a check mark per module, then UF1/UAR per task.

    `switches` maps a method label to its module switches (column name -> on), as its method
    declares them (`ablation_switches`); runs of other methods are left out.
    """
    selected = [run for run in runs if run.method in switches]
    frame = comparison_frame(selected)
    if frame.empty:
        return frame
    columns = list(dict.fromkeys(name for run in selected for name in switches[run.method]))
    # a row's label, less what comparison_frame adds where several data versions are stored
    own = [switches[m.split(DATA_VERSION_MARK)[0]] for m in frame.method]
    for position, name in enumerate(columns):
        frame.insert(1 + position, name, ["✓" if row.get(name) else "" for row in own])
    order = sorted(range(len(frame)), key=lambda i: (sum(own[i].values()), frame.method[i]))
    return frame.iloc[order]


def render_ablation(runs: list[RunScores], switches: dict[str, dict],
                    legends: tuple[str, ...] = ()) -> str:
    """`legends`: what the switch columns mean, as their methods say (`ablation_legend`)."""
    frame = ablation_frame(runs, switches)
    if frame.empty:
        return ""
    header = [" ".join(("Ablation: a module on (✓) or off per row.", *legends,
                        "UF1/UAR (%) pooled over the folds."))]
    note = synthetic_note([run for run in runs if run.method in switches])
    if note:
        header.append(note)
    return "\n".join(header) + "\n\n" + tabulate(frame, headers="keys", tablefmt="github",
                                                   showindex=False, disable_numparse=True) + "\n"


def write_tables(runs: list[RunScores], folder: Path, switches: dict[str, dict] | None = None,
                 legends: tuple[str, ...] = ()) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    markdown, csv = folder / "comparison.md", folder / "comparison.csv"
    markdown.write_text(render_markdown(runs))
    tidy_frame(runs).to_csv(csv, index=False)
    written = [markdown, csv]
    ablation = render_ablation(runs, switches or {}, legends)
    if ablation:
        (folder / "ablation.md").write_text(ablation)
        ablation_frame(runs, switches).to_csv(folder / "ablation.csv", index=False)
        written += [folder / "ablation.md", folder / "ablation.csv"]
    return written
