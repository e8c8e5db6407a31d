"""CAS(ME)^3 part A (Li et al. 2023) as it ships: `spNO.1/b/color/175.jpg` and its label sheet.

The root is the folder of the subject folders (`spNO.1`, ...). The sheet
`cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx` (sheet `label`: Subject, Filename, Onset, Apex,
Offset, AU, Objective class, emotion) is looked for in the root, its parent and
$MER_BENCH_ANNOTATIONS unless given.

Several micro-expressions share one video (Filename is the video's letter), so a clip's id is
`<video>_<onset as written>`, e.g. `b_166`. A video letter written in upper case ('J') is read
from the lower-case folder when only that exists. The shared frame rules of `datasets.sheets`
apply (the sheet has apexes before onsets, zero frames, offsets of 0) and are noted.
"""

from __future__ import annotations

from pathlib import Path

from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.sheets import (RowReader, SheetDataset, annotation_folders,
                             find_annotation, frame_number, read_sheet)

COLUMNS = ("Subject", "Filename", "Onset", "Apex", "Offset", "emotion")
SHEET_NAME = "label"
FOLDER_CASE = "video folder named in another case than the sheet's Filename"
LAYOUT = "ROOT/spNO.1/b/color/175.jpg (the part A subject folders spNO.1 ...)"


class CASME3(SheetDataset):
    name = "casme3"
    subject_folder = r"spNO\.\d+"
    sheet_glob = "cas(me)3_part_A_ME_label*.xls*"

    def __init__(self, root: str | Path, sheet: str | Path | None = None,
                 sheet_name: str | None = None):
        self.root = Path(root)
        self._settle_root(f"{LAYOUT} and the label sheet {self.sheet_glob}")
        self.sheet = Path(sheet) if sheet else find_annotation(
            self.name, "CAS(ME)^3 part A label sheet", (self.sheet_glob,),
            annotation_folders(self.root), LAYOUT)[-1]
        self.sheet_name = sheet_name

    def _read(self) -> tuple[list[Clip], list[Note]]:
        sheet = read_sheet(self.sheet, COLUMNS, sheet_name=self.sheet_name, prefer=SHEET_NAME)
        reader = RowReader(sheet)
        for row, cells in sheet.rows():
            subject, video = str(cells["Subject"]), str(cells["Filename"])
            onset_written = frame_number(cells["Onset"])
            onset_id = cells["Onset"] if onset_written is None else onset_written
            clip_id = f"{video.lower()}_{onset_id}"
            key = f"{self.name}/{subject}/{clip_id}"
            frames = reader.frames(key, row, cells["Onset"], cells["Apex"], cells["Offset"])
            if frames is None:
                continue
            folder, extra = video, []
            if not (self.root / subject / video).is_dir() and \
                    (self.root / subject / video.lower()).is_dir():
                folder = video.lower()
                extra = [Note(key, "repaired", FOLDER_CASE, f"{sheet.where(row)}: "
                              f"{video!r} -> folder {folder!r}")]
            template = self.root / subject / folder / "color" / "{n}.jpg"
            reader.add(Clip(self.name, subject, clip_id, str(cells["emotion"] or ""), *frames,
                            str(template), row), extra)
        clips, notes = reader.finish()
        self._require_some(sorted({self.root / c.subject for c in clips}), LAYOUT)
        return clips, notes
