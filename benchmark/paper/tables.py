"""The paper's Tables 1-7 and the honesty table, rebuilt from the store: the reported rows
(results/reference/paper_results.csv) beside the measured ones, the protocol of each stated.

A paper table is a grid file of benchmark/grids with a `table` key; its `tasks` are the
paper's columns. Run under a profile (e.g. `quick`: every task mapped to the synthetic
stand-in), the measured runs land in extra columns of their own task, labelled SYNTHETIC,
and the paper's columns show them as missing: a table never puts a synthetic number under a
real dataset's name, and never shows a number that no run produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from mer_bench.benchmark.protocol.grids import Grid, MethodSpec, grid_toml, load_grid

from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.protocol.cards import (
    card_text, latex_cards, measured_card, reported_card)
from mer_bench.benchmark.paper.long_form import long_form
from mer_bench.benchmark.paper.reference import reported, reported_notes
from mer_bench.benchmark.stats.runs import RunScores, format_cell, released_note, synthetic_note
from mer_bench.datasets.preprocess import PreprocessSettings

PAPER_GRIDS = ("table1", "table2", "table3", "table4", "table5", "table6", "table7", "honesty")
# The harness's own protocol tables (issue 16): none of the paper's numbers beside them.
PROTOCOL_GRIDS = ("cross_dataset", "key_frames", "preprocessing")
HEADS = {"ac1": "classifier=1/3", "ac2": "classifier=2/3", "final": "classifier=3/3"}
NOT_APPLICABLE = "—"
MISSING = "missing"
REFERENCE_ROW = "ref"  # the row the others' p-values are against
ORACLE_GAP = "oracle − last"  # the honesty table's row of what test-label selection adds
CARD = "protocol card"  # the column of each row's card (CSV; LaTeX prints them under the table)
FOOTNOTE = " †"  # a reported number computed otherwise than the table says (reported_notes)
# Tables of a protocol axis (issue 16): each row a method under one preprocessing setting,
# against the same method at the defaults, its change in UF1 beside its UF1.
SENSITIVITY_TABLES = ("key-frames", "preprocessing")
CHANGE = "ΔUF1"
DEFAULTS = "defaults"  # the setting of a row without preprocessing settings of its own


@dataclass(frozen=True)
class PaperTable:
    key: str  # "1" .. "7", "honesty"
    description: str
    paper_tasks: tuple[str, ...]  # the paper's columns
    grid: Grid  # as run: after the profile

    @property
    def reports_paper(self) -> bool:
        return self.key.isdigit() or self.key == "honesty"

    @property
    def columns(self) -> tuple[str, ...]:
        # A protocol of the harness's own has no reported numbers: a column left unrun by the
        # profile (a task mapped to "") would only ever read 'missing'.
        paper = self.paper_tasks if self.reports_paper else ()
        return paper + tuple(t for t in self.grid.tasks if t not in paper)


def load_paper_table(path: str | Path, profile: str | None = None,
                     precision: str | None = None) -> PaperTable:
    raw = grid_toml(path)
    if "table" not in raw:
        raise ValueError(f"grid {path} is not a paper table (no `table` key)")
    return PaperTable(str(raw["table"]), raw.get("description", ""), tuple(raw["tasks"]),
                      load_grid(path, profile, precision))


def run_label(spec: MethodSpec, grid: Grid, task: str = "") -> str:
    """The label of the spec's runs (on `task`, with the recipe fields it sets there)."""
    return Job(spec.name, "", "", options=spec.options, pretrain=spec.pretrain,
               pretrain_budget=spec.pretrain_budget, domains=spec.domains,
               precision=grid.precision, weights=spec.weights,
               recipe=spec.recipe_for(task), preprocess=spec.preprocess).run_label


