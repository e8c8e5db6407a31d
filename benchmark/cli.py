"""The command line: run grids, regenerate tables, list what is registered, prepare data,
draw check sheets.

With no arguments it runs the quick comparison on the synthetic default and prints the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from mer_bench.benchmark.cli_models import add_parsers, positive_int
from mer_bench.benchmark.jobs import Grid, MethodSpec, load_grid
from mer_bench.benchmark.registry import RegistryError, load_plugin
from mer_bench.benchmark.config import RunConfig
from mer_bench.benchmark.planning import prepare_task
from mer_bench.benchmark.runner import run_grids
from mer_bench.benchmark.tables import render_ablation, render_markdown, run_scores, write_tables
from mer_bench.datasets.errors import ClipError, DatasetError
from mer_bench.datasets.preprocess import PreprocessSettings
from mer_bench.datasets.sheets import ANNOTATIONS_ENV
from mer_bench.datasets.tasks import DEFAULT_TASK

QUICK_GRID = "quick.toml"


def keep_list(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in ("weights", "features")]
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: keep weights, features or both")
    return names


def domains_count(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text}: temporal domains are 2 or more")
    return value


AFTER = "_after_subcommand"  # where a subcommand keeps its repeatable options (`parse`)


def _common(subcommand: bool = False) -> argparse.ArgumentParser:
    """The options every command takes. A subcommand's copy has no defaults of its own, so
    that an option given before the subcommand is kept, never reset to its default."""
    common = argparse.ArgumentParser(add_help=False)

    def default(value):
        return argparse.SUPPRESS if subcommand else value

    def after(name: str) -> str:  # a repeatable option given on both sides: both kept
        return f"{name}{AFTER}" if subcommand else name

    common.add_argument("--results", default=default("results"), type=Path,
                        help="results folder: store, caches, tables, generated data (default: results)")
    common.add_argument("--plugin", action="append", default=default([]),
                        dest=after("plugin"), help="a .py file or importable module that "
                                                   "registers methods/datasets/tasks")
    common.add_argument("--data-root", default=default(None),
                        help="folder of the dataset(s) the tasks read")
    common.add_argument("--data", action="append", default=default([]), dest=after("data"),
                        metavar="NAME=DIR",
                        help="folder of one dataset, by registry name (repeatable)")
    common.add_argument("--annotations", metavar="DIR", default=default(None),
                        help="folder of annotation files kept apart from the datasets (the "
                             "MEGC 2019 list, the SMIC apex list, sheets); default: "
                             f"${ANNOTATIONS_ENV}, else each dataset's folder and its parent")
    common.add_argument("--workers", type=positive_int, default=default(None),
                        help="worker processes for jobs (default 1: serial); for `prepare`, "
                             "the same as --prepare-workers")
    common.add_argument("--prepare-workers", type=positive_int,
                        default=default(os.cpu_count() or 1),
                        help="worker processes for preprocessing (default: one per CPU core)")
    common.add_argument("--domains", type=domains_count, default=default(2),
                        help="temporal domains of the flows: 2 (default: onset->apex->offset), "
                             "or D > 2: onset..offset interpolated to D+1 frames (the paper's "
                             "Table 6: 5, 10); use with SKD-TSTSAN's segments=D")
    common.add_argument("--detector", default=default("dlib"),
                        help="face detector: dlib (default), lbp (OpenCV's LBP cascade, "
                             "as scikit-image ships it) or retinaface (needs "
                             "--detector-weights)")
    common.add_argument("--detector-preset", choices=["harness", "release"],
                        default=default(None),
                        help="RetinaFace settings: harness (default: grey frames, faces above "
                             "0.9, exact NMS areas) or release (the SKD-TSTSAN release's: colour "
                             "frames, faces above 0.5, NMS areas + 1 pixel)")
    common.add_argument("--detector-weights", metavar="PATH", default=default(None),
                        help="RetinaFace weights: the Pytorch_Retinaface release's "
                             "mobilenet0.25_Final.pth or Resnet50_Final.pth (never downloaded)")
    common.add_argument("--key-frames", choices=["annotated", "middle", "peak-flow"],
                        default=default("annotated"),
                        help="onset and apex read: annotated (default), or the apex estimated "
                             "without its annotation: middle (of onset..offset) or peak-flow "
                             "(the frame that moved most from both ends)")
    common.add_argument("--key-frame-shift", type=int, default=default(0), metavar="K",
                        help="move the annotated onset and apex by a seeded -K..K frames "
                             "(default 0: as annotated)")
    common.add_argument("--key-frame-seed", type=int, default=default(0),
                        help="the seed of --key-frame-shift's draws (default 0)")
    common.add_argument("--crop", choices=["first-frame", "per-frame"],
                        default=default("first-frame"),
                        help="face boxes: the first frame's for the whole clip (default) or "
                             "one per frame (the SKD-TSTSAN release before its fix)")
    common.add_argument("--flow-encoding", default=default("float"), metavar="float|Nbit",
                        help="flows as computed (float, default) or stored as N-bit per-image "
                             "min-max images and read back (8bit: as the releases store them)")
    common.add_argument("--device", default=default("auto"),
                        help="torch device (default: cuda if present)")
    common.add_argument("--precision", choices=["fp32", "bf16"], default=default(None),
                        help="run / tables: torch methods train in fp32 or under bf16 autocast "
                             "(default: the grid's, else fp32); bf16 is part of each job's key")
    common.add_argument("--quiet", action="store_true", default=default(False),
                        help="no progress output")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mer-bench", description=__doc__, parents=[_common()])
    common = _common(subcommand=True)
    commands = parser.add_subparsers(dest="command")

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
    run.add_argument("--budget", type=positive_int,
                     help="training iterations (default: each method's)")
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
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local (default): serial, or --workers processes; ray: Ray tasks")
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
    run.add_argument("--channels-last", choices=["on", "off"],
                     help="memory layout of torch methods' convolutions (default: each "
                          "method's own)")

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
    listing = commands.add_parser("list", parents=[common], help="list methods, tasks or datasets")
    listing.add_argument("what", choices=["methods", "tasks", "datasets"])
    listing.add_argument("--verbose", "-v", action="store_true",
                         help="tasks: list every excluded clip and every rule applied, by clip")
    bench = commands.add_parser("bench", parents=[common],
                                help="a torch method's training throughput here: sequential "
                                     "vs fold-parallel, and by speed setting")
    bench.add_argument("--method", help="the method to time (default: the flagship, "
                                        "methods.FLAGSHIP)")
    bench.add_argument("--folds", default="1,4,8", help="comma-separated K (default 1,4,8)")
    bench.add_argument("--steps", type=int, default=3, help="timed steps per fold (default 3)")
    bench.add_argument("--speed", default="fp32,fp32 contiguous,bf16",
                       help="comma-separated speed settings to time one fold's step under "
                            "(fp32, fp32 contiguous, bf16, bf16 contiguous, fp32 compile, "
                            "bf16 compile; default fp32,fp32 contiguous,bf16: compiling "
                            "takes minutes on a CPU); empty for none")
    scoring = commands.add_parser("score", parents=[common],
                                  help="score a CSV of per-clip predictions made anywhere under "
                                       "a task's clips and labels")
    scoring.add_argument("--task", required=True)
    scoring.add_argument("--predictions", required=True, type=Path,
                         help="CSV: clip (key or name; optional dataset, subject columns) and "
                              "predicted (class index or name) or one logit column per class; "
                              "optional label, checked against the task's")
    stored_runs = argparse.ArgumentParser(add_help=False)  # which stored runs to draw
    stored_runs.add_argument("--method", help="only runs whose label starts with this")
    stored_runs.add_argument("--task", help="only runs of this task")
    commands.add_parser("curves", parents=[common, stored_runs],
                        help="draw the training curves of stored runs (loss per step, scored "
                             "epochs) under results/tables/curves/")
    commands.add_parser("tsne", parents=[common, stored_runs],
                        help="t-SNE of the features stored runs kept (run --keep features), "
                             "one figure per run and final layer, under results/tables/tsne/")
    gradcam = commands.add_parser("gradcam", parents=[common, stored_runs],
                                  help="Grad-CAM of stored runs that kept weights (run --keep "
                                       "weights), at the layer their method declares (Fig. 7 "
                                       "kind), under results/tables/gradcam/")
    gradcam.add_argument("--clips", type=positive_int, default=8,
                         help="test clips drawn per run, in fold order (default 8)")
    figures = commands.add_parser("figures", parents=[common, stored_runs],
                                  help="curves, t-SNE (Figs. 8/11 kind) and Grad-CAM (Fig. 7 "
                                       "kind) of every stored run that kept what each needs")
    figures.add_argument("--clips", type=positive_int, default=8,
                         help="Grad-CAM: test clips drawn per run (default 8)")
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
    prepare = commands.add_parser("prepare", parents=[common], help="preprocess a task's clips")
    prepare.add_argument("--task", required=True)
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
    plugin_check = commands.add_parser(
        "check-plugin", parents=[common],
        help="check a plugin's methods against the method contract on a fold of the synthetic "
             "default (views, logits, determinism, no held-out labels)")
    plugin_check.add_argument("file", help="the plugin: a .py file or an importable module")
    plugin_check.add_argument("--methods", help="comma-separated methods to check (default: "
                                                "those the plugin registers)")
    plugin_check.add_argument("--budget", type=positive_int, default=2,
                              help="training iterations of each check's fits (default 2)")
    add_parsers(commands, common)
    return parser


def _config(args: argparse.Namespace) -> RunConfig:
    roots = []
    for item in args.data:
        name, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"--data takes NAME=DIR, got {item!r}")
        roots.append((name, folder))
    return RunConfig(results=args.results, data_roots=tuple(roots),
                     default_data_root=args.data_root, plugins=tuple(args.plugin),
                     preprocess=_preprocess(args), device=args.device,
                     workers=args.workers or 1, prepare_workers=args.prepare_workers,
                     threads=getattr(args, "threads", None), keep=getattr(args, "keep", ()),
                     progress=not args.quiet,
                     fold_parallel=_fold_parallel(getattr(args, "fold_parallel", "1")),
                     executor=getattr(args, "executor", "local"),
                     ray_address=getattr(args, "ray_address", None),
                     gpus_per_job=getattr(args, "gpus_per_job", 0.0),
                     compile=getattr(args, "compile", False),
                     channels_last={"on": True, "off": False, None: None}[
                         getattr(args, "channels_last", None)],
                     weights_dirs=tuple(_weights_dir(d) for d in [
                         *getattr(args, "weights_dir", []),
                         *([args.start] if getattr(args, "start", None) else [])]))


def _weights_dir(value: str) -> tuple[str, str]:
    """`NAME=DIR` or `DIR` (named by its folder): a released weights folder and its name."""
    name, sep, folder = value.partition("=")
    return (name, folder) if sep else (Path(value).name, value)


def _fold_parallel(value: str) -> int:
    if value == "auto":
        return 0
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"--fold-parallel takes a number >= 1 or auto, got {value!r}")
    return int(value)


def _preprocess(args: argparse.Namespace) -> PreprocessSettings:
    from mer_bench.datasets.faces import DETECTOR_PRESETS

    preset = DETECTOR_PRESETS[args.detector_preset] if args.detector_preset else {}
    return PreprocessSettings(domains=args.domains, detector=args.detector,
                              detector_weights=args.detector_weights, key_frames=args.key_frames,
                              key_frame_shift=args.key_frame_shift,
                              key_frame_seed=args.key_frame_seed, crop=args.crop,
                              flow_encoding=args.flow_encoding, **preset)


def grid_path(name: str) -> Path:
    """A grid file's path, or the name of a grid shipped in benchmark/grids (e.g. `ablation`)."""
    if Path(name).is_file():
        return Path(name)
    shipped = resources.files("mer_bench.benchmark") / "grids" / f"{Path(name).stem}.toml"
    if shipped.is_file():
        return Path(str(shipped))
    known = sorted(p.name[:-5] for p in (resources.files("mer_bench.benchmark") / "grids").iterdir()
                   if p.name.endswith(".toml"))
    raise ValueError(f"no grid file {name!r}; shipped grids: {', '.join(known)}")


