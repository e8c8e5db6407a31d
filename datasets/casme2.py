"""CASME II (Yan et al. 2014) as it ships: `sub01/EP02_01f/img46.jpg` and a coding sheet.

Both the 2014 coding sheet and the 2019 re-release (an extra `Objective Classes` column and
three relabelled clips) load; which file is used is the adapter's `sheet` argument, and its
hash is part of every job key.
"""

from __future__ import annotations

from pathlib import Path

from datasets.clip import Clip
from datasets.errors import DatasetError
from datasets.sheets import file_digest, frame_number, read_sheet

COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion")


class CASME2:
    """Reads the coding sheet into clips; the sheet is found in the root unless given."""

    name = "casme2"
    synthetic = False
    sheet_glob = "CASME2-coding-*.xlsx"

    def __init__(self, root: str | Path, sheet: str | Path | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.name}: data root {self.root} is not a folder; expected the CASME II "
                f"subject folders (sub01, sub02, ...) and the coding sheet {self.sheet_glob}"
            )
        self.sheet = Path(sheet) if sheet else self._find_sheet()

    def _find_sheet(self) -> Path:
        for folder in (self.root, self.root.parent):
            found = sorted(folder.glob(self.sheet_glob))
            if found:
                return found[-1]
        raise DatasetError(
            f"{self.name}: no coding sheet matching {self.sheet_glob} in {self.root} or its "
            "parent; pass the sheet explicitly"
        )

    def annotation_version(self) -> str:
        return file_digest(self.sheet)

    def clips(self) -> list[Clip]:
        sheet = read_sheet(self.sheet, COLUMNS)
        clips = []
        for index, row in sheet.iterrows():
            row_number = int(index) + 2  # 1-based, after the header row, as a spreadsheet shows
            subject = f"sub{int(row['Subject']):02d}"
            filename = str(row["Filename"])
            onset, offset = frame_number(row["OnsetFrame"]), frame_number(row["OffsetFrame"])
            if onset is None or offset is None:
                raise DatasetError(
                    f"{self.name}: {self.sheet} row {row_number} ({subject} {filename}): onset "
                    f"and offset must be frame numbers, got {row['OnsetFrame']!r}, "
                    f"{row['OffsetFrame']!r}"
                )
            clips.append(
                Clip(
                    dataset=self.name,
                    subject=subject,
                    clip=filename,
                    emotion=str(row["Estimated Emotion"]),
                    onset=onset,
                    apex=frame_number(row["ApexFrame"]),
                    offset=offset,
                    frame_template=str(self.root / subject / filename / "img{n}.jpg"),
                    row=row_number,
                )
            )
        return clips
