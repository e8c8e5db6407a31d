"""SMIC-HS (Li et al. 2013) as it ships: `HS/s1/micro/negative/s1_ne_01/image106641.bmp`.

SMIC has no annotation sheet: the emotion is the folder a clip sits in (negative, positive,
surprise), the onset and offset are its first and last frame. The root is the folder holding
`HS/` (or `HS/` itself). Apex frames come from the apex list `smic_apex.csv` (columns subject,
clip, apex_frame, ...; the list the paper uses), matched to a clip by its name (numbers
compared without padding: `s01_ne_01` is `s1_ne_01`) and to a frame by its number. A clip
the list lacks, or whose listed apex is none of its frames, falls back to its middle frame;
every fallback is noted. The list is looked for in the root, its parent and
$MER_BENCH_ANNOTATIONS unless given.

This adapter lists clip folders (there is no sheet to read them from); frame files are named
`<prefix><number>.<bmp|jpg|png>`.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.sheets import (SheetDataset, annotation_folders, file_digest,
                                       find_annotation, frame_number, name_key, read_sheet)

APEX_COLUMNS = ("clip", "apex_frame")
NOT_IN_APEX_LIST = "not in the apex list: apex = middle frame"
APEX_NOT_A_FRAME = "listed apex is none of the clip's frames: apex = middle frame"
NO_FRAMES = "clip folder holds no frame images"
MIXED_NAMES = "frame files follow more than one naming pattern: the most common one read"
FRAME_NAME = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)\.(?P<ext>bmp|jpg|jpeg|png)$",
                        re.IGNORECASE)
LAYOUT = "ROOT/HS/s1/micro/negative/s1_ne_01/*.bmp"


class SMIC(SheetDataset):
    name = "smic"
    apex_glob = "smic_apex*.csv"

    def __init__(self, root: str | Path, apex_list: str | Path | None = None):
        self.root = Path(root)
        self._require_root(LAYOUT)
        self.hs = self.root / "HS" if (self.root / "HS").is_dir() else self.root
        if not self._subject_folders():
            raise DatasetError(
                f"{self.name}: no subject folders (s1, s2, ... holding micro/) in "
                f"{self.root} or {self.root / 'HS'}; expected {LAYOUT}")
        self.apex_list = Path(apex_list) if apex_list else find_annotation(
            self.name, "SMIC apex list", (self.apex_glob,), annotation_folders(self.root),
            LAYOUT)[0]

    def _subject_folders(self) -> list[Path]:
        return sorted((p for p in self.hs.iterdir()
                       if p.is_dir() and re.fullmatch(r"s\d+", p.name, re.I)
                       and (p / "micro").is_dir()),
                      key=lambda p: int(p.name[1:]))

    def annotation_version(self) -> str:
        return file_digest(self.apex_list)

    def _apexes(self) -> dict[str, tuple[int | None, str]]:
        """Clip name key -> (apex frame, where in the list)."""
        sheet = read_sheet(self.apex_list, APEX_COLUMNS)
        apexes: dict[str, tuple[int | None, str]] = {}
        for row, cells in sheet.rows():
            key = name_key(cells["clip"])
            if key in apexes:
                raise DatasetError(f"{self.name}: {sheet.where(row)} lists clip {cells['clip']!r}"
                                   f" again (first at {apexes[key][1]})")
            apexes[key] = (frame_number(cells["apex_frame"]), sheet.where(row))
        return apexes

    def _read(self) -> tuple[list[Clip], list[Note]]:
        apexes = self._apexes()
        clips, notes = [], []
        for subject_folder in self._subject_folders():
            subject = subject_folder.name
            for emotion_folder in sorted(p for p in (subject_folder / "micro").iterdir()
                                         if p.is_dir()):
                for folder in sorted(p for p in emotion_folder.iterdir() if p.is_dir()):
                    key = f"{self.name}/{subject}/{folder.name}"
                    frames, template, mixed = _frames(folder)
                    if not frames:
                        notes.append(Note(key, "dropped", NO_FRAMES, str(folder)))
                        continue
                    if mixed:
                        notes.append(Note(key, "repaired", MIXED_NAMES, str(folder)))
                    middle = frames[len(frames) // 2]
                    listed, where = apexes.get(name_key(folder.name), (None, ""))
                    apex = listed
                    if not where:
                        notes.append(Note(key, "fell back", NOT_IN_APEX_LIST,
                                          f"{self.apex_list.name} lacks {folder.name}; "
                                          f"apex -> {middle}"))
                        apex = middle
                    elif listed not in frames:
                        notes.append(Note(key, "fell back", APEX_NOT_A_FRAME,
                                          f"{where}: apex {listed} not among frames "
                                          f"{frames[0]}..{frames[-1]}; apex -> {middle}"))
                        apex = middle
                    clips.append(Clip(self.name, subject, folder.name, emotion_folder.name,
                                      frames[0], apex, frames[-1], template))
        return clips, notes


def _frames(folder: Path) -> tuple[list[int], str, bool]:
    """The frame numbers of a clip folder (sorted), the template of their names, and whether
    files of another naming pattern were left out."""
    patterns: dict[tuple[str, str], list[str]] = {}
    for entry in folder.iterdir():
        match = FRAME_NAME.match(entry.name)
        if match and entry.is_file():
            patterns.setdefault((match["prefix"], match["ext"]), []).append(match["number"])
    if not patterns:
        return [], "", False
    (prefix, ext), digits = max(patterns.items(), key=lambda item: len(item[1]))
    widths = {len(d) for d in digits}
    padded = len(widths) == 1 and any(d.startswith("0") and len(d) > 1 for d in digits)
    number = f"{{n:0{widths.pop()}d}}" if padded else "{n}"
    template = str(folder / f"{prefix.replace('{', '{{').replace('}', '}}')}{number}.{ext}")
    return sorted(int(d) for d in digits), template, len(patterns) > 1
