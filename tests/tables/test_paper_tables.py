"""The paper's tables and figures: layouts against golden files (rendering only, the numbers
are made up here), the reference numbers against the paper, and the command end to end.

Regenerate the golden files after an intended layout change with UPDATE_GOLDEN=1.
"""

import os
from pathlib import Path

import pandas as pd
import pytest

from mer_bench.benchmark.protocol.grids import grid_path

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.paper.figures import fig9_figure, fig9_points
from mer_bench.benchmark.reporting.figures import confusion_figure, save
from mer_bench.benchmark.stats.metrics import score
from mer_bench.benchmark.reporting.paper_outputs import paper_grid_names
from mer_bench.benchmark.paper.tables import PAPER_GRIDS, load_paper_table, render, run_label
from mer_bench.benchmark.paper.reference import REFERENCE, reported
from mer_bench.benchmark.stats.runs import RunScores
from mer_bench.benchmark.stats.uncertainty import Pooled

GOLDEN = Path(__file__).parents[1] / "golden"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "paper_results.csv"
CLASSES = ("happiness", "surprise", "disgust", "repression", "others")


def made_up_run(label: str, spec, grid, index: int, folds: int = 10) -> RunScores:
    """A complete synthetic run with numbers that depend only on its position: 50 clips of
    10 subjects, every third clip wrong by `index` classes."""
    import numpy as np

    labels = np.array([i % 5 for i in range(50)])
    predicted = np.array([(i + index) % 5 if i % 3 == 0 else i % 5 for i in range(50)])
    pooled = Pooled(labels, predicted, tuple(f"synthetic/sub{i // 5:02d}" for i in range(50)), 5)
    scores = score(labels, predicted, 5)
    complete = folds == 10
    return RunScores(label, grid.tasks[0], spec.selection or grid.selection, spec.budget, True,
                     folds, 10, (0,), (scores,) if complete else (), CLASSES,
                     pooled=(pooled,) if complete else ())


def made_up_runs(name: str) -> dict[str, list[RunScores]]:
    """Every measured spec of the quick profile run, but the last missing and the second
    incomplete (when there are three or more), so that every kind of cell shows (the first,
    complete, is the reference of the p-values)."""
    table = load_paper_table(grid_path(name), "quick")
    specs = list(table.grid.methods)
    runs = []
    for index, spec in enumerate(specs[:-1] if len(specs) > 1 else specs):
        folds = 7 if index == 1 and len(specs) >= 3 else 10
        runs.append(made_up_run(run_label(spec, table.grid), spec, table.grid, index, folds))
    heads = {"final": runs}
    if table.key == "7":
        heads |= {"ac1": runs, "ac2": runs}
    return heads


@pytest.mark.parametrize("name", PAPER_GRIDS)
@pytest.mark.parametrize("fmt,extension", [("markdown", "md"), ("latex", "tex"), ("csv", "csv")])
def test_paper_table_layouts_match_their_golden_files(name, fmt, extension):
    table = load_paper_table(grid_path(name), "quick")
    text = render(table, made_up_runs(name), fmt)
    golden = GOLDEN / f"{name}.{extension}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_printed_tables_are_a_row_per_row_and_task_with_protocols_in_a_legend():
    """The markdown carries every number of the wide CSV, one row per row x task, each
    measured row's protocol a tag that the legend under the table spells out."""
    table = load_paper_table(grid_path("table7"), "quick")
    runs = made_up_runs("table7")
    wide = pd.read_csv(pd.io.common.StringIO(render(table, runs, "csv")), keep_default_na=False)
    text = render(table, runs, "markdown")
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    header, body = [cell.strip() for cell in rows[0]], [[c.strip() for c in r] for r in rows[1:]]
    assert header[-5:] == ["task", "UF1", "UAR", "ACC", "p"]
    legend = dict(line.split(": ", 1) for line in text.split("Protocols:\n")[1].splitlines())
    for line in body:
        cells = dict(zip(header, line))
        match = wide[(wide.method == cells["method"]) & (wide.setting == cells["setting"])
                     & (wide.source == cells["source"])]
        protocol = legend.get(cells["protocol"], cells["protocol"])
        match = match[match.protocol == protocol]
        assert len(match) == 1, cells
        assert match.iloc[0][f"{cells['task']} UF1"] == cells["UF1"]
    numbers = sum(cell not in ("—",) for column in wide.columns if column.endswith(" UF1")
                  for cell in wide[column])
    assert len(body) == numbers  # every cell with a number or `missing`, no other
    assert max(len(line) for line in text.splitlines() if line.startswith("|")) < 200