def _grids(args: argparse.Namespace) -> list[Grid]:
    if args.grid or not args.methods:
        from mer_bench.benchmark.paper import paper_grid_names

        names = paper_grid_names(args.grid or QUICK_GRID)
        return [load_grid(grid_path(name), args.profile, args.precision) for name in names]
    weights = [_weights_dir(d)[0] for d in args.weights_dir] or [None]
    if len(weights) > 1:
        raise ValueError("with --methods, give one --weights-dir (a grid may name several)")
    options_free = tuple(MethodSpec.make(name.strip(), budget=args.budget, pretrain=args.pretrain,
                                         pretrain_budget=args.pretrain_budget,
                                         weights=weights[0],
                                         start=_weights_dir(args.start)[0] if args.start else None)
                         for name in args.methods.split(",") if name.strip())
    tasks = tuple(t.strip() for t in (args.tasks or DEFAULT_TASK).split(",") if t.strip())
    seeds = tuple(int(s) for s in args.seeds.split(","))
    return [Grid(options_free, tasks, seeds, args.selection, precision=args.precision or "fp32")]


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


def command_run(args: argparse.Namespace) -> int:
    config = _config(args)
    grids = _grids(args)
    started = time.perf_counter()
    summary = run_grids(grids, config)
    if summary.interrupted:
        print(summary.interruption(), file=sys.stderr)
        _report_quarantined(config)
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
    print(f"{summary.ran} jobs run, {summary.already_done} already done, "
          f"{len(summary.failed)} failed, in {time.perf_counter() - started:.1f} s. "
          f"Tables of every stored run: {', '.join(map(str, paths))}")
    if args.grid and _is_paper_grid(args.grid):
        _paper_tables(args, config, keys)
    _report_quarantined(config)
    return 1 if summary.failed else 0


