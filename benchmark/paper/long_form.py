"""A paper table as printed and rendered: one row per table row x task, each run's protocol
a short tag explained under the table. The paper's own layout (a column group per task, the
protocol spelled out in every row) is 14 to 27 columns of 40 characters: the CSV and LaTeX keep
it, for other tools and the paper's look; a terminal and a page get this one.
"""

from __future__ import annotations

import pandas as pd

NOT_APPLICABLE = "—"  # paper/tables.py's cell for a number that does not exist
_SHORT = 12  # a protocol this short stays in its cell ("the paper")


def long_form(frame: pd.DataFrame, names: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """`frame` (paper/tables.py's table_frame, less its card column) one row per row x task,
    and the legend of its protocol tags. A row x task with no number at all ("—" in every
    cell: the paper reports none there) is left out; "missing" (not run yet) stays."""
    first = names[0]
    tasks = [column[: -len(first) - 1] for column in frame.columns
             if column.endswith(f" {first}")]
    keys = [name for name in ("method", "setting", "source") if name in frame.columns]
    tags: dict[str, str] = {}
    rows = []
    for _, row in frame.iterrows():
        text = row["protocol"]
        tag = text if len(text) <= _SHORT else tags.setdefault(text, f"P{len(tags) + 1}")
        for task in tasks:
            cells = {name: row[f"{task} {name}"] for name in names}
            if all(cell == NOT_APPLICABLE for cell in cells.values()):
                continue
            rows.append({**{key: row[key] for key in keys}, "protocol": tag, "task": task,
                         **cells})
    columns = [*keys, "protocol", "task", *names]
    legend = [f"{tag}: {text}" for text, tag in tags.items()]
    return pd.DataFrame(rows, columns=columns), legend
