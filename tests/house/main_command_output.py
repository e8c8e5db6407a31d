"""What the README's main command printed, checked against the docs pages that show it.

CI runs the README's first command exactly as written, keeps what it printed, then runs
`python -m tests.house.main_command_output LOG` (`--write` regenerates the pages instead). The
blocks: its table (docs/commands.md `main-table`, which docs/clusters.md's `quick-table`
repeats: that grid under every executor stores the same bits), and the STSTNet fold lines
docs/commands.md quotes (`main-folds`), less their running totals and in fold order: both follow
the order the worker processes finish in.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from tests.house.docs_blocks import check_block, write_block

REPO = Path(__file__).resolve().parents[2]
COMMANDS, CLUSTERS = REPO / "docs" / "commands.md", REPO / "docs" / "clusters.md"
_FOLDS = re.compile(r"^ststnet synthetic-5 seed 0 fold synthetic/sub(0[1-4]|10): ")


def lines(output: str) -> list[str]:
    """The printed lines as a terminal leaves them: a progress bar's redraws (carriage
    returns) keep only what was drawn last."""
    return [line.split("\r")[-1].rstrip() for line in output.splitlines()]


def table(output: str) -> str:
    """From the line that says what the numbers are to the table's last row."""
    printed = lines(output)
    start = next((i for i, line in enumerate(printed) if line.startswith("UF1 and UAR (%)")),
                 None)
    if start is None:
        raise AssertionError("the output holds no table (no line 'UF1 and UAR (%) ...')")
    end = max(i for i, line in enumerate(printed) if line.startswith("|"))
    return "\n".join(printed[start:end + 1]) + "\n"


def fold_lines(output: str) -> str:
    chosen = [line for line in lines(output) if _FOLDS.match(line)]
    if len(chosen) != 5:
        raise AssertionError(f"expected 5 STSTNet fold lines (sub01-04, sub10), found "
                             f"{len(chosen)}")
    return "\n".join(chosen) + "\n"


def per_fold(text: str) -> str:
    """Fold lines less their running totals, in fold order: the folds finish in the order the
    worker processes take them, and "pooled over k of 10 folds so far" is that order's."""
    return "\n".join(sorted(re.sub(r"; pooled over .*$", "", text, flags=re.M).splitlines()))


def blocks(output: str) -> list[tuple[Path, str, str, object]]:
    shown = table(output)
    return [(COMMANDS, "main-table", shown, str), (CLUSTERS, "quick-table", shown, str),
            (COMMANDS, "main-folds", fold_lines(output), per_fold)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="what the main command printed")
    parser.add_argument("--write", action="store_true", help="write it into the pages")
    args = parser.parse_args(argv)
    failed = 0
    for page, name, text, same in blocks(args.log.read_text(errors="replace")):
        if args.write:
            write_block(page, name, text)
            continue
        try:
            check_block(page, name, text, same)
            print(f"{page.relative_to(REPO)}: block {name} is what the main command printed")
        except AssertionError as error:
            print(error, file=sys.stderr)
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
