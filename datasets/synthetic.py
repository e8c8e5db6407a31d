"""The embedded default dataset: synthetic, generated on first use, read as CASME II.

It is not real data and every table that shows its numbers says so. Generation is
deterministic (seeded) and cached, so the same machine twice gives the same frames.
"""

from __future__ import annotations

from pathlib import Path

from mer_bench.datasets.casme2 import CASME2
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.synthetic_frames import SHEET_NAME, SyntheticSpec, generate


class Synthetic(CASME2):
    """Generates the CASME II-layout tree into `root` if absent, then reads it like CASME II."""

    synthetic = True

    def __init__(self, root: str | Path, name: str = "synthetic", **spec: object):
        self.name = name
        try:
            generate(Path(root), SyntheticSpec(**spec))
        except FileExistsError as error:
            raise DatasetError(f"{name}: {error}") from error
        super().__init__(root, sheet=Path(root) / SHEET_NAME)
