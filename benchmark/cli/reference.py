"""The command-line reference page (docs/cli.md), written from the parser itself so that it
cannot drift from it: `python -m mer_bench.benchmark.cli.reference docs/cli.md` rewrites it,
and a test compares the page with what this prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mer_bench.benchmark.cli import build_parser
from mer_bench.benchmark.cli.options import common_options

HEADER = ("<!-- Written by `python -m mer_bench.benchmark.cli.reference docs/cli.md` from the "
          "parser; do not edit by hand. -->\n")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _form(action: argparse.Action) -> str:
    """How an option is written: its flags and what it takes."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    if action.nargs == 0:
        return ", ".join(f"`{flag}`" for flag in action.option_strings)
    if action.choices:
        takes = "{" + ",".join(map(str, action.choices)) + "}"
    elif isinstance(action.metavar, tuple):
        takes = " ".join(action.metavar)
    else:
        takes = action.metavar or action.dest.upper()
    return ", ".join(f"`{flag} {takes}`" for flag in action.option_strings)


def _rows(actions: list[argparse.Action]) -> list[str]:
    rows = ["| option | what it does |", "|---|---|"]
    for action in actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        rows.append(f"| {_form(action).replace('|', chr(92) + '|')} | {_cell(action.help or '')} |")
    return rows


def reference_markdown() -> str:
    """The page: the options every command takes, then each command with its own options."""
    parser = build_parser()
    shared = {action.dest for action in common_options()._actions}
    lines = [HEADER, "# Command-line reference", "",
             _cell(parser.description or ""), "",
             "`mer-bench COMMAND [options]`; `python -m mer_bench` and `python run_benchmark.py` "
             "are the same command line. With no command it runs the quick comparison on the "
             "synthetic default.", "",
             "## Options every command takes", "",
             "They may stand before or after the command (a repeatable one is taken from both "
             "sides).", "", *_rows(common_options()._actions), ""]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in subparsers._choices_actions}
    for name, command in subparsers.choices.items():
        own = [a for a in command._actions if a.dest not in shared
               and a.dest.removesuffix("_after_subcommand") not in shared]
        lines += [f"## `mer-bench {name}`", "", _cell(helps.get(name) or ""), ""]
        if any(not isinstance(a, argparse._HelpAction) for a in own):
            lines += [*_rows(own), ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    page = reference_markdown()
    if not argv:
        sys.stdout.write(page)
        return 0
    Path(argv[0]).write_text(page)
    print(f"written: {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