def _report_quarantined(config: RunConfig) -> None:
    """Names every stored job this command found damaged: moved aside (it runs again), or
    skipped where the store could not be written (a read-only store is only read)."""
    for where, why in config.store.quarantined:
        print(f"quarantined {where.name} (moved to {where}): {why}; its job runs again on "
              "the next run", file=sys.stderr)
    for where, why in config.store.unmoved:
        print(f"damaged, not shown: {where}: {why} (the store is not writable here, so it was "
              "left in place; `store verify --repair` where it is moves it aside)",
              file=sys.stderr)
    config.store.quarantined.clear()
    config.store.unmoved.clear()


def command_curves(args: argparse.Namespace) -> int:
    """One figure per stored run (its folds together) whose jobs kept training curves."""
    from mer_bench.benchmark.figures import curves_figure, save

    config = _config(args)
    runs = _stored_runs(args, config, lambda record: config.store.curves(record.job))
    folder = config.results / "tables" / "curves"
    for key, folds in sorted(runs.items(), key=str):
        title, name = _run_title(key, len(folds))
        print(save(curves_figure(title, folds), folder / f"{name}.png"))
    if not runs:
        print("no stored run has training curves (torch methods' jobs store them)")
    _report_quarantined(config)
    return 0


def _stored_runs(args: argparse.Namespace, config: RunConfig, wanted) -> dict[tuple, list]:
    """Stored jobs grouped by run (label, task, selection, budget, seed, data), filtered by
    --method / --task, each with what `wanted(record)` gives (jobs giving None left out)."""
    runs: dict[tuple, list] = {}
    for record in config.store.records():
        job = record.job
        if (args.method and not job.run_label.startswith(args.method)) or \
                (args.task and job.task != args.task):
            continue
        found = wanted(record)
        if found is not None:
            data = record.info["task"].get("data", "")
            key = (job.run_label, job.task, job.selection, job.budget, job.seed, data)
            runs.setdefault(key, []).append(found)
    return runs


