"""Protocol cards: everything a row of a paper table was measured under, in one dictionary
(data source and annotation versions, the class mapping with counts, exclusions, selection,
aggregation, seeds, budget, transfer), written into the CSV and LaTeX outputs so that two
rows can be compared by what they did, not only by what they scored (`tables --diff A B`).

A card reads the task's definition from the task registry and the data facts from the stored
jobs; a run not in the store yet, or stored before cards existed, says so in its card.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

AGGREGATION = ("UF1 / UAR / accuracy of the predictions pooled over every fold (MEGC 2019's "
               "rule); mean and sd over seeds; 95% interval: subjects resampled, 1000 draws")
NOT_RECORDED = "not recorded (stored before protocol cards)"


def task_definition(column: str) -> dict[str, Any]:
    """What the task registry says of a table column's task: classes and mapping per source."""
    from mer_bench.benchmark.protocol.grids import task_of
    from mer_bench.benchmark.protocol.tasks import PROTOCOLS, build_task

    task = build_task(task_of(column))
    definition: dict[str, Any] = {
        "folds": PROTOCOLS[task.protocol],
        "classes": list(task.classes),
        "mapping": {s.dataset: dict(s.mapping) for s in task.sources},
    }
    if task.members is not None:
        definition["member list"] = (f"{task.members.filename} ({task.members.title}), labels "
                                     f"{dict(task.members.labels)}")
    if "[" in column:
        definition["part"] = f"the {column.split('[', 1)[1].rstrip(']')} clips of {task.name}"
    return definition


def data_facts(run, column: str) -> dict[str, Any]:
    """What the run says of its data (a `tables.RunScores`, or None): where the inputs came
    from, the annotation versions, the clips scored per class (from its predictions, so a
    part column counts its own), and the task's exclusions as its stored jobs recorded them."""
    if run is None:
        return {"run": "missing"}
    facts = {"data": run.data, "data version": run.data_version, **run.provenance}
    if run.pooled:
        counts = np.bincount(run.pooled[0].labels, minlength=len(run.classes))
        facts["clips scored"] = dict(zip(run.classes, map(int, counts)))
    facts.setdefault("exclusions", NOT_RECORDED)
    if "[" in column:
        facts["exclusions (whole task)"] = facts.pop("exclusions")
    return facts


def measured_card(label: str, settings: dict[str, Any], runs: dict[str, Any]) -> dict:
    """`settings`: selection, seeds, budget, transfer, recipe, precision as the grid ran them;
    `runs`: table column -> its run (None where missing)."""
    return {"row": label, "source": "measured", **settings, "aggregation": AGGREGATION,
            "tasks": {task: {**task_definition(task), **data_facts(run, task)}
                      for task, run in runs.items()}}


def reported_card(label: str) -> dict:
    return {"row": label, "source": "reported",
            "from": "the paper (Zhu et al., arXiv 2406.17538), results/reference/"
                    "paper_results.csv; its protocol as the paper states it"}


def card_text(card: dict) -> str:
    """The card as one JSON line (keys sorted): a CSV cell."""
    return json.dumps(card, sort_keys=True, ensure_ascii=False)


def flatten(card: dict, prefix: str = "") -> dict[str, str]:
    """Nested keys joined by '.', values as text: what `diff` compares."""
    out = {}
    for key, value in card.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def diff(a: dict, b: dict) -> list[str]:
    """How two cards differ, one line per field (the row names aside); [] if they do not."""
    left, right = flatten(a), flatten(b)
    fields = [k for k in dict.fromkeys([*left, *right]) if k != "row"]
    return [f"{k}: {left.get(k, '(none)')}  |  {right.get(k, '(none)')}"
            for k in fields if left.get(k) != right.get(k)]


def find_card(cards: list[dict], wanted: str) -> dict:
    """The card of a row given by its number in the table (from 1) or by text that names
    exactly one row (its method and setting, as the card's `row` says)."""
    if wanted.isdigit() and 1 <= int(wanted) <= len(cards):
        return cards[int(wanted) - 1]
    exact = [c for c in cards if c["row"] == wanted]
    found = exact or [c for c in cards if wanted in c["row"]]
    if len(found) == 1:
        return found[0]
    rows = "\n".join(f"  {i}: {c['row']}" for i, c in enumerate(cards, 1))
    what = "names no row" if not found else f"names {len(found)} rows"
    raise ValueError(f"{wanted!r} {what}; give a row number or a unique part of one:\n{rows}")


def latex_cards(cards: list[dict]) -> str:
    """The cards under a LaTeX table: one item per measured row; the reported rows, whose
    cards are all the paper's, in one."""
    lines = ["\\paragraph{Protocol cards}", "\\begin{description}"]
    reported = [c for c in cards if c["source"] == "reported"]
    if reported:
        rows = ", ".join(dict.fromkeys(c["row"] for c in reported))
        lines.append(f"\\item[{{Reported rows}}] {_escape(rows)}: {_escape(reported[0]['from'])}")
    for card in cards:
        if card["source"] == "reported":
            continue
        text = "; ".join(f"{k}: {v}" for k, v in flatten(card).items()
                         if k not in ("row", "source"))
        lines.append(f"\\item[{{{_escape(card['row'])}}}] {_escape(text)}")
    return "\n".join(lines + ["\\end{description}"]) + "\n"


LATEX = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#",
         "_": "\\_", "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\^{}"}


def _escape(text: str) -> str:
    return "".join(LATEX.get(c, c) for c in text)
