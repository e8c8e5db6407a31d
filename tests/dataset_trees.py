"""Frame trees in each dataset's real layout, built at test time from the real annotation files.

The annotation files are read from $MER_BENCH_ANNOTATIONS, else <repo>/../shared/annotations;
they are never copied into the repository. Frames are tiny grey JPEG/BMP/PNG images at the
real paths, only the ones the harness reads (onset, apex, offset), so a tree of a thousand
clips is built in a second or two. The readers here are deliberately independent of the
adapters' own code (plain pandas / csv), so the tests compare two readings of the files.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

CASME2_2014 = "CASME2-coding-20140508.xlsx"
CASME2_2019 = "CASME2-coding-20190701.xlsx"
SAMM_SHEET = "SAMM_Micro_FACS_Codes_v2.xlsx"
CASME3_SHEET = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
MMEW_SHEET = "MMEW_Micro_Exp_delete_others.csv"
MEGC_LIST = "combined_3class_gt.csv"
SMIC_APEX = "smic_apex.csv"


def shared_dir(variable: str, folder: str) -> Path:
    """$variable, else <repo>/../shared/<folder>."""
    return Path(os.environ.get(variable) or REPO.parent / "shared" / folder)


def shared_path(variable: str, folder: str, name: str, what: str) -> Path:
    """A file or folder of shared/, or the test is skipped with a reason naming it."""
    path = shared_dir(variable, folder) / name
    if not path.exists():
        pytest.skip(f"{what} {name} not found in {shared_dir(variable, folder)} (set "
                    f"{variable} to the folder that holds it)")
    return path


def annotations_dir() -> Path:
    return shared_dir("MER_BENCH_ANNOTATIONS", "annotations")


def real(name: str) -> Path:
    """The real annotation file, or the test is skipped with a reason naming it."""
    return shared_path("MER_BENCH_ANNOTATIONS", "annotations", name, "real annotation file")


def _image(extension: str) -> bytes:
    ok, data = cv2.imencode(extension, np.full((8, 8, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


TINY = {ext: _image(ext) for ext in (".jpg", ".bmp", ".png")}


def put(path: Path, data: bytes | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(TINY[path.suffix] if data is None else data)


def _numbers(*cells) -> list[int]:
    out = []
    for cell in cells:
        try:
            out.append(int(float(str(cell).strip())))
        except ValueError:
            pass
    return out


def build_casme2(root: Path, sheet: Path) -> Path:
    """root/sub01/EP02_01f/img46.jpg ... for every row of a CASME II coding sheet."""
    table = pd.read_excel(sheet, dtype=str)
    for _, row in table.iterrows():
        folder = root / f"sub{int(row['Subject']):02d}" / row["Filename"].strip()
        folder.mkdir(parents=True, exist_ok=True)
        for n in _numbers(row["OnsetFrame"], row["ApexFrame"], row["OffsetFrame"]):
            put(folder / f"img{n}.jpg")
    return root


def build_samm(root: Path, sheet: Path) -> Path:
    """root/006/006_1_2/006_05562.jpg ... (the header is on the sheet's 14th row)."""
    table = pd.read_excel(sheet, sheet_name="MICRO_ONLY", header=13, dtype=str)
    for _, row in table.iterrows():
        subject = f"{int(row['Subject']):03d}"
        folder = root / subject / row["Filename"].strip()
        folder.mkdir(parents=True, exist_ok=True)
        for n in _numbers(row["Onset Frame"], row["Apex Frame"], row["Offset Frame"]):
            put(folder / f"{subject}_{n:05d}.jpg")
    return root


SMIC_EMOTIONS = {"ne": "negative", "po": "positive", "sur": "surprise"}


def build_smic(root: Path, megc_list: Path, apex_list: Path) -> Path:
    """root/HS/s1/micro/negative/s1_ne_01/image<n>.bmp for every SMIC clip of the MEGC list:
    onset, apex and offset frames from the apex list; clips it lacks get five frames 1001-1005.
    """
    apexes = {}
    with open(apex_list, newline="") as file:
        for row in csv.DictReader(file):
            apexes[row["clip"]] = _numbers(row["onset_frame"], row["apex_frame"],
                                           row["offset_frame"])
    with open(megc_list, newline="") as file:
        rows = [row for row in csv.reader(file) if row and row[0] == "smic"]
    for _, subject, clip, _ in rows:
        number = int(subject[1:])
        parts = clip.split("_")
        name = f"s{number}_{parts[1]}_{parts[2]}"  # the folder's unpadded subject
        folder = root / "HS" / f"s{number}" / "micro" / SMIC_EMOTIONS[parts[1]] / name
        for n in apexes.get(name, range(1001, 1006)):
            put(folder / f"image{n}.bmp")
    return root


def build_mmew(root: Path, sheet: Path) -> Path:
    """root/Micro_Expression/<emotion>/S01-01-001/15.jpg ..."""
    table = pd.read_csv(sheet, dtype=str)
    for _, row in table.iterrows():
        folder = root / "Micro_Expression" / row["Estimated Emotion"].strip() / row["Filename"]
        folder.mkdir(parents=True, exist_ok=True)
        for n in _numbers(row["OnsetFrame"], row["ApexFrame"], row["OffsetFrame"]):
            put(folder / f"{n}.jpg")
    return root


def build_casme3(root: Path, sheet: Path) -> Path:
    """root/spNO.1/b/color/175.jpg ... (video folders in lower case)."""
    table = pd.read_excel(sheet, sheet_name="label", dtype=str)
    for _, row in table.iterrows():
        folder = root / row["Subject"].strip() / row["Filename"].strip().lower() / "color"
        folder.mkdir(parents=True, exist_ok=True)
        for n in _numbers(row["Onset"], row["Apex"], row["Offset"]):
            put(folder / f"{max(n, 1)}.jpg")
    return root


def build_ckplus(root: Path, labelled: int = 327, unlabelled: int = 6) -> dict[str, int]:
    """A CK+-shaped tree: `labelled` sequences with an emotion file (codes 1-7 in turn) and
    `unlabelled` without; frames 1..last as tiny PNGs. Returns the code counts."""
    counts: dict[str, int] = {}
    for index in range(labelled + unlabelled):
        subject, sequence = f"S{100 + index // 4:03d}", f"{index % 4 + 1:03d}"
        last = 5 + index % 7
        folder = root / "cohn-kanade-images" / subject / sequence
        for n in (1, last):
            put(folder / f"{subject}_{sequence}_{n:08d}.png")
        if index < labelled:
            code = index % 7 + 1
            label = root / "Emotion" / subject / sequence / \
                f"{subject}_{sequence}_{last:08d}_emotion.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"   {code:.7e}\n")
            counts[str(code)] = counts.get(str(code), 0) + 1
    return counts
