"""CASME II (Yan et al. 2014) as it ships: `sub01/EP02_01f/img46.jpg` and a coding sheet.

The root is the folder of the subject folders (`CASME2_RAW_selected`, or `Cropped`, whose
frames are named `reg_img46.jpg`), or the folder they unpacked into (the one folder below it
holding subject folders is read, and said). Both coding sheets
load: the 2014 sheet (`CASME2-coding-20140508.xlsx`) and the 2019 re-release
(`CASME2-coding-20190701.xlsx`: an extra `Objective Classes` column, three clips relabelled).
A task names the release whose labels it uses (`release="2014"`); the release is told by the
sheet's columns, not its file name. The sheet is looked for in the root, its parent and
$MER_BENCH_ANNOTATIONS unless given; its hash is part of every job key.

Rules: an apex written as "/" is left missing (tasks exclude such clips); the shared frame
and duplicate rules of `datasets.sheets` apply and are noted.
"""

from __future__ import annotations

from pathlib import Path

from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.sheets import (RowReader, SheetDataset, annotation_folders,
                             find_annotation, read_sheet)

COLUMNS = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion")
RELEASE_2019_COLUMN = "Objective Classes"
RELEASES = ("2014", "2019")
LAYOUT = "ROOT/sub01/EP02_01f/img46.jpg (the CASME II subject folders sub01 ... sub26)"


class CASME2(SheetDataset):
    """Reads the coding sheet into clips; the sheet is found unless given."""

    name = "casme2"
    sheet_glob = "CASME2-coding-*.xls*"
    subject_folder = r"sub\d+"

    def __init__(self, root: str | Path, sheet: str | Path | None = None,
                 release: str | None = None):
        self.root = Path(root)
        if release is not None and release not in RELEASES:
            raise ValueError(f"{self.name}: release {release!r}; choose from {RELEASES}")
        self._settle_root(f"{LAYOUT} and the coding sheet {self.sheet_glob}")
        self.release = release
        self.sheet = Path(sheet) if sheet else self._find_sheet()

    def _find_sheet(self) -> Path:
        found = find_annotation(self.name, "CASME II coding sheet", (self.sheet_glob,),
                                annotation_folders(self.root), LAYOUT)
        by_release = {release_of(path): path for path in reversed(found)}
        wanted = self.release or ("2014" if "2014" in by_release else "2019")
        if wanted not in by_release:
            raise DatasetError(
                f"{self.name}: this task uses the {wanted} CASME II labels, but the coding "
                f"sheet(s) found ({', '.join(map(str, found))}) are the "
                f"{' and '.join(sorted(by_release))} release; add the {wanted} sheet "
                f"(CASME2-coding-{'20140508' if wanted == '2014' else '20190701'}.xlsx)"
            )
        return by_release[wanted]

    def _read(self) -> tuple[list[Clip], list[Note]]:
        sheet = read_sheet(self.sheet, COLUMNS)
        if self.release == "2019" and RELEASE_2019_COLUMN not in sheet.frame.columns:
            raise DatasetError(f"{self.name}: {self.sheet} lacks column {RELEASE_2019_COLUMN!r}"
                               " of the 2019 release that this task asks for")
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
            onset, apex, offset = frames
            reader.add(Clip(self.name, subject, filename, str(cells["Estimated Emotion"] or ""),
                            onset, apex, offset,
                            str(self.root / subject / filename / self._frame_name()), row))
        clips, notes = reader.finish()
        self._require_some(sorted({self.root / c.subject for c in clips}), LAYOUT)
        return clips, notes


    def _frame_name(self) -> str:
        """`img46.jpg` (CASME2_RAW_selected), or `reg_img46.jpg` where the root is CASME II's
        `Cropped/` (its cropped faces), as the first clip folder found shows."""
        if getattr(self, "_frames", None) is None:
            first = next((clip for subject in sorted(self.root.glob("sub*"))
                          for clip in sorted(subject.iterdir()) if clip.is_dir()), None)
            cropped = first is not None and any(first.glob("reg_img*.jpg")) and \
                not any(first.glob("img*.jpg"))
            self._frames = "reg_img{n}.jpg" if cropped else "img{n}.jpg"
        return self._frames


def _subject(value: object) -> str | None:
    """'01', 1, 1.0 or 'sub01' -> 'sub01' (the subject folder's name)."""
    text = str(value).strip().lower().removeprefix("sub")
    try:
        number = float(text)
    except ValueError:
        return None
    return f"sub{int(number):02d}" if number == int(number) else None


def release_of(path: Path) -> str:
    """'2019' when the sheet has the 2019 re-release's Objective Classes column, else '2014'."""
    sheet = read_sheet(path, COLUMNS)
    return "2019" if RELEASE_2019_COLUMN in sheet.frame.columns else "2014"
