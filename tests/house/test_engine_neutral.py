"""The engine (benchmark/) knows no particular method, view, dataset or task: it asks what
they declare. Read from its source, every sub-package: no registered name in its code
(docstrings and comments may give examples). How its modules import each other:
test_layout.py."""

import io
import re
import tokenize
from pathlib import Path

from mer_bench.benchmark.protocol.tasks import TASKS
from mer_bench.datasets import DATASETS, VIEWS
from mer_bench.methods import METHODS
from tests.conftest import REPO

ENGINE = sorted((REPO / "benchmark").rglob("*.py"))
# Words that are registered names and also the engine's own vocabulary: the kind of data
# every table labels ("synthetic"), and a preprocessed bundle's keys ("faces", "flows").
VOCABULARY = {"synthetic", "faces", "flows"}
WORD = re.compile(r"[A-Za-z0-9_.\-]+")


def registered_names() -> set[str]:
    names = set(METHODS.names()) | set(DATASETS.names()) | set(VIEWS.names()) | set(TASKS.names())
    families = {name.split(".")[0] for name in METHODS.names()}  # skd_tstsan of skd_tstsan.mag
    return (names | families) - VOCABULARY


def code_tokens(source: str):
    """(line, kind, text) of every identifier and string literal, docstrings left out."""
    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING and previous not in (
                tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            yield token.start[0], "string", token.string
        elif token.type == tokenize.NAME:
            yield token.start[0], "name", token.string
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type


def named_in(path: Path, names: set[str]) -> list[str]:
    return [f"{path.relative_to(path.parents[1]) if path.parent.name != 'benchmark' else path.name}:{line} {kind} {text[:50]}"
            for line, kind, text in code_tokens(path.read_text())
            if (set(WORD.findall(text)) if kind == "string" else {text}) & names]


def test_the_engine_names_no_registered_method_view_dataset_or_task():
    names = registered_names()
    assert {"skd_tstsan", "ststnet", "casme2", "composite-3", "skd_tstsan_38"} <= names
    assert len(ENGINE) > 15
    assert [hit for path in ENGINE for hit in named_in(path, names)] == []


def test_the_check_sees_a_name_in_code_but_not_in_a_docstring(tmp_path):
    """The reader itself: a name in a string or an identifier is found, in a docstring not."""
    sample = tmp_path / "sample.py"
    sample.write_text('"""Uses skd_tstsan, e.g."""\n\ndef f():\n    """ststnet."""\n'
                      '    return build("skd_tstsan"), casme2\n')
    assert [hit.split()[1] for hit in named_in(sample, registered_names())] == ["string", "name"]
