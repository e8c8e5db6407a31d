"""Docs output blocks that a command regenerates: a page shows what a command printed in a fenced
block right after a marker line `<!-- output: NAME -->`; a test (or CI, for the long ones)
runs the command and compares. `UPDATE_DOCS=1` writes what it printed into the page instead,
as `UPDATE_GOLDEN=1` does for the golden tables, so a page is regenerated, never edited.

Also a command: `python -m tests.house.docs_blocks PAGE NAME FILE [--write]` compares (or
writes) the block with what FILE holds, `-` for standard input (.ci/run's main-command check).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

MARKER = "<!-- output: {name} -->"


def _pattern(name: str) -> re.Pattern:
    return re.compile(re.escape(MARKER.format(name=name)) + r"\n```(\w*)\n(.*?)```", re.S)


def block(page: Path, name: str) -> str:
    """The text of block NAME on `page`; a page without it fails, naming both."""
    found = _pattern(name).search(Path(page).read_text())
    if found is None:
        raise AssertionError(f"{page}: no block {MARKER.format(name=name)} followed by a "
                             "fenced block")
    return found.group(2)


def write_block(page: Path, name: str, text: str) -> None:
    page = Path(page)
    block(page, name)  # it must exist: writing never invents a block
    source = page.read_text()
    text = text if text.endswith("\n") else text + "\n"
    page.write_text(_pattern(name).sub(
        lambda m: f"{MARKER.format(name=name)}\n```{m.group(1)}\n{text}```", source, count=1))


def check_block(page: Path, name: str, printed: str) -> None:
    """Asserts that block NAME shows `printed`; with UPDATE_DOCS=1 writes it there."""
    printed = printed if printed.endswith("\n") else printed + "\n"
    if os.environ.get("UPDATE_DOCS") == "1":
        write_block(page, name, printed)
    shown = block(page, name)
    if shown != printed:
        diff = "".join(difflib.unified_diff(shown.splitlines(True), printed.splitlines(True),
                                            f"{page} ({name}): shown", "printed now"))
        raise AssertionError(f"{page}'s block {name} is not what the command prints now "
                             f"(UPDATE_DOCS=1 rewrites it):\n{diff}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("name")
    parser.add_argument("printed", help="a file holding what the command printed; - for stdin")
    parser.add_argument("--write", action="store_true", help="write it into the page")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.printed == "-" else Path(args.printed).read_text()
    if args.write:
        write_block(args.page, args.name, text)
        return 0
    try:
        check_block(args.page, args.name, text)
    except AssertionError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.page}: block {args.name} is what the command printed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
