"""`tables` (the comparison, ablation and paper tables from the store), `report` (a static
site of the store) and `store verify` (every stored job against its digests)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mer_bench.benchmark.cli.options import config_of, report_quarantined
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.grids import grid_path
from mer_bench.benchmark.reporting.tables import render_ablation, render_markdown, write_tables
from mer_bench.benchmark.stats.runs import run_scores


def add_parsers(commands, common: argparse.ArgumentParser) -> dict:
    tables = commands.add_parser("tables", parents=[common],
                                 help="regenerate tables (and figures) from the store")
    tables.add_argument("--grid", help="a paper grid (table1..table7, honesty, fig9) or paper "
                                       "(all): its tables as the paper lays them out")
    tables.add_argument("--profile", help="the profile the grid was run under (e.g. quick)")
    tables.add_argument("--weights-dir", action="append", default=[], metavar="[NAME=]DIR",
                        help="as for run: the released weights folders its grid names, so that "
                             "its rows are checked against them")
    tables.add_argument("--diff", nargs=2, metavar=("A", "B"),
                        help="with --grid TABLE: how two rows' protocols differ (a row's number "
                             "in the table, from 1, or a unique part of its method and setting)")
    tables.add_argument("--plan", action="store_true",
                        help="with --grid: the grid's jobs, stored and to run (what `run` "
                             "would add to its tables) and their estimated cost; nothing run")
    report = commands.add_parser("report", parents=[common],
                                 help="a static HTML site of the store (every run, its card, "
                                      "folds, figures; the paper tables it has rows of)")
    report.add_argument("--out", type=Path, help="the site's folder (default: RESULTS/report)")
    report.add_argument("--profile", help="the profile the paper grids ran under (e.g. quick)")
    store = commands.add_parser("store", parents=[common],
                                help="check the store: every stored job's files against the "
                                     "digests recorded when they were written")
    store.add_argument("action", choices=["verify"])
    store.add_argument("--repair", action="store_true",
                       help="move damaged entries aside (quarantine/) so their jobs run again")
    return {"tables": command_tables, "report": command_report, "store": command_store}


def command_tables(args: argparse.Namespace) -> int:
    config = config_of(args)
    if args.diff:
        return _diff_rows(args, config)
    if args.plan:
        return _plan(args, config)
    if args.grid:
        return paper_tables(args, config)
    runs = run_scores(list(config.store.records()))
    switches, legends = method_switches(runs)
    print(render_markdown(runs))
    if switches:
        print(render_ablation(runs, switches, legends))
    try:
        paths = write_tables(runs, config.results / "tables", switches, legends)
        print(f"written: {', '.join(map(str, paths))}")
    except OSError as error:  # a read-only store is read, and its tables shown
        print(f"tables shown, not written: {error.filename or config.results / 'tables'}: "
              f"{error.strerror}", file=sys.stderr)
    report_quarantined(config)
    return 0


def _plan(args: argparse.Namespace, config: RunConfig) -> int:
    from mer_bench.benchmark.execution.preview import preview
    from mer_bench.benchmark.protocol.grids import load_grid
    from mer_bench.benchmark.reporting.paper_outputs import paper_grid_names

    if not args.grid:
        print("tables --plan shows the jobs of a grid's tables: give --grid too",
              file=sys.stderr)
        return 2
    grids = [load_grid(grid_path(name), args.profile, args.precision)
             for name in paper_grid_names(args.grid)]
    print(preview(grids, config).render(config.workers))
    return 0


def _diff_rows(args: argparse.Namespace, config: RunConfig) -> int:
    from mer_bench.benchmark.reporting.paper_outputs import diff_rows

    if not args.grid:
        print("tables --diff compares two rows of one paper table: give --grid too",
              file=sys.stderr)
        return 2
    try:
        lines = diff_rows(args.grid, grid_path(args.grid), list(config.store.records()),
                          *args.diff, args.profile, args.precision, config)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def paper_tables(args: argparse.Namespace, config: RunConfig,
                  keys: set[str] | None = None) -> int:
    """`keys`: the jobs a run just planned; without them the grids are planned here, so that
    every cell is the stored job of the data as they are now (benchmark/reporting/paper_outputs.py)."""
    from mer_bench.benchmark.reporting.paper_outputs import paper_grid_names, write_paper

    names = paper_grid_names(args.grid)
    suffix = "".join(f"-{part}" for part in (args.profile, args.precision) if part)
    folder = config.results / "tables" / f"paper{suffix}"
    try:
        written, shown = write_paper(names, {n: grid_path(n) for n in names},
                                     list(config.store.records()), folder, args.profile,
                                     args.precision, config=config, keys=keys)
    except OSError as error:  # a read-only store: said, not a traceback
        print(f"error: the paper tables cannot be written: {error.filename or folder}: "
              f"{error.strerror}", file=sys.stderr)
        report_quarantined(config)
        return 2
    for markdown in shown:
        print(markdown)
    print(f"written: {', '.join(map(str, written))}")
    report_quarantined(config)
    return 0


def is_paper_grid(name: str) -> bool:
    from mer_bench.benchmark.protocol.grids import grid_toml
    from mer_bench.benchmark.reporting.paper_outputs import paper_grid_names

    return all("table" in grid_toml(grid_path(n)) for n in paper_grid_names(name))


def method_switches(runs) -> tuple[dict[str, dict], tuple[str, ...]]:
    """Ablation switches of every run whose method declares some (`ablation_switches`), and
    what they mean (their methods' `ablation_legend`s)."""
    from mer_bench.methods import METHODS

    found, legends = {}, {}
    for run in runs:
        name = run.method.split("[")[0]
        if name in METHODS:
            method = METHODS.build(name)
            switches = method.ablation_switches()
            if switches:
                found[run.method] = switches
                legends[method.ablation_legend] = None
    return found, tuple(legend for legend in legends if legend)


def command_report(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.paper.tables import PAPER_GRIDS, PROTOCOL_GRIDS
    from mer_bench.benchmark.reporting.report import build_report

    config = config_of(args)
    grids = {name: grid_path(name) for name in PAPER_GRIDS + PROTOCOL_GRIDS}
    index = build_report(config.store, args.out or config.results / "report", grids,
                         args.profile, config.progress)
    print(f"report: {index} (open it in a browser; the folder is the whole site)")
    report_quarantined(config)
    return 0


def command_store(args: argparse.Namespace) -> int:
    """`store verify [--repair]`: every damaged entry of the store, by folder and why; with
    --repair, only what was actually moved is reported as moved."""
    config = config_of(args)
    if not config.results.is_dir():
        raise ValueError(f"{config.results} does not exist: no store to verify (give the "
                         "results folder of a run with --results)")
    if not config.store.runs.is_dir():
        print(f"no stored jobs in {config.results} (it has no runs/ folder)")
        return 0
    found = config.store.verify(repair=args.repair)
    for folder, why, moved in found:
        print(f"{folder}: {why}" + ("" if not args.repair else
                                     "; moved to quarantine/" if moved else "; NOT moved"))
    if not found:
        print(f"every stored job in {config.store.runs} is whole")
        return 0
    if not args.repair:
        print(f"{len(found)} stored jobs damaged (--repair moves them aside)")
        return 1
    moved = sum(1 for *_, was_moved in found if was_moved)
    print(f"{moved} of {len(found)} damaged stored jobs quarantined (their jobs run again on "
          "the next run)" + ("" if moved == len(found) else
                              f"; {len(found) - moved} could not be moved: "
                              + "; ".join(f"{f.name}: {w}" for f, w in config.store.unmoved)))
    return 0 if moved == len(found) else 1
