"""The embedded default dataset: synthetic, generated on first use, read as CASME II.

It is not real data and every table that shows its numbers says so. Generation is
deterministic (seeded, with operations exact on every machine) and cached, so every machine
gives the same frames (tests/datasets/test_synthetic_digest.py).
"""

from __future__ import annotations

from pathlib import Path

from mer_bench.datasets.casme2 import CASME2
from mer_bench.datasets.clip import Clip
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.synthetic_frames import (MARKER_NAME, SHEET_NAME, SyntheticSpec, generate,
                                                 layout)


class PlannedSynthetic:
    """What a synthetic set will hold, from its spec alone, with nothing generated or written:
    its clips as the CASME II adapter will read them once the set is made (every generated
    clip is read: tests/datasets/test_synthetic_frames.py). A plan counts a task's folds and
    clips from it before the first run (`load_task(..., planned=True)`)."""

    synthetic = True

    def __init__(self, root: str | Path, name: str = "synthetic", **spec: object):
        self.name, self.root, self.spec = name, Path(root), SyntheticSpec(**spec)

    def clips(self) -> list[Clip]:
        return [Clip(self.name, f"sub{row.subject:02d}", row.filename, row.emotion, row.onset,
                     row.apex, row.offset,
                     str(self.root / f"sub{row.subject:02d}" / row.filename / "img{n}.jpg"),
                     number)
                for number, row in enumerate(layout(self.spec), start=2)]  # sheet rows

    def notes(self) -> list:
        return []

    def annotation_version(self) -> str:
        return ""


class Synthetic(CASME2):
    """Generates the CASME II-layout tree into `root` if absent, then reads it like CASME II.
    Where this generated it, `root_note` names the folder (a run prints it), so the user
    learns where the frames went."""

    synthetic = True
    planned = PlannedSynthetic  # what it will hold, for a plan (load_task's planned=True)

    def __init__(self, root: str | Path, name: str = "synthetic", **spec: object):
        self.name = name
        before = _marker(Path(root))
        try:
            generate(Path(root), SyntheticSpec(**spec))
        except FileExistsError as error:
            raise DatasetError(f"{name}: {error}") from error
        super().__init__(root, sheet=Path(root) / SHEET_NAME)
        if _marker(Path(root)) != before:  # generate writes its marker last, only when it writes
            self.root_note = (f"{name}: generated the SYNTHETIC dataset (not real data) in "
                              f"{root}")


def _marker(root: Path) -> str | None:
    try:
        return (root / MARKER_NAME).read_text()
    except OSError:
        return None