def setting_of(spec: MethodSpec, kind: str, grid: Grid) -> str:
    """The paper's `setting` string for a measured spec of a Table 5, 6 or honesty layout."""
    if kind == "5":
        on = [name.lower() for name, value in _method(spec).ablation_switches().items() if value]
        return "+".join(on) if on else "baseline"
    if kind == "6":
        return f"temporal-domains={spec.domains or PreprocessSettings().domains}"
    if kind == "honesty":
        return f"selection={spec.selection or grid.selection}"
    if kind in SENSITIVITY_TABLES:
        return ", ".join(f"{k}={v}" for k, v in spec.preprocess) or DEFAULTS
    return ""


def cell_names(table: PaperTable) -> tuple[str, ...]:
    """The numbers of each task column, in order."""
    if table.key in SENSITIVITY_TABLES:
        return ("UF1", CHANGE, "UAR", "ACC", "p")
    return ("UF1", "UAR", "ACC", "p")


def _method(spec: MethodSpec):
    from mer_bench.methods import METHODS

    return METHODS.build(spec.name, **dict(spec.options))


def switch_columns(table: PaperTable) -> list[str]:
    """An ablation table's module columns, as its methods name their switches."""
    return list(dict.fromkeys(name for spec in table.grid.methods
                              for name in _method(spec).ablation_switches()))


def runs_by_key(runs: list[RunScores]) -> dict[tuple, RunScores]:
    return {(r.method, r.task, r.selection, r.budget): r for r in runs}


def run_of(runs: dict[tuple, RunScores], spec: MethodSpec, grid: Grid,
           task: str) -> RunScores | None:
    """The stored run of a grid's method spec on a task (from `runs_by_key`), if any."""
    return runs.get((run_label(spec, grid, task), task, spec.selection or grid.selection,
                     spec.budget))


def reference_spec(table: PaperTable, spec: MethodSpec) -> MethodSpec:
    """The row `spec`'s p-values are against: the table's first method; in the honesty table,
    the same method under `last` (what selecting otherwise adds to it)."""
    if table.key == "honesty":
        own = replace(spec, selection="last")
        if own in table.grid.methods:
            return own
    if table.key in SENSITIVITY_TABLES:
        own = replace(spec, preprocess=())
        if own in table.grid.methods:
            return own
    return table.grid.methods[0]


def _p_cell(run: RunScores, reference: RunScores | None) -> str:
    value = run.p_value(reference) if reference else None
    return NOT_APPLICABLE if value is None else f"{value:.3f}"


def _change_cell(run: RunScores, reference: RunScores | None) -> str:
    change = run.change(reference) if reference else None
    if change is None:
        return NOT_APPLICABLE
    value, (low, high) = change
    return f"{value:+.2f} [{low:+.2f}, {high:+.2f}]"


def _measured_cells(runs: dict[tuple, RunScores], spec: MethodSpec, table: PaperTable,
                    ) -> dict[str, dict[str, str]]:
    """Per task: UF1 and UAR with their 95% intervals, accuracy, and the paired p of UF1
    against the row's reference (`reference_spec`) on the same folds; in a sensitivity table
    also the change of UF1 from the reference, with its paired interval."""
    grid, against, cells = table.grid, reference_spec(table, spec), {}
    names = cell_names(table)
    for task in table.columns:
        run = run_of(runs, spec, grid, task)
        if not spec.runs_on(task):
            cells[task] = dict.fromkeys(names, NOT_APPLICABLE)
            continue
        if not run:
            cells[task] = dict.fromkeys(names, MISSING)
            continue
        reference = run_of(runs, against, grid, task)
        own = spec == against
        cells[task] = {"UF1": format_cell(run, "uf1", interval=True),
                       "UAR": format_cell(run, "uar", interval=True),
                       "ACC": format_cell(run, "accuracy"),
                       "p": REFERENCE_ROW if own else _p_cell(run, reference)}
        if CHANGE in names:
            cells[task][CHANGE] = REFERENCE_ROW if own else _change_cell(run, reference)
    return cells


