"""CK+ (Lucey et al. 2010) as it ships, for pretraining: posed expression sequences.

Frames `cohn-kanade-images/S005/001/S005_001_00000011.png`; labels
`Emotion/S005/001/S005_001_00000011_emotion.txt` (also accepted under `Emotion_labels/`), one
float per file, 0-7 (0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness,
7 surprise). Only the sequences with a label file are clips (327 in CK+). A label file is named
after the sequence's last frame, so no frame folder is listed. The paper's rule: the first
frame (1) is the onset and the offset, the last frame is the apex. `Clip.emotion` is the code
as the file writes it, as an integer ("3").
"""

from __future__ import annotations

import re
from pathlib import Path

from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.sheets import SheetDataset, file_digest

IMAGES = "cohn-kanade-images"
LABEL_FOLDERS = ("Emotion", "Emotion_labels/Emotion", "Emotion_labels")
LABEL_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)_emotion\.txt$")
LAYOUT = (f"ROOT/{IMAGES}/S005/001/S005_001_00000011.png and "
          "ROOT/Emotion/S005/001/S005_001_00000011_emotion.txt")
FIRST_FRAME = 1


class CKPlus(SheetDataset):
    name = "ckplus"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._require_root(LAYOUT)
        if not (self.root / IMAGES).is_dir():
            raise DatasetError(f"{self.name}: no folder {IMAGES} in the data root {self.root}; "
                               f"expected {LAYOUT}")
        labels = [self.root / folder for folder in LABEL_FOLDERS
                  if (self.root / folder).is_dir() and any((self.root / folder).glob("S*/*/"))]
        if not labels:
            raise DatasetError(f"{self.name}: no emotion label folder "
                               f"({' or '.join(LABEL_FOLDERS)}) in {self.root}; expected {LAYOUT}")
        self.labels = labels[0]

    def _label_files(self) -> list[Path]:
        return sorted(self.labels.glob("S*/*/*_emotion.txt"))

    def annotation_version(self) -> str:
        return file_digest(*self._label_files())

    def _read(self) -> tuple[list[Clip], list[Note]]:
        clips = []
        for path in self._label_files():
            match = LABEL_NAME.match(path.name)
            if not match or (match[1], match[2]) != (path.parent.parent.name, path.parent.name):
                raise DatasetError(f"{self.name}: label file {path} is not named "
                                   "<subject>_<sequence>_<frame>_emotion.txt after its folders")
            subject, sequence, last = match[1], match[2], int(match[3])
            code = _code(path)
            template = self.root / IMAGES / subject / sequence / \
                f"{subject}_{sequence}_{{n:0{len(match[3])}d}}.png"
            clips.append(Clip(self.name, subject, sequence, str(code), FIRST_FRAME, last,
                              FIRST_FRAME, str(template)))
        return clips, []


def _code(path: Path) -> int:
    text = path.read_text(errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value != int(value) or not 0 <= value <= 7:
        raise DatasetError(f"ckplus: label file {path} holds {text!r}; expected one number "
                           "0-7 (the CK+ emotion code)")
    return int(value)