def test_a_synthetic_run_never_sits_under_a_real_dataset_column():
    table = load_paper_table(grid_path("table2"), "quick")
    frame = pd.read_csv(pd.io.common.StringIO(render(table, made_up_runs("table2"), "csv")))
    measured = frame[frame.source == "measured"]
    assert set(measured["casme2-5 UF1"]) == {"missing"}
    assert set(frame[frame.source == "reported"]["synthetic-5 (SYNTHETIC) UF1"]) == {"—"}
    reported_row = frame[(frame.source == "reported") & (frame.method == "SKD-TSTSAN")]
    assert reported_row["casme2-5 UF1"].item() == "90.34"


def test_table5_has_a_check_mark_per_switch_as_the_paper():
    table = load_paper_table(grid_path("table5"), "quick")
    frame = pd.read_csv(pd.io.common.StringIO(render(table, made_up_runs("table5"), "csv")),
                        keep_default_na=False)
    full = frame[frame.setting == "mag+eca+tsm+skd"]
    assert len(full) == 2 and set(full.source) == {"reported", "measured"}
    assert (full[["Mag", "ECA", "TSM", "SKD"]] == "✓").all().all()
    base = frame[frame.setting == "baseline"]
    assert (base[["Mag", "ECA", "TSM", "SKD"]] == "").all().all()


def test_the_reference_copy_holds_the_papers_numbers():
    frame = reported()
    assert len(frame) == 114 and sorted(set(frame.table)) == [1, 2, 3, 4, 5, 6, 7]
    row = frame[(frame.table == 2) & (frame.method == "SKD-TSTSAN")]
    assert (row.uf1.item(), row.uar.item()) == (90.34, 89.47)
    row = frame[(frame.table == 5) & (frame.setting == "baseline") & (frame.task == "casme2-5")]
    assert (row.uf1.item(), row.uar.item()) == (77.49, 75.85)


def test_the_reference_copy_matches_the_shared_reference():
    if not SHARED.is_file():
        pytest.skip(f"the shared reference {SHARED} is not here")
    assert REFERENCE.read_text() == SHARED.read_text()


def test_tables_command_writes_every_paper_table_and_figure_from_an_empty_store(tmp_path,
                                                                                capsys):
    assert main(["tables", "--grid", "paper", "--profile", "quick",
                 "--results", str(tmp_path)]) == 0
    folder = tmp_path / "tables" / "paper-quick"
    for name in paper_grid_names("paper"):
        extensions = ["png", "csv"] if name == "fig9" else ["md", "tex", "csv"]
        assert all((folder / f"{name}.{e}").stat().st_size > 0 for e in extensions)
    table5 = (folder / "table5.md").read_text()
    assert "missing" in table5 and "77.49" in table5 and "0.00" not in table5


def test_fig9_puts_the_papers_stated_transfer_gains_beside_the_measured_ones():
    table = load_paper_table(grid_path("fig9"))  # paper scale: casme2-5 is tasks[0]
    runs = [made_up_run(run_label(s, table.grid), s, table.grid, i)
            for i, s in enumerate(table.grid.methods[:2])]  # with and without transfer
    points = fig9_points(table, runs)
    gains = points[points.point == "gain with CK+ transfer (points)"].set_index("task")
    assert list(gains.index) == ["casme2-5", "samm-3"]  # the paper's transfer panel
    with_, without = (r.mean_std("uar")[0] for r in runs)
    assert gains.loc["casme2-5", "measured UAR"] == pytest.approx(with_ - without)
    assert list(gains["reported (the paper's text)"]) == [1.86, 8.89]
    assert pd.isna(gains.loc["samm-3", "measured UAR"])  # no run there: missing, not drawn
    sweep = points[points.panel == "amplification"]
    assert set(sweep.task) == {"samm-3", "mmew-6"} and len(sweep) == 10


