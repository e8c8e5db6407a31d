"""SAMM (Davison et al. 2018) as it ships: `006/006_1_2/006_05562.jpg` and its FACS sheet.

The root is the folder of the subject folders (subject numbers zero-padded to 3). The sheet
`SAMM_Micro_FACS_Codes_v2.xlsx` (sheet `MICRO_ONLY`; its header is on row 14, below notes) is
looked for in the root, its parent and $MER_BENCH_ANNOTATIONS unless given. The shared frame
and duplicate rules of `datasets.sheets` apply and are noted.
"""

from __future__ import annotations

from pathlib import Path

from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.sheets import (RowReader, SheetDataset, annotation_folders,
                             find_annotation, read_sheet)

COLUMNS = ("Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
           "Estimated Emotion")
SHEET_NAME = "MICRO_ONLY"
LAYOUT = "ROOT/006/006_1_2/006_05562.jpg (the SAMM subject folders 006 ... 037)"


class SAMM(SheetDataset):
    name = "samm"
    subject_folder = r"\d{3}"
    sheet_glob = "SAMM_Micro_FACS_Codes*.xls*"

    def __init__(self, root: str | Path, sheet: str | Path | None = None,
                 sheet_name: str | None = None):
        self.root = Path(root)
        self._settle_root(f"{LAYOUT} and the sheet {self.sheet_glob}")
        self.sheet = Path(sheet) if sheet else find_annotation(
            self.name, "SAMM FACS sheet", (self.sheet_glob,), annotation_folders(self.root),
            LAYOUT)[-1]
        self.sheet_name = sheet_name

    def _read(self) -> tuple[list[Clip], list[Note]]:
        sheet = read_sheet(self.sheet, COLUMNS, sheet_name=self.sheet_name, prefer=SHEET_NAME)
        reader = RowReader(sheet)
        for row, cells in sheet.rows():
            filename = str(cells["Filename"])
            subject = reader.subject(self.name, row, cells, _subject)
            if subject is None:
                continue
            key = f"{self.name}/{subject}/{filename}"
            frames = reader.frames(key, row, cells["Onset Frame"], cells["Apex Frame"],
                                   cells["Offset Frame"])
            if frames is None:
                continue
            onset, apex, offset = frames
            template = self.root / subject / filename / f"{subject}_{{n:05d}}.jpg"
            reader.add(Clip(self.name, subject, filename, str(cells["Estimated Emotion"] or ""),
                            onset, apex, offset, str(template), row))
        clips, notes = reader.finish()
        self._require_some(sorted({self.root / c.subject for c in clips}), LAYOUT)
        return clips, notes


def _subject(value: object) -> str | None:
    """'006', 6 or 6.0 -> '006' (the subject folder's name)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return f"{int(number):03d}" if number == int(number) else None
