"""The options every command shares, what they become (the run's configuration, the
preprocessing settings, the grids), and what every command reports on its way out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.slurm_settings import parse_option as parse_slurm_option
from mer_bench.datasets.preprocess import PreprocessSettings
from mer_bench.datasets.sheets import ANNOTATIONS_ENV


def positive_int(text: str) -> int:
    """An option's whole number of at least 1 (budgets, counts), refused by argparse else."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a whole number of at least 1")
    return value


def slurm_pair(text: str) -> tuple[str, Any]:
    """`--slurm KEY=VALUE`, checked (protocol/slurm_settings.py), refused by argparse else."""
    try:
        return parse_slurm_option(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def keep_list(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in ("weights", "features")]
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: keep weights, features or both")
    return names


def fold_list(text: str) -> tuple[str, ...]:
    """`--folds`: comma-separated fold names or counts, at least one."""
    entries = tuple(e.strip() for e in text.split(",") if e.strip())
    if not entries or any(e.isdigit() and int(e) == 0 for e in entries):
        raise argparse.ArgumentTypeError(f"expected a count (1 or more) or fold names, got "
                                         f"{text!r}")
    return entries


def add_recipe_option(parser: argparse.ArgumentParser, whose: str) -> None:
    parser.add_argument("--recipe", type=recipe_field, action="append", default=[],
                        metavar="KEY=VALUE",
                        help=f"a training recipe field of {whose}: batch_size, lr or "
                             "weight_decay (repeatable; it enters the job key)")


def recipe_field(text: str) -> tuple[str, int | float]:
    """`--recipe KEY=VALUE`: a recipe field and its number (an int where it is written as one)."""
    key, _, value = text.partition("=")
    try:
        number = int(value) if value.strip().lstrip("-").isdigit() else float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY=NUMBER (batch_size=8, lr=1e-4), got "
                                         f"{text!r}") from None
    return key.strip(), number


def domains_count(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text}: temporal domains are 2 or more")
    return value


AFTER = "_after_subcommand"  # where a subcommand keeps its repeatable options (`parse`)


def common_options(subcommand: bool = False) -> argparse.ArgumentParser:
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


def config_of(args: argparse.Namespace) -> RunConfig:
    roots = []
    for item in args.data:
        name, sep, folder = item.partition("=")
        if not sep:
            raise SystemExit(f"--data takes NAME=DIR, got {item!r}")
        roots.append((name, folder))
    return RunConfig(results=args.results, data_roots=tuple(roots),
                     default_data_root=args.data_root, plugins=tuple(args.plugin),
                     preprocess=preprocess_of(args), device=args.device,
                     workers=args.workers or 1, prepare_workers=args.prepare_workers,
                     threads=getattr(args, "threads", None), keep=getattr(args, "keep", ()),
                     progress=not args.quiet,
                     fold_parallel=fold_parallel(getattr(args, "fold_parallel", "1")),
                     executor=getattr(args, "executor", "local"),
                     ray_address=getattr(args, "ray_address", None),
                     slurm=tuple(getattr(args, "slurm", ())),
                     detach=getattr(args, "detach", False),
                     gpus_per_job=getattr(args, "gpus_per_job", 0.0),
                     compile=getattr(args, "compile", False),
                     channels_last={"on": True, "off": False, None: None}[
                         getattr(args, "channels_last", None)],
                     weights_dirs=tuple(weights_dir(d) for d in [
                         *getattr(args, "weights_dir", []),
                         *([args.start] if getattr(args, "start", None) else [])]))


def weights_dir(value: str) -> tuple[str, str]:
    """`NAME=DIR` or `DIR` (named by its folder): a released weights folder and its name."""
    name, sep, folder = value.partition("=")
    return (name, folder) if sep else (Path(value).name, value)


def fold_parallel(value: str) -> int:
    if value == "auto":
        return 0
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"--fold-parallel takes a number >= 1 or auto, got {value!r}")
    return int(value)


def preprocess_of(args: argparse.Namespace) -> PreprocessSettings:
    from mer_bench.datasets.faces import DETECTOR_PRESETS

    preset = DETECTOR_PRESETS[args.detector_preset] if args.detector_preset else {}
    return PreprocessSettings(domains=args.domains, detector=args.detector,
                              detector_weights=args.detector_weights, key_frames=args.key_frames,
                              key_frame_shift=args.key_frame_shift,
                              key_frame_seed=args.key_frame_seed, crop=args.crop,
                              flow_encoding=args.flow_encoding, **preset)


def report_quarantined(config: RunConfig) -> None:
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
