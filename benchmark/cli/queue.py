"""`status` and `cancel`: follow and stop the SLURM arrays a detached run submitted from this
results folder (execution/slurm.py), from the store and the queue."""

from __future__ import annotations

import argparse
import sys

from mer_bench.benchmark.cli.options import config_of
from mer_bench.benchmark.execution.slurm import cancel_live, follow


def add_parsers(commands, common: argparse.ArgumentParser) -> dict:
    commands.add_parser("status", parents=[common],
                        help="where the jobs of this results folder's SLURM arrays are: "
                             "stored, queued, running or failed (a failure is recorded, so "
                             "the next run takes it again)")
    commands.add_parser("cancel", parents=[common],
                        help="cancel this results folder's SLURM arrays still queued or "
                             "running (what they stored stays stored)")
    return {"status": command_status, "cancel": command_cancel}


def command_status(args: argparse.Namespace) -> int:
    config = config_of(args)
    try:
        statuses = follow(config.results, config.store)
    except RuntimeError as error:  # sacct absent or failing: said, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not statuses:
        print(f"no SLURM submissions from {config.results} (run --executor slurm --detach)")
        return 0
    for status in statuses:
        submission = status.submission
        counts = ", ".join(f"{n} {what}" for what, n in status.counts.items()
                           if n or what != "resubmitted")
        print(f"SLURM array {submission.array} ({len(submission.elements)} elements, "
              f"{submission.folder}): {counts}")
        for reason in status.failures:
            print(f"  {reason}")
    failed = sum(s.counts["failed"] for s in statuses)
    if failed:
        print(f"{failed} jobs failed: run the same command again to take them (and every job "
              "not stored) again")
    return 0


def command_cancel(args: argparse.Namespace) -> int:
    config = config_of(args)
    try:
        cancelled = cancel_live(config.results)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not cancelled:
        print(f"no SLURM array from {config.results} is queued or running")
        return 0
    print(f"cancelled SLURM arrays {', '.join(cancelled)}; what they stored stays stored; "
          "`mer-bench status` records the rest as failed, and the next run takes them again")
    return 0