def _run_title(key: tuple, folds: int) -> tuple[str, str]:
    """A run's figure title (its data named, SYNTHETIC where it is) and a file name."""
    import re

    label, task, selection, budget, seed, data = key
    shown = f"{task} ({'SYNTHETIC data' if data == 'synthetic' else data})"
    budget = "default" if budget is None else budget
    return (f"{label}\non {shown}, selection {selection}, budget {budget}, seed {seed}: "
            f"{folds} folds", re.sub(r"[^A-Za-z0-9._=-]+", "_",
                                     f"{label}_{task}_{selection}_{budget}_s{seed}"))


def command_tsne(args: argparse.Namespace) -> int:
    """Each run's kept features, every fold's test clips pooled (each fold's own model)."""
    import numpy as np

    from mer_bench.benchmark.figures import save, tsne_figure
    from mer_bench.benchmark.store import FEATURES

    config = _config(args)

    def kept(record):
        path = config.store.job_dir(record.job) / FEATURES
        if not path.is_file():
            return None
        with np.load(path) as features:
            return dict(features), record.predictions

    runs = _stored_runs(args, config, kept)
    folder = config.results / "tables" / "tsne"
    for key, folds in tqdm(sorted(runs.items(), key=str), desc="t-SNE", unit="run",
                           disable=not config.progress):
        title, name = _run_title(key, len(folds))
        classes = folds[0][1].classes
        labels = np.concatenate([p.labels for _, p in folds])
        for layer in folds[0][0]:
            features = np.concatenate([f[layer] for f, _ in folds])
            figure = tsne_figure(f"t-SNE of the inputs to {layer}, each fold's test clips by "
                                 f"its own model\n{title}", features, labels, classes)
            print(save(figure, folder / f"{name}_{layer}.png"))
    if not runs:
        print("no stored run kept features (run --keep features)")
    _report_quarantined(config)
    return 0


