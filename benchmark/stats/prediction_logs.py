"""Per-clip prediction logs as MER releases publish them (STSTNet's `STSTNet_logfile.txt`,
CapsuleNet's `result_log.csv`): a line `<dataset> <subject>` opens each subject's block, then
one line `<clip> <true class> <predicted class>` per clip, classes as indices. `score` reads
them as they are shipped; nothing has to be converted by hand first.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def looks_like_log(path: Path) -> bool:
    """Whether the file's first non-blank line is a `<dataset> <subject>` header (two words,
    no comma), as a log's is and a CSV's header is not."""
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if line.strip():
                return "," not in line and len(line.split()) == 2
    return False


def read_log(path: Path) -> pd.DataFrame:
    """The log's clips as (dataset, subject, clip, label, predicted) strings, one row per
    clip line; a line that is neither a header nor a clip, or a clip before any header, is
    refused with its line number."""
    rows, header = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 2:
            header = parts
        elif len(parts) == 3 and header is not None:
            rows.append((*header, *parts))
        else:
            expected = ("a `<dataset> <subject>` header first" if header is None and
                        len(parts) == 3 else "`<dataset> <subject>` or `<clip> <true> "
                                                 "<predicted>`")
            raise ValueError(f"prediction log {path} line {number}: {line.strip()!r}; expected "
                             f"{expected}")
    if not rows:
        raise ValueError(f"prediction log {path}: no clip lines (`<clip> <true> <predicted>` "
                         "under a `<dataset> <subject>` header)")
    return pd.DataFrame(rows, columns=["dataset", "subject", "clip", "label", "predicted"])
