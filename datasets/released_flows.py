"""Flow images that MER papers' authors released instead of frames: one image per clip and a
label CSV (HTNet's `STSNet_whole_norm_u_v_os/` with `combined_3_class2_for_optical_flow.csv`;
STSTNet and CausalNet ship the same kind).

The root is the folder holding the label CSV and the image folder (the only `*.csv` and the
only sub-folder of `*.png` files unless `labels` / `images` name them). The CSV's columns
`dataset`, `sub`, `filename_o`, `label` name a clip; its image is `image_name` formatted with
`sub` and `clip` (`"{sub}_{clip} .png"`, with the space before `.png`, as HTNet ships them).

Clips keep the keys the frame adapters give the same clips (subjects and clips spelled as
`datasets.casme2`, `samm` and `smic` spell them: SMIC's `s01`/`s01_ne_01` is `s1`/`s1_ne_01`,
SAMM's subject is padded to 3 digits), so LOSO folds over (dataset, subject) are the same
folds whichever source a task reads. The emotion of a clip is the CSV's label code as written.

Encoding (ENCODING, part of every job key through `annotation_version`): each image holds the
onset->apex TV-L1 flow u, v and the optical strain of the face crop at 28x28, each channel
min-max scaled to 0..255 and stored as RGB = (u, v, strain); read with OpenCV, as the authors
do, the array is (strain, v, u). The order was checked on the 442 released images: the first
channel OpenCV reads is non-negative with a dark background (strain), and the strain of
(v, u) = (channel 1, channel 2) explains it better than the other assignment (tests).
Only views of the flow can be served (datasets/views.py RELEASED_VIEWS): there are no frames.

`companions` names further images a release ships per clip, each read into the clip's bundle
under its name and served by its view (datasets/views.py COMPANION_VIEWS); a clip missing one
is dropped, named. CausalNet's release (`causalnet_flows`) ships four per clip; its issue #2
calls them onset->apex flow, apex->offset flow and flow-direction maps. Checked on the 442
clips (tests/releases/test_causalnet_flows.py): the base image and `_1` have the encoding
above (a dark first channel, the strain); `_1`'s v and u mostly run against the base image's
(the face relaxing back: apex->offset); `_2` and `_3` are pure hues (every pixel has one
channel at 0 and one at 255; hue 0..45 of OpenCV's 0..180, a quarter of the colour circle)
whose hue follows the direction of the base image's flow (`_2`) and of `_1`'s (`_3`). The
base image is another preprocessing than HTNet's image of the same clip.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import pandas as pd

from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.sheets import file_digest
from mer_bench.datasets.views import COMPANION_VIEWS, RELEASED_VIEWS

ENCODING = ("released flow image: onset->apex TV-L1 u, v and optical strain of the face crop, "
            "28x28, each channel min-max scaled to 0..255, stored RGB = (u, v, strain), read "
            "by OpenCV as (strain, v, u)")
ENCODING_VERSION = "u-v-strain-min-max-8bit-1"  # bump when ENCODING's reading changes
COLUMNS = ("dataset", "sub", "filename_o", "label")
IMAGE_MISSING = "the label file lists it, but its image is missing"
COMPANION_MISSING = "the label file lists it, but one of its further images is missing"
NOT_LABELLED = "image not in the label file"
LAYOUT = ("ROOT/combined_3_class2_for_optical_flow.csv and ROOT/STSNet_whole_norm_u_v_os/"
          "sub01_EP02_01f .png (one image per clip)")


def frame_adapter_spelling(dataset: str, subject: str, clip: str) -> tuple[str, str]:
    """(subject, clip) as the frame adapter of `dataset` names them, so keys match."""
    dataset = dataset.lower()
    if dataset == "smic":  # the SMIC-HS folders: s1/s1_ne_01 (the subject's number unpadded)
        unpad = partial(re.sub, r"^s0*(\d)", r"s\1")
        return unpad(subject.strip().lower()), unpad(clip.strip().lower())
    if dataset == "samm" and subject.strip().isdigit():  # SAMM folders: 006
        return f"{int(subject):03d}", clip.strip()
    if dataset == "casme2" and subject.strip().lower().startswith("sub"):
        return f"sub{int(subject.strip()[3:]):02d}", clip.strip()
    return subject.strip(), clip.strip()


class ReleasedFlows:
    """Clips of a folder of released flow images, keyed as the frame datasets key them."""

    synthetic = False
    source = "released flow images (the authors' preprocessing, not the harness's)"

    def __init__(self, root: str | Path, name: str = "composite_flows",
                 labels: str | Path | None = None, images: str | Path | None = None,
                 image_name: str = "{sub}_{clip} .png",
                 companions: tuple[tuple[str, str], ...] = ()):
        self.name, self.root, self.image_name = name, Path(root), image_name
        self.companions = tuple(companions)
        # The only views it can serve: it has no frames.
        names = {companion for companion, _ in self.companions}
        self.views = RELEASED_VIEWS + tuple(v for v, n in COMPANION_VIEWS.items() if n in names)
        if not self.root.is_dir():
            raise DatasetError(f"{name}: data root {self.root} is not a folder; expected "
                               f"{LAYOUT}")
        self.labels = Path(labels) if labels else self._only(
            [p for p in self.root.iterdir() if p.is_file() and p.suffix.lower() == ".csv"],
            "label CSV")
        self.images = Path(images) if images else self._only(
            [p for p in self.root.iterdir() if p.is_dir() and any(p.glob("*.png"))],
            "folder of .png flow images")
        self._loaded: tuple[list[Clip], list[Note]] | None = None

    def _only(self, found: list[Path], what: str) -> Path:
        if len(found) != 1:
            raise DatasetError(f"{self.name}: expected one {what} in {self.root}, found "
                               f"{len(found)} ({', '.join(sorted(p.name for p in found))}); "
                               f"name it with the `labels` / `images` option; layout: {LAYOUT}")
        return found[0]

    def annotation_version(self) -> str:
        """The label file's bytes and the images' encoding: both change what a job computes."""
        return file_digest(self.labels) + ":" + ENCODING_VERSION

    def clips(self) -> list[Clip]:
        return self._read()[0]

    def notes(self) -> list[Note]:
        return self._read()[1]

    def _read(self) -> tuple[list[Clip], list[Note]]:
        if self._loaded is None:
            self._loaded = self._parse()
        return self._loaded

    def _parse(self) -> tuple[list[Clip], list[Note]]:
        try:
            table = pd.read_csv(self.labels, dtype=str, keep_default_na=False)
        except (ValueError, OSError) as error:
            raise DatasetError(f"{self.name}: label file {self.labels} cannot be read: {error}")
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise DatasetError(f"{self.name}: {self.labels} lacks columns {missing}; it has "
                               f"{list(table.columns)}; expected {', '.join(COLUMNS)}")
        clips, notes, seen, named = [], [], {}, set()
        for index, row in table.iterrows():
            line = int(index) + 2  # the header is line 1
            dataset, sub, clip_name = (row[c].strip() for c in COLUMNS[:3])
            subject, clip_id = frame_adapter_spelling(dataset, sub, clip_name)
            key = f"{dataset.lower()}/{subject}/{clip_id}"
            if key in seen:
                raise DatasetError(f"{self.name}: {self.labels} line {line} repeats line "
                                   f"{seen[key]} ({dataset} {sub} {clip_name})")
            seen[key] = line
            image = self.images / self.image_name.format(sub=sub, clip=clip_name)
            companions = tuple((companion, self.images / form.format(sub=sub, clip=clip_name))
                               for companion, form in self.companions)
            named.update([image.name] + [path.name for _, path in companions])
            if not image.is_file():
                notes.append(Note(key, "dropped", IMAGE_MISSING, f"{self.labels.name} line "
                                  f"{line}: {image}"))
                continue
            absent = [str(path) for _, path in companions if not path.is_file()]
            if absent:
                notes.append(Note(key, "dropped", COMPANION_MISSING, f"{self.labels.name} line "
                                  f"{line}: {', '.join(absent)}"))
                continue
            clips.append(Clip(dataset.lower(), subject, clip_id, row["label"].strip(), 0, 0, 0,
                              "", line, image=str(image),
                              companions=tuple((c, str(path)) for c, path in companions)))
        for extra in sorted(p.name for p in self.images.glob("*.png") if p.name not in named):
            notes.append(Note(f"{self.name}/{extra}", "dropped", NOT_LABELLED,
                              str(self.images / extra)))
        return clips, notes

