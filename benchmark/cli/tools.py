"""`bench` (a torch method's training throughput here) and `check-plugin` (a plugin's methods
against the method contract)."""

from __future__ import annotations

import argparse
import sys

from mer_bench.benchmark.cli.options import config_of, positive_int
from mer_bench.benchmark.protocol.registry import load_plugin
from mer_bench.datasets.tasks import DEFAULT_TASK


def add_parsers(commands, common: argparse.ArgumentParser) -> dict:
    bench = commands.add_parser("bench", parents=[common],
                                help="a torch method's training throughput here: sequential "
                                     "vs fold-parallel, and by speed setting")
    bench.add_argument("--method", help="the method to time (default: the flagship, "
                                        "methods.FLAGSHIP)")
    bench.add_argument("--folds", default="1,4,8", help="comma-separated K (default 1,4,8)")
    bench.add_argument("--steps", type=int, default=3, help="timed steps per fold (default 3)")
    bench.add_argument("--speed",
                       help="comma-separated speed settings to time one fold's step under "
                            "(fp32, fp32 contiguous, bf16, bf16 contiguous, fp32 compile, "
                            "bf16 compile; default fp32,fp32 contiguous,bf16, bf16 left out "
                            "on a CPU without native bf16, where it is emulated: compiling "
                            "takes minutes on a CPU); empty for none")
    plugin_check = commands.add_parser(
        "check-plugin", parents=[common],
        help="check a plugin's methods against the method contract on a fold of the synthetic "
             "default (views, logits, determinism, no held-out labels)")
    plugin_check.add_argument("file", help="the plugin: a .py file or an importable module")
    plugin_check.add_argument("--methods", help="comma-separated methods to check (default: "
                                                "those the plugin registers)")
    plugin_check.add_argument("--budget", type=positive_int, default=2,
                              help="training iterations of each check's fits (default 2)")
    return {"bench": command_bench, "check-plugin": command_check_plugin}


def command_bench(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from mer_bench.benchmark.tools.bench import (bench_method, measure, measure_speed,
                                                 speed_settings)
    from mer_bench.methods import FLAGSHIP

    method = bench_method(args.method)
    name = method.paper_name or args.method or FLAGSHIP
    batch = min(method.recipe.batch_size, 32)

    def say(line: str) -> None:  # progress to stderr, the tables alone on stdout
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    settings, note = speed_settings(args.speed, args.device)
    if note:  # said even --quiet: what is timed, and what is not
        print(note, file=sys.stderr, flush=True)
    rows = []
    for folds in (int(k) for k in args.folds.split(",") if k.strip()):
        measured = measure(folds, args.steps, args.device, args.method, say)
        rows += [[r.device, r.folds, r.mode, f"{r.fold_steps_per_second:.2f}"] for r in measured]
        speedup = measured[1].fold_steps_per_second / measured[0].fold_steps_per_second
        rows.append(["", folds, "fold-parallel / sequential", f"{speedup:.2f}x"])
    if rows:
        print(f"{name} training, batch {batch} (random inputs of its shape): fold-steps per "
              "second")
        print(tabulate(rows, headers=["device", "K folds", "mode", "fold-steps/s"],
                       tablefmt="github", disable_numparse=True))
    if settings:
        timed = measure_speed(settings, args.steps, args.device, args.method, say)
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

    from mer_bench.benchmark.tools.contract import check_method, contract_fold
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
    fold = contract_fold(DEFAULT_TASK, config_of(args))
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
