"""Docs output blocks that a command regenerates: a page shows what a command printed in a fenced
block right after a marker line `<!-- output: NAME -->`; a test (or CI, for the long ones)
runs the command and compares. `UPDATE_DOCS=1` writes what it printed into the page instead,
as `UPDATE_GOLDEN=1` does for the golden tables, so a page is regenerated, never edited.
"""

from __future__ import annotations

import difflib
import os
import re
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


def check_block(page: Path, name: str, printed: str, same=lambda text: text) -> None:
    """Asserts that block NAME shows `printed`; with UPDATE_DOCS=1 writes it there. `same`
    maps both to what must agree, where part of an output is this machine's (its seconds)."""
    printed = printed if printed.endswith("\n") else printed + "\n"
    if os.environ.get("UPDATE_DOCS") == "1":
        write_block(page, name, printed)
    shown = block(page, name)
    if same(shown) != same(printed):
        shown, printed = same(shown), same(printed)
        diff = "".join(difflib.unified_diff(shown.splitlines(True), printed.splitlines(True),
                                            f"{page} ({name}): shown", "printed now"))
        raise AssertionError(f"{page}'s block {name} is not what the command prints now "
                             f"(UPDATE_DOCS=1 rewrites it):\n{diff}")
