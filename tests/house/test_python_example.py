"""The Python example of docs/python.md runs as written and prints what the page shows
(UPDATE_DOCS=1 writes what it printed into the page)."""

from __future__ import annotations

import contextlib
import io
import os
import re

from tests.conftest import REPO
from tests.house.docs_blocks import check_block

PAGE = REPO / "docs" / "python.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_python_page_example_prints_what_the_page_shows(results):
    code, = _blocks("python")
    printed = io.StringIO()
    cwd = os.getcwd()
    os.chdir(results.parent)  # "results": the prepared synthetic default, store empty
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, str(PAGE), "exec"), {})
    finally:
        os.chdir(cwd)
    check_block(PAGE, "python-example", printed.getvalue())
