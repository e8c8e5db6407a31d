"""`run` (a grid of jobs, resumable) and `prepare` (a task's clips preprocessed ahead)."""

from __future__ import annotations

import argparse
import sys
import time

from mer_bench.benchmark.cli.options import (
    add_recipe_option, config_of, fold_list, keep_list, positive_int, report_quarantined,
    slurm_pair, weights_dir)
from mer_bench.benchmark.cli.results import is_paper_grid, method_switches, paper_tables
from mer_bench.benchmark.execution.planning import prepare_task
from mer_bench.benchmark.execution.preview import preview
from mer_bench.benchmark.execution.runner import run_grids
from mer_bench.benchmark.protocol.grids import Grid, MethodSpec, grid_path, load_grid
from mer_bench.benchmark.protocol.slurm_settings import SLURM_KEYS
from mer_bench.benchmark.reporting.tables import render_ablation, render_markdown, write_tables
from mer_bench.benchmark.stats.runs import run_scores
from mer_bench.datasets.tasks import DEFAULT_TASK

QUICK_GRID = "quick.toml"


def add_parsers(commands, common: argparse.ArgumentParser) -> dict:
    run = commands.add_parser("run", parents=[common], help="run a grid of jobs (resumable)")
    run.add_argument("--grid", help="TOML grid file, or a shipped grid's name (quick, ablation, "
                                    "comparison, table1..table7, honesty, fig9, gpu_scale, "
                                    "cross_dataset, key_frames, preprocessing; "
                                    "paper = all of the paper's); the default without "
                                    "--methods is quick")
    run.add_argument("--profile", help="a grid profile, e.g. quick: the paper's grids mapped to "
                                       "the synthetic stand-in with CPU budgets")
    run.add_argument("--methods", help="comma-separated method names")
    run.add_argument("--tasks", "--task", help="comma-separated task names (default "
                                                       f"{DEFAULT_TASK}, the synthetic default)")
    run.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    run.add_argument("--folds", type=fold_list, default=(), metavar="N|FOLD,...",
                     help="run only some folds of each task: N (the first N) or held-out "
                          "folds by name (the subject's, or the fold's as tables name it); "
                          "the run stays incomplete, unscored, until the rest are run (a "
                          "quick check of a setting)")
    run.add_argument("--budget", type=positive_int,
                     help="training iterations, i.e. optimizer steps whatever the batch "
                          "(default: each method's own schedule, which may count epochs: "
                          "`list methods --details` gives it)")
    add_recipe_option(run, "every method given by --methods, on every task (a grid sets its "
                           "own in its file)")
    run.add_argument("--selection", default="last",
                     help="model selection: last (default), val, or oracle (reads test labels)")
    run.add_argument("--pretrain", metavar="TASK",
                     help="start every fold from a checkpoint trained on TASK (a "
                          "macro-expression task, say)")
    run.add_argument("--pretrain-budget", type=positive_int, help="pretraining iterations")
    run.add_argument("--start", metavar="DIR",
                     help="start every fold from an exported model (mer-bench export), its "
                          "final layers aside: a transfer start; a grid method's `start = "
                          "NAME` reads the folder given as --weights-dir NAME=DIR")
    run.add_argument("--keep", type=keep_list, default=(), metavar="weights,features",
                     help="artefacts each job keeps beside its result: its final weights "
                          "(safetensors) and the test samples' features at each final layer "
                          "(off by default; a stored job without them runs again)")
    run.add_argument("--threads", type=positive_int,
                     help="CPU threads of each job (default: the cores shared out among the "
                          "workers); the same count gives the same bits serial or in workers")
    run.add_argument("--executor", choices=["local", "ray", "slurm"], default="local",
                     help="local (default): serial, or --workers processes; ray: Ray tasks; "
                          "slurm: one SLURM job array (submitit), its elements writing to "
                          "this results folder, which the nodes must share")
    run.add_argument("--slurm", type=slurm_pair, action="append", default=[],
                     metavar="KEY=VALUE",
                     help="what the SLURM array asks for, over the grid's [slurm] table: "
                          f"{', '.join(SLURM_KEYS)} (e.g. --slurm partition=gpu --slurm "
                          "gpus=1 --slurm time=120; repeatable)")
    run.add_argument("--detach", action="store_true",
                     help="with --executor slurm: submit the array and return; follow it with "
                          "`mer-bench status`, stop it with `mer-bench cancel`; the same "
                          "command without --detach waits for it and prints the tables (it "
                          "submits nothing twice)")
    run.add_argument("--ray-address", help="a running Ray cluster (auto, or host:port); "
                                           "default: start a local one")
    run.add_argument("--gpus-per-job", type=float, default=0.0,
                     help="Ray: GPU share per job (0.25 runs four jobs on each GPU)")
    run.add_argument("--fold-parallel", default="1", metavar="K",
                     help="train up to K folds of a run at once in one process (torch methods, "
                          "selection last): same data, seeds and budgets per fold; auto: as "
                          "many as the GPU's memory holds, 1 on CPU (default 1)")
    run.add_argument("--compile", action="store_true",
                     help="torch.compile each fold's training step (meant for GPUs; on a "
                          "2-core CPU it compiled for minutes and then ran slower)")
    run.add_argument("--weights-dir", action="append", default=[], metavar="[NAME=]DIR",
                     help="a folder of released per-subject weights (one file per held-out "
                          "subject, e.g. STSTNet's 006.pth ... sub26.pth): with --methods, "
                          "each method is evaluated with them, nothing trained; a grid "
                          "method's `weights = NAME` reads the folder given as NAME=DIR, or "
                          "named NAME (repeatable)")
    run.add_argument("--plan", action="store_true",
                     help="show every job the command would run (by method x task x seed: "
                          "folds stored and to run) and an estimate of its cost, from the "
                          "manifests of tasks prepared before and the store; check every name; "
                          "run, prepare and generate nothing")
    run.add_argument("--channels-last", choices=["on", "off"],
                     help="memory layout of torch methods' convolutions (default: each "
                          "method's own)")

    prepare = commands.add_parser("prepare", parents=[common], help="preprocess a task's clips")
    prepare.add_argument("--task", required=True)
    return {"run": command_run, "prepare": command_prepare}


