"""MMEW (Ben et al. 2021) as it ships: `Micro_Expression/<emotion>/S01-01-001/15.jpg`.

The root is the folder that holds `Micro_Expression/`. The micro-expression sheet (columns
Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion,
remarks; .xlsx or .csv, a file named MMEW*) is looked for in the root, its parent and
$MER_BENCH_ANNOTATIONS unless given; in a workbook the first sheet with those columns is read
(one whose name contains "micro" first). A clip's folder is under its emotion's folder, found
case-insensitively. The shared frame and duplicate rules of `datasets.sheets` apply.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.sheets import (RowReader, SheetDataset, annotation_folders,
                             find_annotation, read_sheet)

COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion")
FRAMES_FOLDER = "Micro_Expression"
FOLDER_CASE = "emotion folder named in another case than the sheet's emotion"
LAYOUT = f"ROOT/{FRAMES_FOLDER}/<emotion>/S01-01-001/15.jpg"


class MMEW(SheetDataset):
    name = "mmew"
    sheet_globs = ("MMEW*.xls*", "MMEW*.csv")

    def __init__(self, root: str | Path, sheet: str | Path | None = None,
                 sheet_name: str | None = None):
        self.root = Path(root)
        self._require_root(f"{LAYOUT} and the micro-expression sheet {self.sheet_globs[0]}")
        if not (self.root / FRAMES_FOLDER).is_dir():
            raise DatasetError(f"{self.name}: no folder {FRAMES_FOLDER} in the data root "
                               f"{self.root}; expected {LAYOUT}")
        self.sheet = Path(sheet) if sheet else find_annotation(
            self.name, "MMEW micro-expression sheet", self.sheet_globs,
            annotation_folders(self.root), LAYOUT)[0]
        self.sheet_name = sheet_name

    def _read(self) -> tuple[list[Clip], list[Note]]:
        sheet = read_sheet(self.sheet, COLUMNS, sheet_name=self.sheet_name, prefer="micro")
        folders = {entry.name.lower(): entry.name
                   for entry in (self.root / FRAMES_FOLDER).iterdir() if entry.is_dir()}
        reader = RowReader(sheet)
        for row, cells in sheet.rows():
            filename = str(cells["Filename"])
            subject = reader.subject(self.name, row, cells, _subject)
            if subject is None:
                continue
            key = f"{self.name}/{subject}/{filename}"
            frames = reader.frames(key, row, cells["OnsetFrame"], cells["ApexFrame"],
                                   cells["OffsetFrame"])
            if frames is None:
                continue
            emotion = str(cells["Estimated Emotion"] or "")
            folder = folders.get(emotion.lower(), emotion)
            extra = [Note(key, "repaired", FOLDER_CASE, f"{emotion!r} -> folder {folder!r}")] \
                if folder != emotion else []
            template = self.root / FRAMES_FOLDER / folder / filename / "{n}.jpg"
            reader.add(Clip(self.name, subject, filename, emotion, *frames, str(template), row),
                       extra)
        return reader.finish()


def _subject(value: object) -> str | None:
    """1, '1', '01' or 'S01' -> 'S01' (as the clip names write it)."""
    match = re.fullmatch(r"s?0*(\d+)(\.0+)?", str(value).strip().lower())
    return f"S{int(match.group(1)):02d}" if match else None