def _gap_cells(runs: dict[tuple, RunScores], oracle: MethodSpec, table: PaperTable,
               ) -> dict[str, dict[str, str]]:
    """Per task: what the oracle rule adds over `last` for one method (UF1, UAR, accuracy,
    percentage points, seed means) and the paired p of the two."""
    grid, cells = table.grid, {}
    last = replace(oracle, selection="last")
    for task in table.columns:
        runs_of = [run_of(runs, s, grid, task) for s in (oracle, last)]
        if not all(r and r.complete for r in runs_of):
            cells[task] = dict.fromkeys(cell_names(table), MISSING)
            continue
        gains = [f"{runs_of[0].mean_std(m)[0] - runs_of[1].mean_std(m)[0]:+.2f}"
                 for m in ("uf1", "uar", "accuracy")]
        cells[task] = dict(zip(("UF1", "UAR", "ACC", "p"), (*gains, _p_cell(*runs_of))))
    return cells


def stored_seeds(spec: MethodSpec, table: PaperTable, runs: dict[tuple, RunScores],
                 ) -> tuple[int, ...] | None:
    """The seeds a row's stored runs have where fewer than its grid asks (the fewest over its
    tasks), else None: a row is never labelled with seeds that did not run."""
    grid = table.grid
    stored = [run.seeds for task in table.columns if spec.runs_on(task)
              and (run := run_of(runs, spec, grid, task))]
    fewest = min(stored, key=len, default=tuple(grid.seeds))
    return fewest if len(fewest) < len(grid.seeds) else None


def _protocol(spec: MethodSpec, grid: Grid, seeds: tuple[int, ...] | None = None) -> str:
    if spec.weights:
        return f"released weights {spec.weights} (one per held-out subject; nothing trained)"
    method = _method(spec)
    count = len(grid.seeds)  # "1 seed": "seeds 1" read as seed index 1
    seeds_text = f"{count} seed{'' if count == 1 else 's'}" if seeds is None else (
        f"{len(seeds)} of {len(grid.seeds)} seeds stored ({', '.join(map(str, seeds))})")
    parts = [f"selection {spec.selection or grid.selection}", seeds_text,
             method.budget_text(spec.budget)]
    parts += [", ".join(f"{k} {v}" for k, v in fields) + f" on {task}"
              for task, fields in spec.recipes]
    parts.append(f"from {spec.pretrain} ({spec.pretrain_budget} it)" if spec.pretrain
                 else "no transfer")
    if grid.precision != "fp32":
        parts.append(grid.precision)
    return ", ".join(parts)


def _settings(spec: MethodSpec, grid: Grid) -> dict:
    """A measured row's run settings, for its protocol card."""
    own = {"preprocessing": dict(spec.preprocess)} if spec.preprocess else {}
    if spec.weights:
        return {"weights": f"released {spec.weights}, one file per held-out subject; nothing "
                           "trained", "seeds": [grid.seeds[0]]} | own
    return {"selection": spec.selection or grid.selection, "seeds": list(grid.seeds),
            "budget": _method(spec).budget_text(spec.budget),
            "transfer": (f"from {spec.pretrain} ({spec.pretrain_budget} iterations)"
                         if spec.pretrain else "none"),
            "recipe per task": {t: dict(f) for t, f in spec.recipes},
            "precision": grid.precision, "options": dict(spec.options)} | own


def _card(spec: MethodSpec, table: PaperTable, label: str, runs: dict[tuple, RunScores],
          seeds: tuple[int, ...] | None = None) -> dict:
    grid, settings = table.grid, _settings(spec, table.grid)
    if seeds and not spec.weights:
        settings["seeds stored"] = list(seeds)
    return measured_card(label, settings,
                         {t: run_of(runs, spec, grid, t) for t in table.columns
                          if spec.runs_on(t)})