def test_figures_draw_confusion_matrices_and_the_fig9_panels(tmp_path):
    table = load_paper_table(grid_path("fig9"), "quick")
    runs = [made_up_run(run_label(s, table.grid), s, table.grid, i)
            for i, s in enumerate(table.grid.methods)]
    assert save(fig9_figure(table, runs), tmp_path / "fig9.png").stat().st_size > 10_000
    assert save(confusion_figure(runs[0]), tmp_path / "fig5.png").stat().st_size > 10_000


def test_the_honesty_table_prints_what_the_oracle_adds_to_each_method():
    table = load_paper_table(grid_path("honesty"), "quick")
    runs = [made_up_run(run_label(s, table.grid), s, table.grid, i)
            for i, s in enumerate(table.grid.methods)]
    frame = pd.read_csv(pd.io.common.StringIO(render(table, {"final": runs}, "csv")),
                        keep_default_na=False)
    column = "synthetic-5 (SYNTHETIC)"
    for spec in {s.name: s for s in table.grid.methods}.values():
        mine = {r.selection: r for r in runs if r.method == run_label(spec, table.grid)}
        rows = frame[frame.method.str.endswith(f"({run_label(spec, table.grid)})")]
        gap = rows[rows.setting == "oracle − last"]
        expected = mine["oracle"].mean_std("uf1")[0] - mine["last"].mean_std("uf1")[0]
        assert float(gap[f"{column} UF1"].item()) == pytest.approx(expected, abs=0.006)
        own_p = f"{mine['oracle'].p_value(mine['last']):.3f}"
        assert gap[f"{column} p"].item() == own_p
        assert rows[rows.setting == "selection=oracle"][f"{column} p"].item() == own_p
        assert rows[rows.setting == "selection=last"][f"{column} p"].item() == "ref"


def test_a_protocol_table_shows_only_the_tasks_its_profile_runs():
    protocol = load_paper_table(grid_path("cross_dataset"), "released")
    assert protocol.columns == ("composite-3-flows@lodo", "composite-3-flows@lodo[casme2]",
                                "composite-3-flows@lodo[samm]", "composite-3-flows@lodo[smic]")
    paper = load_paper_table(grid_path("table2"), "quick")  # reported numbers: paper columns stay
    assert paper.columns[:len(paper.paper_tasks)] == paper.paper_tasks
    assert "synthetic-5" in paper.columns


def test_a_row_with_fewer_seeds_stored_than_its_grid_asks_says_which_ran():
    from dataclasses import replace

    table = load_paper_table(grid_path("table1"), "released")
    assert len(table.grid.seeds) == 3
    shared, apex = (next(s for s in table.grid.methods if s.name == name)
                    for name in ("ststnet.shared", "off_apexnet"))
    one_seed = made_up_run(run_label(shared, table.grid), shared, table.grid, 1)
    apex_run = made_up_run(run_label(apex, table.grid), apex, table.grid, 2)
    three_seeds = replace(apex_run, seeds=(0, 1, 2), per_seed=apex_run.per_seed * 3,
                          pooled=apex_run.pooled * 3)
    frame = pd.read_csv(pd.io.common.StringIO(
        render(table, {"final": [one_seed, three_seeds]}, "csv")), keep_default_na=False)
    rows = {spec.name: frame[frame.method.str.endswith(f"({run_label(spec, table.grid)})")]
            for spec in (shared, apex)}
    assert "1 of 3 seeds stored (0)" in rows["ststnet.shared"].protocol.item()
    assert "3 seeds," in rows["off_apexnet"].protocol.item()
    assert "seeds stored" not in rows["off_apexnet"].protocol.item()
    import json

    card = json.loads(rows["ststnet.shared"]["protocol card"].item())
    assert card["seeds"] == [0, 1, 2] and card["seeds stored"] == [0]
    assert "seeds stored" not in json.loads(rows["off_apexnet"]["protocol card"].item())
