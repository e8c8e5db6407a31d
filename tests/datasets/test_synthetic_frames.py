"""The synthetic default set: reproducible, cached, shaped like CASME II, faces found, and its
motion where the class says it is."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import cv2
import dlib
import numpy as np
import pandas as pd
import pytest

from mer_bench.datasets import synthetic_frames
from mer_bench.datasets.synthetic_faces import MOTION_POINTS, SOURCE_FACE_BOX
from mer_bench.datasets.synthetic_frames import (
    ACTION_UNITS,
    EMOTIONS,
    SHEET_NAME,
    SyntheticSpec,
    generate,
)

CASME2_COLUMNS = [
    "Subject", "Filename", "Unnamed: 2", "OnsetFrame", "ApexFrame", "OffsetFrame", "Unnamed: 6",
    "Action Units", "Estimated Emotion",
]
SMALL = SyntheticSpec(seed=7, subjects=8, clips_per_subject=3)  # every subject, few clips
TINY = SyntheticSpec(seed=1, subjects=2, clips_per_subject=3)
CROP = 128  # face crop side for the flow check, as a typical ME pipeline uses


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic") / "casme2", SMALL)


@pytest.fixture(scope="module")
def sheet(dataset) -> pd.DataFrame:
    return pd.read_excel(dataset / SHEET_NAME)


@pytest.fixture(scope="module")
def clips(sheet) -> list[dict]:
    return sheet.to_dict("records")


@pytest.fixture(scope="module")
def onset_faces(dataset, clips) -> list:
    """dlib's frontal-detector boxes on every clip's onset frame, in sheet order."""
    detector = dlib.get_frontal_face_detector()
    return [detector(read_grey(dataset, clip, clip["OnsetFrame"]), 1) for clip in clips]


def clip_folder(root: Path, clip: dict) -> Path:
    return root / f"sub{clip['Subject']:02d}" / clip["Filename"]


def read_grey(root: Path, clip: dict, n: int) -> np.ndarray:
    return cv2.imread(str(clip_folder(root, clip) / f"img{n}.jpg"), cv2.IMREAD_GRAYSCALE)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_sheet_is_casme2_shaped_and_every_frame_exists(dataset, sheet, clips):
    assert pd.ExcelFile(dataset / SHEET_NAME).sheet_names == ["Sheet1"]
    assert list(sheet.columns) == CASME2_COLUMNS
    assert sheet["Unnamed: 2"].isna().all() and sheet["Unnamed: 6"].isna().all()
    assert sorted(sheet.Subject.unique()) == list(range(1, SMALL.subjects + 1))
    assert len(sheet) == SMALL.subjects * SMALL.clips_per_subject
    assert not sheet.duplicated(["Subject", "Filename"]).any()
    for clip in clips:
        onset, apex, offset = clip["OnsetFrame"], clip["ApexFrame"], clip["OffsetFrame"]
        assert re.fullmatch(r"EP\d\d_\d\d", clip["Filename"])
        assert onset < apex < offset
        assert 8 <= offset - onset + 1 <= 14
        assert str(clip["Action Units"]) in ACTION_UNITS[clip["Estimated Emotion"]]
        folder = clip_folder(dataset, clip)
        expected = {f"img{n}.jpg" for n in range(onset, offset + 1)}
        assert {p.name for p in folder.iterdir()} == expected
        assert cv2.imread(str(folder / f"img{apex}.jpg")).shape == (256, 320, 3)
    assert sheet.OnsetFrame.nunique() > 5


def test_every_class_appears_imbalanced_and_subjects_mix_classes(sheet):
    counts = sheet["Estimated Emotion"].value_counts()
    assert set(counts.index) == set(EMOTIONS)
    assert counts.idxmax() == "others"
    assert counts.max() >= 2 * counts.min()
    assert (sheet.groupby("Subject")["Estimated Emotion"].nunique() >= 2).all()


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path):
    first = file_bytes(generate(tmp_path / "a", TINY))
    again = file_bytes(generate(tmp_path / "b", TINY))
    assert first == again  # the sheet and every frame, byte for byte
    frames = sorted(name for name in first if name.endswith(".jpg"))
    for name in frames[::7]:
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a" / name)),
                                      cv2.imread(str(tmp_path / "b" / name)))
    other = file_bytes(generate(tmp_path / "c", replace(TINY, seed=2)))
    assert other[SHEET_NAME] != first[SHEET_NAME]
    other_frame = sorted(name for name in other if name.endswith(".jpg"))[0]
    assert not np.array_equal(cv2.imread(str(tmp_path / "a" / frames[0])),
                              cv2.imread(str(tmp_path / "c" / other_frame)))


def test_second_call_is_cached_and_writes_nothing(dataset):
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    siblings = set(dataset.parent.iterdir())
    start = time.perf_counter()
    assert generate(dataset, SMALL) == dataset
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == before
    assert set(dataset.parent.iterdir()) == siblings


def test_changed_spec_replaces_the_dataset_and_motion_scale_scales_only_the_expression(tmp_path):
    root = generate(tmp_path / "set", TINY)
    micro = file_bytes(root)
    generate(root, replace(TINY, motion_scale=4.0))
    macro = file_bytes(root)
    assert macro[synthetic_frames.MARKER_NAME] != micro[synthetic_frames.MARKER_NAME]
    assert macro[SHEET_NAME] == micro[SHEET_NAME]  # same clips, same random draws
    for clip in pd.read_excel(root / SHEET_NAME).to_dict("records"):
        folder = f"sub{clip['Subject']:02d}/{clip['Filename']}"
        onset, apex = (f"{folder}/img{clip[k]}.jpg" for k in ("OnsetFrame", "ApexFrame"))
        assert macro[onset] == micro[onset]  # neutral frame, same noise
        assert macro[apex] != micro[apex]
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # no partial or stale folder left


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate(tmp_path / "mine", TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_failed_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(synthetic_frames, "write_clip", broken)
    with pytest.raises(RuntimeError, match="killed"):
        generate(tmp_path / "set", TINY)
    assert list(tmp_path.iterdir()) == []


def test_spec_is_checked_and_frame_size_normalised():
    with pytest.raises(ValueError):
        SyntheticSpec(subjects=2, clips_per_subject=2)  # too few clips for five classes
    assert SyntheticSpec(frame_size=[320, 256]).frame_size == (320, 256)


def test_dlib_finds_exactly_one_face_on_every_onset(onset_faces):
    assert [len(found) for found in onset_faces] == [1] * len(onset_faces)


def test_motion_is_larger_in_the_class_region_than_elsewhere(dataset, clips, onset_faces):
    """Dense flow onset -> apex in the face box, as a method would see it."""
    flow = cv2.optflow.DualTVL1OpticalFlow_create()
    ratios = {emotion: [] for emotion in EMOTIONS}
    for clip, found in zip(clips, onset_faces):
        emotion = clip["Estimated Emotion"]
        if len(ratios[emotion]) == 2:
            continue
        box = found[0]
        top, left = max(box.top(), 0), max(box.left(), 0)

        def crop(image):
            return cv2.resize(image[top:box.bottom(), left:box.right()], (CROP, CROP))

        onset, apex = (crop(read_grey(dataset, clip, clip[k])) for k in ("OnsetFrame", "ApexFrame"))
        magnitude = np.linalg.norm(flow.calc(onset, apex, None), axis=2)
        region = class_region(emotion)
        ratios[emotion].append(magnitude[region].mean() / magnitude[~region].mean())
    every = [r for values in ratios.values() for r in values]
    assert all(np.mean(values) > 1.0 for values in ratios.values()), ratios
    assert np.mean(np.array(every) > 1.0) >= 0.75, ratios
    assert np.median(every) > 1.3, ratios


def class_region(emotion: str) -> np.ndarray:
    """Disks around the class's motion points, mapped from the source face box to the crop."""
    left, top, right, bottom = SOURCE_FACE_BOX
    ys, xs = np.mgrid[0:CROP, 0:CROP]
    region = np.zeros((CROP, CROP), bool)
    for x, y in MOTION_POINTS[emotion]:
        u, v = (x - left) / (right - left) * CROP, (y - top) / (bottom - top) * CROP
        region |= (xs - u) ** 2 + (ys - v) ** 2 <= (0.11 * CROP) ** 2
    return region