def _reported_rows(table: PaperTable, reference: pd.DataFrame) -> list[dict]:
    """One row per (method, setting) of the paper's table, its numbers under its tasks."""
    if table.key == "honesty":  # the flagship as reported in Tables 1-4 for these tasks
        from mer_bench.methods import FLAGSHIP, METHODS

        flagship = METHODS.build(FLAGSHIP).paper_name
        rows = reference[(reference.method == flagship) & (reference.setting == "")
                         & reference.table.between(1, 4)]
        rows = rows.drop_duplicates("task")
        setting = "as reported (release: selection on the test subject)"
        rows = rows.assign(setting=setting)
    else:
        rows = reference[reference.table == int(table.key)] if table.key.isdigit() \
            else reference.iloc[:0]  # a table of the harness's own: nothing reported
    out: dict[tuple[str, str], dict] = {}
    notes = reported_notes()
    for line in rows.itertuples():
        row = out.setdefault((line.method, line.setting), {
            "method": line.method, "setting": line.setting, "source": "reported",
            "protocol": "the paper", "cells": {}, "card": reported_card(line.method)})
        marked = [f"{getattr(line, metric):.2f}"
                  + (FOOTNOTE if (line.table, line.task, line.method, metric) in notes else "")
                  for metric in ("uf1", "uar")]
        row["cells"][line.task] = {"UF1": marked[0], "UAR": marked[1]}
    return list(out.values())


def _measured_rows(table: PaperTable, runs_by_head: dict[str, dict[tuple, RunScores]]) -> list:
    grid, rows = table.grid, []
    for spec in grid.methods:
        name = f"{_method(spec).paper_name or spec.name} ({run_label(spec, grid)})"
        heads = HEADS if table.key == "7" else {"final": ""}
        for head, head_setting in heads.items():
            runs = runs_by_head.get(head, {})
            setting = head_setting or setting_of(spec, table.key, grid)
            seeds = stored_seeds(spec, table, runs)
            rows.append({"method": name, "setting": setting, "source": "measured",
                         "protocol": _protocol(spec, grid, seeds),
                         "cells": _measured_cells(runs, spec, table),
                         "card": _card(spec, table, f"{name} {setting}".strip(), runs, seeds)})
        if (table.key == "honesty" and spec.selection == "oracle"
                and replace(spec, selection="last") in grid.methods):
            rows.append({"method": name, "setting": ORACLE_GAP, "source": "measured",
                         "protocol": "oracle row less last row (same seeds, same folds)",
                         "cells": _gap_cells(runs_by_head.get("final", {}), spec, table),
                         "card": {"row": f"{name} {ORACLE_GAP}", "source": "measured",
                                  "derived": "its oracle row less its last row"}})
    return rows


