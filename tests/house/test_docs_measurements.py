"""Every table of measured numbers in docs/ says where it came from: the command that printed
it, the store it needs, the date and the machine (docs/contributing.md: a results page is a
measurement, never a hand-written number)."""

import re

from tests.conftest import REPO

DOCS = REPO / "docs"
FIELDS = ("command:", "store:", "date:", "machine:")
MEASURED = re.compile(r"\|\s*[-+]?\d+\.\d+")  # a cell that opens with a decimal: a printed number


def tables(text: str):
    """(the text since the previous table, the table's body rows) for each Markdown table."""
    before, rows, found = [], [], []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append(line)
            continue
        if rows:
            found.append(("\n".join(before), rows[2:]))
            before, rows = [], []
        before.append(line)
    if rows:
        found.append(("\n".join(before), rows[2:]))
    return found


def test_tables_are_found_with_the_text_before_them():
    text = "intro\n\n> **Measurement** · command: `x`\n\n| a | b |\n|---|---|\n| 1.5 | 2 |\nafter\n"
    [(before, rows)] = tables(text)
    assert "**Measurement**" in before and rows == ["| 1.5 | 2 |"]


def test_every_measured_table_in_the_docs_names_command_store_date_and_machine():
    unlabelled, checked = [], 0
    for page in sorted(DOCS.rglob("*.md")):
        if page.name == "cli.md":  # generated from the parser (tests/house/test_readme.py)
            continue
        for before, rows in tables(page.read_text()):
            if not any(MEASURED.search(row) for row in rows if "reported" not in row):
                continue
            checked += 1
            header = [line for line in before.splitlines() if line.startswith("> **Measurement**")]
            if not header or not all(field in header[-1] for field in FIELDS):
                unlabelled.append(f"{page.relative_to(REPO)}: table starting {rows[0][:60]!r}")
            elif not re.search(r"date: 20\d\d-\d\d-\d\d", header[-1]):
                unlabelled.append(f"{page.relative_to(REPO)}: undated {header[-1][:60]!r}")
    assert checked >= 7 and unlabelled == []


def test_the_versions_a_measurement_names_are_the_pinned_ones():
    """A measurement that says it ran on `constraints.txt` names its versions as pinned there
    now: moving a pin without regenerating the numbers fails here."""
    pinned = dict(line.strip().split("==") for line in
                  (REPO / "constraints.txt").read_text().splitlines()
                  if line.strip() and not line.startswith("#"))
    named = 0
    for page in sorted(DOCS.rglob("*.md")):
        for line in page.read_text().splitlines():
            said = re.search(r"versions: `constraints\.txt` \(([^)]*)\)", line)
            if not line.startswith("> **Measurement**") or not said:
                continue
            for package, version in (part.rsplit(" ", 1) for part in said.group(1).split(", ")):
                named += 1
                assert pinned.get(package) == version, \
                    f"{page.name}: {package} {version}, but constraints.txt pins " \
                    f"{pinned.get(package)}"
    assert named >= 20  # five packages on each of the measurements made with the pins
