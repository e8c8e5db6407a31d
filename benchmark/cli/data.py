"""`list` (methods, tasks, datasets), `score` (a CSV of predictions made anywhere) and `check`
(a check sheet of a task's crops and flows)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mer_bench.benchmark.cli.options import config_of
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.datasets.errors import DatasetError


def add_parsers(commands, common: argparse.ArgumentParser) -> dict:
    listing = commands.add_parser("list", parents=[common],
                                  help="list methods, tasks, datasets or grids")
    listing.add_argument("what", choices=["methods", "tasks", "datasets", "grids"])
    listing.add_argument("--verbose", "-v", action="store_true",
                         help="tasks: list every excluded clip and every rule applied, by clip")
    listing.add_argument("--details", action="store_true",
                         help="methods: views and their shapes, default budget and recipe, "
                              "parameters (for the default task's classes), paper name (builds "
                              "each method)")
    scoring = commands.add_parser("score", parents=[common],
                                  help="score per-clip predictions made anywhere (a CSV, or a "
                                       "release's published log) under a task's clips and "
                                       "labels")
    scoring.add_argument("--task", required=True)
    scoring.add_argument("--predictions", required=True, type=Path,
                         help="a published log as shipped (`<dataset> <subject>` lines, then "
                              "`<clip> <true> <predicted>` lines: STSTNet's, CapsuleNet's) or a "
                              "CSV: clip (key or name; optional dataset, subject columns) and "
                              "predicted (class index or name) or one logit column per class; "
                              "optional label, checked against the task's")
    declared = scoring.add_mutually_exclusive_group()
    declared.add_argument("--missing", type=Path, metavar="FILE",
                          help="the clips the predictions are known to lack, one per line (key "
                               "or clip name; # comments): scored on the clips covered, those "
                               "named; any other missing clip still fails")
    declared.add_argument("--allow-missing", action="store_true",
                          help="score on the clips covered whatever is missing, naming every "
                               "clip left out")
    scoring.add_argument("--store", metavar="NAME",
                         help="also store the predictions as the run published[source=NAME] "
                              "(one job per fold), so tables show it beside measured rows and "
                              "pair them on the clips both cover")
    check = commands.add_parser("check", parents=[common],
                                help="draw a check sheet (PNG) of a task's crops and flows")
    check.add_argument("--task", required=True)
    check.add_argument("--per-class", type=int,
                       help="clips per class, 0 for all (default 1; with --subject: all)")
    check.add_argument("--subject", help="only this subject's clips (e.g. sub01)")
    check.add_argument("--method", help="the method whose input the last column shows "
                                        "(default: the flagship, methods.FLAGSHIP)")
    check.add_argument("--out", type=Path,
                       help="the PNG to write (default: RESULTS/check/<task>[-<subject>].png)")
    return {"list": command_list, "score": command_score, "check": command_check}


def command_list(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.protocol.tasks import TASKS
    from mer_bench.datasets import DATASETS
    from mer_bench.methods import METHODS

    config = config_of(args)
    if args.what == "methods" and args.details:
        from mer_bench.benchmark.tools.catalogue import method_details

        for name in METHODS.names():
            print("\n".join(method_details(name)) + "\n")
    elif args.what == "methods":
        for name in METHODS.names():
            entry = METHODS.entry(name)
            print(f"{name:24s} {entry.target}" + (f" {entry.kwargs}" if entry.kwargs else ""))
    elif args.what == "grids":
        from mer_bench.benchmark.protocol.grids import shipped_grids
        from mer_bench.benchmark.tools.catalogue import grid_details

        for path in shipped_grids():
            print("\n".join(grid_details(path)) + "\n")
    elif args.what == "datasets":
        for name in DATASETS.names():
            root = config.root_of(name, must_exist=False)
            print(f"{name:24s} {DATASETS.entry(name).target}  root: {root}"
                  + ("" if root.exists() else " (absent)"))
    else:
        for name in TASKS.names():
            _describe_task(name, config, args.verbose)
    return 0


def _describe_task(name: str, config: RunConfig, verbose: bool = False) -> None:
    from mer_bench.benchmark.protocol.tasks import (DROP_EMPTY, build_task,
                                                    generated_on_first_use, load_task)

    task = build_task(name)
    print(f"{name}: {task.description}")
    ungenerated = [str(config.root_of(d, must_exist=False)) for d in task.datasets
                   if generated_on_first_use(d) and not config.root_of(d, must_exist=False).exists()]
    if ungenerated:  # listing writes nothing: the set is made by the first run or prepare
        print(f"  SYNTHETIC data, not generated yet ({', '.join(ungenerated)}): `prepare "
              f"--task {name}` or a run generates them, then this lists them\n")
        return
    try:
        data = load_task(task, {d: config.root_of(d) for d in task.datasets}, "keep")
    except DatasetError as error:
        print(f"  data not available: {error}\n")
        return
    counts = ", ".join(f"{c} {n}" for c, n in data.class_counts().items())
    kind = "SYNTHETIC" if data.synthetic else data.data_label
    print(f"  {len(data.samples)} samples ({kind}), {len(data.subjects())} subjects: {counts}")
    empty = data.empty_classes()
    if empty:
        print(f"  REFUSES TO RUN: class {', '.join(empty)} has no samples (run it as "
              f"{name}{DROP_EMPTY} to drop the class, labelled so)")
    for note in data.root_notes:
        print(f"  {note}")
    for reason, count in sorted(data.exclusion_counts().items()):
        print(f"  excluded {count}: {reason}")
    for (action, rule), count in sorted(data.note_counts().items()):
        print(f"  {action} {count}: {rule}")
    if verbose:
        reasons = dict(data.excluded)
        for key, reason in data.excluded:
            print(f"    excluded {key}: {reason}")
        for note in data.notes:
            if note.action != "dropped" or note.clip_key not in reasons:
                print(f"    {note.action} {note.clip_key}: {note.rule}"
                      + (f" ({note.detail})" if note.detail else ""))
            else:
                print(f"    dropped {note.clip_key}: {note.detail}")
    print()


def command_score(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.stats.scoring import score_file
    from mer_bench.benchmark.protocol.tasks import build_task, load_task

    config = config_of(args)
    task = build_task(args.task)
    data = load_task(task, {d: config.root_of(d) for d in task.datasets})
    declared = _declared(args.missing) if args.missing else None
    report = score_file(args.predictions, data, declared, args.allow_missing)
    print("\n".join(report.lines()))
    if args.store and report.whole:
        from mer_bench.benchmark.execution.published_rows import store_published

        jobs = store_published(report, data, args.predictions, args.store, config.store)
        print(f"stored as run {jobs[0].run_label} ({len(jobs)} folds) in {config.store.runs}")
    elif args.store:
        print(f"not stored: {args.predictions} lacks clips that were not declared missing, or a "
              "declaration is wrong", file=sys.stderr)
    for line in _unscored_why(report, args):
        print(line, file=sys.stderr)
    return 0 if report.whole else 1


def _unscored_why(report, args: argparse.Namespace) -> list[str]:
    """Why `score` exits 1, with the option that lets it through: a user who knows a file is
    partial should not have to find `--missing` / `--allow-missing` in --help."""
    lines = []
    if report.missing:
        lines.append(f"error: {args.predictions} lacks {len(report.missing)} clip(s) of task "
                     f"{report.task} (listed above); to score it on the clips it covers, give "
                     "--allow-missing, or --missing FILE naming the clips it is known to lack")
    if report.declared_present:
        lines.append(f"error: --missing {args.missing} names {len(report.declared_present)} "
                     f"clip(s) that {args.predictions} holds (listed above): take them out of it")
    if report.scores is None:
        lines.append(f"error: no clip of {args.predictions} is a clip of task {report.task}")
    return lines


def _declared(path: Path) -> list[str]:
    """The clip names of a --missing file: one per line, blank lines and # comments skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ValueError(f"--missing {path} cannot be read: {error.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def command_check(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.tools.check_sheet import make_check_sheet

    config = config_of(args)
    sheet = make_check_sheet(args.task, config, per_class=args.per_class, subject=args.subject,
                             path=args.out, method=args.method)
    print(f"{args.task}: check sheet of {len(sheet.rows)} clips ({len(sheet.failed)} failed to "
          f"prepare) written to {sheet.path}")
    for key, reason in sheet.failed.items():
        print(f"  failed {key}: {reason}")
    return 0