def command_gradcam(args: argparse.Namespace) -> int:
    """Each run's first test clips under the Grad-CAM of their own fold's kept model."""
    import torch
    from safetensors.torch import load_file

    from mer_bench.benchmark.execution import _prepared, _view, job_method
    from mer_bench.benchmark.figures import gradcam_figure, save
    from mer_bench.benchmark.store import WEIGHTS
    from mer_bench.methods.gradcam import grad_cam

    config = _config(args)

    def kept(record):
        path = config.store.job_dir(record.job) / WEIGHTS
        return (record, path) if path.is_file() else None

    runs = _stored_runs(args, config, kept)
    folder, drawn = config.results / "tables" / "gradcam", 0
    for key, jobs in tqdm(sorted(runs.items(), key=str), desc="Grad-CAM", unit="run",
                          disable=not config.progress):
        method = job_method(jobs[0][0].job)
        if method.gradcam_layer() is None:
            print(f"{key[0]}: its method offers no Grad-CAM layer", file=sys.stderr)
            continue
        panels = []
        for record, path in sorted(jobs, key=lambda item: item[0].job.fold):
            job, classes = record.job, record.predictions.classes
            own = config.for_bundles(job)
            keys = [s.clip.key for s in _prepared(job.task, own).data.samples]
            (view,) = method.views
            inputs = _view(job.task, view, own)
            model = method.build_model(len(classes))
            model.load_state_dict(load_file(path))
            for clip, label in zip(record.predictions.clips, record.predictions.labels):
                if len(panels) == args.clips:
                    break
                sample = torch.from_numpy(inputs[keys.index(clip)])
                cam, predicted = grad_cam(model, method.gradcam_layer(), sample)
                panels.append((method.gradcam_image(sample.numpy()), cam,
                               f"{clip}\ntrue {classes[label]}, predicted {classes[predicted]}"))
            if len(panels) == args.clips:
                break
        title, name = _run_title(key, len(jobs))
        print(save(gradcam_figure(f"Grad-CAM at {method.gradcam_layer()}, each clip by its "
                                  f"own fold's model\n{title}", panels),
                   folder / f"{name}.png"))
        drawn += 1
    if not drawn:
        print("no stored run kept weights of a method with a Grad-CAM layer (run --keep "
              "weights)")
    _report_quarantined(config)
    return 0


def command_figures(args: argparse.Namespace) -> int:
    """`curves`, `tsne` and `gradcam` in one: every figure the stored runs can give."""
    return max(command_curves(args), command_tsne(args), command_gradcam(args))


def command_store(args: argparse.Namespace) -> int:
    """`store verify [--repair]`: every damaged entry of the store, by folder and why; with
    --repair, only what was actually moved is reported as moved."""
    config = _config(args)
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


def _is_paper_grid(name: str) -> bool:
    from mer_bench.benchmark.jobs import grid_toml
    from mer_bench.benchmark.paper import paper_grid_names

    return all("table" in grid_toml(grid_path(n)) for n in paper_grid_names(name))