def command_run(args: argparse.Namespace) -> int:
    config = config_of(args)
    grids = _grids(args)
    if args.plan:
        print(preview(grids, config, args.folds).render(config.workers))
        return 0
    started = time.perf_counter()
    summary = run_grids(grids, config, args.folds)
    if config.detach and not summary.interrupted:
        print(detached(summary))
        return 0
    if summary.interrupted:
        print(summary.interruption(), file=sys.stderr)
        report_quarantined(config)
        return 130
    records = list(config.store.records())
    every_run = run_scores(records)
    keys = {job.key for job in summary.jobs}  # planned from the data as they are now
    runs = run_scores(records, keys=keys)
    switches, legends = method_switches(every_run)  # the runs of this grid among them
    paths = write_tables(every_run, config.results / "tables", switches, legends)
    print()
    print(render_markdown(runs))
    ablation = render_ablation(runs, switches, legends)
    if ablation:
        print(ablation)
    elapsed = time.perf_counter() - started
    print(f"{summary.ran} jobs run, {summary.already_done} already done, "
          f"{len(summary.failed)} failed, in {elapsed:.1f} s: {summary.planning_s:.1f} s "
          f"planning (generating and preparing data), {elapsed - summary.planning_s:.1f} s "
          f"running jobs. Tables of every stored run: {', '.join(map(str, paths))}")
    if args.grid and is_paper_grid(args.grid):
        paper_tables(args, config, keys)
    report_quarantined(config)
    return 1 if summary.failed else 0


def detached(summary) -> str:
    """What a detached run says: the array it submitted, or that there was nothing to."""
    submission = summary.submitted
    if submission is None:
        return (f"nothing submitted: {summary.already_done} jobs already stored, "
                f"{summary.left_in_flight} queued or running in earlier SLURM arrays")
    jobs = sum(len(e.jobs) for e in submission.elements)
    return (f"submitted SLURM array {submission.array}: {len(submission.elements)} elements, "
            f"{jobs} jobs; logs and record in {submission.folder}\n"
            "follow it with `mer-bench status`, stop it with `mer-bench cancel`; the same "
            "command without --detach waits for it and prints the tables")


def _grids(args: argparse.Namespace) -> list[Grid]:
    if args.grid or not args.methods:
        from mer_bench.benchmark.reporting.paper_outputs import paper_grid_names

        if args.recipe:
            raise ValueError("--recipe sets the recipe of --methods; a grid's methods set "
                             "theirs in the grid file (recipe = { TASK = { batch_size = 8 } })")
        names = paper_grid_names(args.grid or QUICK_GRID)
        return [load_grid(grid_path(name), args.profile, args.precision) for name in names]
    weights = [weights_dir(d)[0] for d in args.weights_dir] or [None]
    if len(weights) > 1:
        raise ValueError("with --methods, give one --weights-dir (a grid may name several)")
    tasks = tuple(t.strip() for t in (args.tasks or DEFAULT_TASK).split(",") if t.strip())
    recipes = {task: dict(args.recipe) for task in tasks} if args.recipe else None
    options_free = tuple(MethodSpec.make(name.strip(), budget=args.budget, pretrain=args.pretrain,
                                         pretrain_budget=args.pretrain_budget,
                                         weights=weights[0],
                                         start=weights_dir(args.start)[0] if args.start else None,
                                         recipes=recipes)
                         for name in args.methods.split(",") if name.strip())
    seeds = tuple(int(s) for s in args.seeds.split(","))
    return [Grid(options_free, tasks, seeds, args.selection, precision=args.precision or "fp32")]


def command_prepare(args: argparse.Namespace) -> int:
    config = config_of(args)
    workers = args.workers if args.workers is not None else config.prepare_workers
    started = time.perf_counter()
    try:
        prepared = prepare_task(args.task, config, workers, config.progress)
    except KeyboardInterrupt:
        print(f"{args.task}: interrupted; the bundles finished so far are kept, run the same "
              "command again to resume", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started
    if config.progress:  # where the data were read from, or generated into
        for note in prepared.data.run_notes:
            print(note, flush=True)
    report = prepared.report
    clips = report.prepared + report.cached + len(report.failed)
    print(f"{args.task}: {report.summary()}\n{clips} clips in {elapsed:.1f} s "
          f"({clips / max(elapsed, 1e-9):.2f} clips/s, {workers} worker"
          f"{'s' if workers != 1 else ''}; settings {config.preprocess.digest()}, "
          f"domains {config.preprocess.domains})")
    return 1 if report.failed else 0
