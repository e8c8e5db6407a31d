"""The paper's reported numbers (results/reference/paper_results.csv): facts from Zhu et al.,
arXiv 2406.17538, Tables 1-7, kept in the repository and shipped as package data (an installed
copy renders tables too) so that tables show them beside ours.

Columns: table, task (this harness's task name), method (as the paper names it), setting
(Table 5: the modules on; Table 6: temporal-domains=D; Table 7: classifier=k/3), uf1, uar (%).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from mer_bench import resource

REFERENCE = resource("results", "reference", "paper_results.csv")
# Reported numbers that were computed otherwise than their table says, with the evidence.
NOTES = resource("results", "reference", "reported_notes.csv")
# Numbers the paper states of its figures (Fig. 9's transfer gains), with where it says them.
FIGURES = resource("results", "reference", "paper_figures.csv")


def reported(path: Path = REFERENCE) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"setting": str}, keep_default_na=False)
    frame["table"] = frame["table"].astype(int)
    return frame


def reported_for(table: int, path: Path = REFERENCE) -> pd.DataFrame:
    frame = reported(path)
    return frame[frame["table"] == table].reset_index(drop=True)


@lru_cache(maxsize=None)
def reported_notes(path: Path = NOTES) -> dict[tuple[int, str, str, str], str]:
    """(table, task, method, metric) -> the footnote its reported cell carries (read once:
    every table's rows and caption ask)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {(int(r.table), r.task, r.method, r.metric): r.note for r in frame.itertuples()}


def reported_figure(figure: int, path: Path = FIGURES) -> pd.DataFrame:
    """The paper's stated numbers of one figure: panel, task, metric, quantity, value, source."""
    frame = pd.read_csv(path, keep_default_na=False)
    return frame[frame["figure"] == figure].reset_index(drop=True)
