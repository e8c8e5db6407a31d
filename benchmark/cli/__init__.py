"""The command line: run grids, regenerate tables, list what is registered, prepare data,
draw check sheets. With no arguments it runs the quick comparison on the synthetic default and
prints the table.

One module per group of commands, each adding its own parsers and naming its commands; the
options they all take are in options.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mer_bench.benchmark.cli import data, figures, models, queue, results, running, tools
from mer_bench.benchmark.cli.options import AFTER, common_options
from mer_bench.benchmark.protocol.registry import RegistryError, load_plugin
from mer_bench.datasets.errors import ClipError, DatasetError
from mer_bench.datasets.sheets import ANNOTATIONS_ENV

GROUPS = (running, queue, results, data, tools, figures, models)  # in the order `--help` lists them


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser; each carries its command's function (`handler`)."""
    parser = argparse.ArgumentParser(prog="mer-bench", description=__doc__.split("\n\n")[0],
                                     parents=[common_options()])
    common = common_options(subcommand=True)
    subparsers = parser.add_subparsers(dest="command")
    for group in GROUPS:
        for name, handler in group.add_parsers(subparsers, common).items():
            subparsers.choices[name].set_defaults(handler=handler)
    return parser


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
        # One thread a job, a worker process a core (up to 4): torch's sums split by thread
        # count, so the table the docs show is the same bits on any machine whatever its
        # cores, and no slower for it (a later --threads or --workers overrides).
        workers = str(min(4, os.cpu_count() or 1))
        args = parse(["run", "--threads", "1", "--workers", workers,
                      *(argv if argv is not None else sys.argv[1:])])
        print("MER-Bench quick comparison on the SYNTHETIC default dataset (generated, not "
              "real data).", flush=True)
    if args.annotations:
        os.environ[ANNOTATIONS_ENV] = str(Path(args.annotations).resolve())
    try:
        _check_results(args.results)
        for plugin in args.plugin:
            load_plugin(plugin)
        return args.handler(args)
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