def command_tables(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.diff:
        return _diff_rows(args, config)
    if args.grid:
        return _paper_tables(args, config)
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
    _report_quarantined(config)
    return 0


def _diff_rows(args: argparse.Namespace, config: RunConfig) -> int:
    from mer_bench.benchmark.paper import diff_rows

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


def _paper_tables(args: argparse.Namespace, config: RunConfig,
                  keys: set[str] | None = None) -> int:
    """`keys`: the jobs a run just planned; without them the grids are planned here, so that
    every cell is the stored job of the data as they are now (benchmark/paper.py)."""
    from mer_bench.benchmark.paper import paper_grid_names, write_paper

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
        _report_quarantined(config)
        return 2
    for markdown in shown:
        print(markdown)
    print(f"written: {', '.join(map(str, written))}")
    _report_quarantined(config)
    return 0


def command_list(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.tasks import TASKS
    from mer_bench.datasets import DATASETS
    from mer_bench.methods import METHODS

    config = _config(args)
    if args.what == "methods":
        for name in METHODS.names():
            entry = METHODS.entry(name)
            print(f"{name:24s} {entry.target}" + (f" {entry.kwargs}" if entry.kwargs else ""))
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
    from mer_bench.benchmark.tasks import DROP_EMPTY, build_task, load_task

    task = build_task(name)
    print(f"{name}: {task.description}")
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


def command_prepare(args: argparse.Namespace) -> int:
    config = _config(args)
    workers = args.workers if args.workers is not None else config.prepare_workers
    started = time.perf_counter()
    try:
        prepared = prepare_task(args.task, config, workers, config.progress)
    except KeyboardInterrupt:
        print(f"{args.task}: interrupted; the bundles finished so far are kept, run the same "
              "command again to resume", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started
    report = prepared.report
    clips = report.prepared + report.cached + len(report.failed)
    print(f"{args.task}: {report.summary()}\n{clips} clips in {elapsed:.1f} s "
          f"({clips / max(elapsed, 1e-9):.2f} clips/s, {workers} worker"
          f"{'s' if workers != 1 else ''}; settings {config.preprocess.digest()}, "
          f"domains {config.preprocess.domains})")
    return 1 if report.failed else 0


def command_score(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.scoring import score_file
    from mer_bench.benchmark.tasks import build_task, load_task

    config = _config(args)
    task = build_task(args.task)
    data = load_task(task, {d: config.root_of(d) for d in task.datasets})
    report = score_file(args.predictions, data)
    print("\n".join(report.lines()))
    return 0 if report.scores is not None and not report.missing else 1


def command_check(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.check_sheet import make_check_sheet

    config = _config(args)
    sheet = make_check_sheet(args.task, config, per_class=args.per_class, subject=args.subject,
                             path=args.out, method=args.method)
    print(f"{args.task}: check sheet of {len(sheet.rows)} clips ({len(sheet.failed)} failed to "
          f"prepare) written to {sheet.path}")
    for key, reason in sheet.failed.items():
        print(f"  failed {key}: {reason}")
    return 0


def command_bench(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from mer_bench.benchmark.bench import bench_method, measure, measure_speed
    from mer_bench.methods import FLAGSHIP

    method = bench_method(args.method)
    name = method.paper_name or args.method or FLAGSHIP
    batch = min(method.recipe.batch_size, 32)
    rows = []
    for folds in (int(k) for k in args.folds.split(",") if k.strip()):
        measured = measure(folds, args.steps, args.device, args.method)
        rows += [[r.device, r.folds, r.mode, f"{r.fold_steps_per_second:.2f}"] for r in measured]
        speedup = measured[1].fold_steps_per_second / measured[0].fold_steps_per_second
        rows.append(["", folds, "fold-parallel / sequential", f"{speedup:.2f}x"])
    if rows:
        print(f"{name} training, batch {batch} (random inputs of its shape): fold-steps per "
              "second")
        print(tabulate(rows, headers=["device", "K folds", "mode", "fold-steps/s"],
                       tablefmt="github", disable_numparse=True))
    settings = [s.strip() for s in args.speed.split(",") if s.strip()]
    if settings:
        timed = measure_speed(settings, args.steps, args.device, args.method)
        base = timed[0].milliseconds
        print(f"\n{name}, one fold's training step at batch {batch}, by speed setting "
              f"(speed-up against {timed[0].setting})")
        print(tabulate([[t.device, t.setting, f"{t.milliseconds:.1f}",
                         f"{base / t.milliseconds:.2f}x"] for t in timed],
                       headers=["device", "setting", "ms/step", "speed-up"],
                       tablefmt="github", disable_numparse=True))
    return 0


def command_check_plugin(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from mer_bench.benchmark.contract import check_method, contract_fold
    from mer_bench.methods import METHODS

    before = set(METHODS.names())
    load_plugin(args.file)
    names = ([n.strip() for n in args.methods.split(",") if n.strip()] if args.methods
             else sorted(set(METHODS.names()) - before))
    if not names:
        raise ValueError(f"plugin {args.file} registers no new method; name the ones to check "
                         "with --methods")
    for name in names:
        METHODS.entry(name)  # an unknown name fails here, with suggestions
    fold = contract_fold(DEFAULT_TASK, _config(args))
    checks = [check for name in names for check in check_method(name, fold, args.budget)]
    print(f"method contract on {len(fold.keys)} clips of {DEFAULT_TASK} (synthetic), "
          f"{args.budget} training iterations per fit")
    print(tabulate([[c.method, c.name, "ok" if c.passed else "FAILED", c.detail] for c in checks],
                   headers=["method", "check", "result", "detail"], tablefmt="github",
                   disable_numparse=True))
    failed = [c for c in checks if not c.passed]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed"
          + (f"; failed: {', '.join(f'{c.method}: {c.name}' for c in failed)}" if failed else ""))
    return 1 if failed else 0


def command_report(args: argparse.Namespace) -> int:
    from mer_bench.benchmark.paper_tables import PAPER_GRIDS, PROTOCOL_GRIDS
    from mer_bench.benchmark.report import build_report

    config = _config(args)
    grids = {name: grid_path(name) for name in PAPER_GRIDS + PROTOCOL_GRIDS}
    index = build_report(config.store, args.out or config.results / "report", grids,
                         args.profile, config.progress)
    print(f"report: {index} (open it in a browser; the folder is the whole site)")
    _report_quarantined(config)
    return 0


def command_export(args: argparse.Namespace) -> int:
    from mer_bench.benchmark import cli_models

    return cli_models.command_export(args, _config(args))


def command_predict(args: argparse.Namespace) -> int:
    from mer_bench.benchmark import cli_models

    return cli_models.command_predict(args, _config(args))


COMMANDS = {"run": command_run, "tables": command_tables, "list": command_list,
            "prepare": command_prepare, "check": command_check, "bench": command_bench,
            "store": command_store, "curves": command_curves, "tsne": command_tsne,
            "gradcam": command_gradcam, "export": command_export,
            "report": command_report, "figures": command_figures, "predict": command_predict,
            "score": command_score, "check-plugin": command_check_plugin}


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, every option honoured wherever it stands: before the subcommand or
    after it (a repeatable one from both sides, in order)."""
    args = build_parser().parse_args(argv)
    for name in [key for key in vars(args) if key.endswith(AFTER)]:
        base = name[: -len(AFTER)]
        setattr(args, base, getattr(args, base) + getattr(args, name))
        delattr(args, name)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    if args.command is None:
        args = parse(["run", *(argv if argv is not None else sys.argv[1:])])
        print("MER-Bench quick comparison on the SYNTHETIC default dataset (generated, not "
              "real data).", flush=True)
    if args.annotations:
        os.environ[ANNOTATIONS_ENV] = str(Path(args.annotations).resolve())
    try:
        _check_results(args.results)
        for plugin in args.plugin:
            load_plugin(plugin)
        return COMMANDS[args.command](args)
    except (RegistryError, DatasetError, ClipError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a folder that cannot be written or read, named
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a run reports its own counts (command_run); anything else:
        print(f"interrupted: {args.command} stopped; nothing it finished is lost, run the same "
              "command to resume", file=sys.stderr)
        return 130


def _check_results(results: Path) -> None:
    """`--results` must be a folder (or not exist yet): a file there is named, not used."""
    if results.exists() and not results.is_dir():
        raise ValueError(f"--results {results} is a file, not a results folder: give a folder "
                         "(it is made if it does not exist)")