def table_frame(table: PaperTable, runs_by_head: dict[str, list[RunScores]],
                reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table as a frame: method, setting, source, protocol, then UF1 / UAR / ACC / p per
    task, and last each row's protocol card (JSON; benchmark/protocol/cards.py).

    `runs_by_head`: runs scored on each classifier head ("final"; Table 7 also "ac1", "ac2").
    Reported and measured rows of one setting sit together (Tables 5-7, honesty); in Tables
    1-4 the reported rows come first, then ours.
    """
    reference = reported() if reference is None else reference
    keyed = {head: runs_by_key(runs) for head, runs in runs_by_head.items()}
    reported_rows, measured_rows = _reported_rows(table, reference), _measured_rows(table, keyed)
    if table.key in ("5", "6", "7"):
        order = list(dict.fromkeys([r["setting"] for r in reported_rows]
                                   + [r["setting"] for r in measured_rows]))
        rows = sorted(reported_rows + measured_rows,
                      key=lambda r: (order.index(r["setting"]), r["source"] != "reported"))
    else:
        rows = reported_rows + measured_rows
    synthetic = {r.task for runs in runs_by_head.values() for r in runs if r.synthetic}
    released = {r.task for runs in runs_by_head.values() for r in runs
                if r.data == "released flows"}
    lines, switches = [], switch_columns(table) if table.key == "5" else []
    for row in rows:
        line = {k: row[k] for k in ("method", "setting", "source", "protocol")}
        on = row["setting"].split("+")
        for switch in switches:
            line[switch] = "✓" if switch.lower() in on else ""
        for task in table.columns:
            header = task + (" (SYNTHETIC)" if task in synthetic else
                             " (released flows)" if task in released else "")
            cells = row["cells"].get(task, {})
            for name in cell_names(table):
                line[f"{header} {name}"] = cells.get(name, NOT_APPLICABLE)
        line[CARD] = card_text(row["card"])
        lines.append(line)
    frame = pd.DataFrame(lines)
    if table.key not in ("5", "6", "7", "honesty") + SENSITIVITY_TABLES:
        frame = frame.drop(columns="setting")
    return frame


def caption(table: PaperTable, runs: list[RunScores]) -> list[str]:
    reported = ("Reported: the paper's numbers (results/reference/paper_results.csv)."
                if table.reports_paper else
                "Reported: none (a protocol of the harness's own, not the paper's).")
    lines = [table.description,
             f"{reported} Measured: "
             "this harness's runs, UF1 / UAR (%) pooled over the folds (LOSO; a task "
             "NAME@lodo: one dataset left out a fold), mean ± sd over seeds, "
             "[95% interval: subjects resampled, 1000 draws]; ACC: accuracy; p: paired "
             f"permutation test of UF1 (subjects swapped) against the '{REFERENCE_ROW}' row ("
             + ("each method's own `last` row" if table.key == "honesty" else
                f"the same method at the {DEFAULTS}" if table.key in SENSITIVITY_TABLES else
                "the table's first method") + f") on the same folds; '{MISSING}': not run yet; "
             f"'{NOT_APPLICABLE}': no such number.",
             "Selection `last`: the model after the budget; `val`: best epoch on held-out "
             "training subjects; `oracle`: best epoch on the test subject (reads test labels)."]
    if table.key in SENSITIVITY_TABLES:
        lines.append(f"{CHANGE}: the row's UF1 less the same method's at the {DEFAULTS} (its "
                     f"'{REFERENCE_ROW}' row; percentage points of the seed means) [paired 95% "
                     "interval: the same subjects resampled for both]. Settings: "
                     "datasets/preprocess.py and datasets/key_frames.py.")
    if table.key == "honesty":
        lines.append(f"'{ORACLE_GAP}': what selecting on the test subject adds to each method "
                     "(percentage points of the seed means; p: its oracle row against its last).")
    lines += [f"†{method}, {task} {metric.upper()}: {note}"
              for (number, task, method, metric), note in reported_notes().items()
              if str(number) == table.key and task in table.columns]
    return lines + [note for note in (synthetic_note(runs), released_note(runs)) if note]


def render(table: PaperTable, runs_by_head: dict[str, list[RunScores]], fmt: str = "markdown",
           reference: pd.DataFrame | None = None, notes: list[str] = ()) -> str:
    """The table in `fmt`: markdown (GitHub), latex (booktabs) or csv; `notes`: more lines
    for its caption."""
    frame = table_frame(table, runs_by_head, reference)
    if fmt == "csv":
        return frame.to_csv(index=False)
    cards = [json.loads(text) for text in frame.pop(CARD)]
    runs = [r for rs in runs_by_head.values() for r in rs if r.task in table.grid.tasks]
    lines = caption(table, runs) + [note for note in notes if note]
    if fmt == "latex":
        body = tabulate(frame, headers="keys", tablefmt="latex_booktabs", showindex=False,
                        disable_numparse=True)
        return ("\n".join(f"% {line}" for line in lines) + "\n" + body + "\n"
                + latex_cards(cards))
    if fmt == "markdown":  # one row per row x task (paper/long_form.py)
        narrow, legend = long_form(frame, cell_names(table))
        body = tabulate(narrow, headers="keys", tablefmt="github", showindex=False,
                        disable_numparse=True)
        return "\n".join(lines) + "\n\n" + body + "\n\n" + "\n".join(
            ["Protocols:", *legend] if legend else []) + "\n"
    raise ValueError(f"unknown table format {fmt!r}: markdown, latex or csv")
