"""Bundles: what they hold, when the cache is reused and when it is not, clips that fail."""

import cv2
import numpy as np
import pytest

from mer_bench.datasets.errors import ClipError, FaceNotFound
from mer_bench.datasets.bundle_cache import BundleCache, prepare_clips
from mer_bench.datasets.preprocess import PreprocessSettings
from mer_bench.datasets.views import build_view
from tests.conftest import casme_clip, face_frame, write_clip


def test_bundle_holds_crops_and_flows_that_see_the_motion(tmp_path, face_clip):
    cache = BundleCache(tmp_path / "cache")
    key, made = cache.ensure(face_clip)
    bundle = cache.load(key)
    assert made
    assert bundle["faces"].shape == (3, 128, 128) and bundle["faces"].dtype == np.uint8
    assert bundle["flows"].shape == (2, 128, 128, 2)
    vertical = bundle["flows"][0][..., 1]
    # The lower face moved up at the apex: v is negative there, ~0 in the upper face.
    assert vertical[90:120].mean() < -0.3
    assert abs(vertical[10:40].mean()) < 0.2
    assert build_view("flow_strain_28", [bundle]).shape == (1, 3, 28, 28)


def test_cache_is_reused_until_a_used_frame_or_a_setting_changes(tmp_path, face_clip):
    cache = BundleCache(tmp_path / "cache")
    first, made = cache.ensure(face_clip)
    assert made
    assert cache.ensure(face_clip) == (first, False)
    # A frame the bundle does not read changes nothing.
    write_clip(tmp_path, "sub01", "EP01_01", {2: face_frame(shift=3)})
    assert cache.ensure(face_clip) == (first, False)
    # The apex frame changes: a new bundle.
    write_clip(tmp_path, "sub01", "EP01_01", {3: face_frame(shift=1.5)})
    second, made = cache.ensure(face_clip)
    assert made and second != first
    # Other settings: a new bundle, in their own folder.
    other = BundleCache(tmp_path / "cache", PreprocessSettings(crop_size=64))
    key, made = other.ensure(face_clip)
    assert made and other.path(key) != cache.path(second)
    assert other.load(key)["faces"].shape == (3, 64, 64)


def test_missing_frame_is_reported_by_clip_and_path(tmp_path, face_clip):
    (tmp_path / "sub01" / "EP01_01" / "img3.jpg").unlink()
    with pytest.raises(ClipError) as error:
        BundleCache(tmp_path / "cache").ensure(face_clip)
    assert error.value.clip_key == "casme2/sub01/EP01_01"
    assert "apex frame 3 missing" in str(error.value)
    assert str(tmp_path / "sub01" / "EP01_01" / "img3.jpg") in str(error.value)


def test_unreadable_frame_is_reported(tmp_path, face_clip):
    (tmp_path / "sub01" / "EP01_01" / "img5.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ClipError, match="offset frame 5 is not a readable image"):
        BundleCache(tmp_path / "cache").ensure(face_clip)


def test_bad_clips_are_skipped_by_name_and_the_rest_prepared(tmp_path, face_clip):
    blank = np.full((240, 220, 3), 128, np.uint8)
    write_clip(tmp_path, "sub02", "EP02_01", {n: blank for n in range(1, 6)})
    faceless = casme_clip(tmp_path, "sub02", "EP02_01")
    missing = casme_clip(tmp_path, "sub03", "EP03_01")  # no folder at all
    with pytest.raises(FaceNotFound):
        BundleCache(tmp_path / "c0").ensure(faceless)
    report = prepare_clips([face_clip, faceless, missing], BundleCache(tmp_path / "cache"),
                           progress=False)
    assert report.prepared == 1 and list(report.keys) == [face_clip.key]
    assert set(report.failed) == {"casme2/sub02/EP02_01", "casme2/sub03/EP03_01"}
    assert "no face found" in report.failed["casme2/sub02/EP02_01"]
    assert "does not exist" in report.failed["casme2/sub03/EP03_01"]
    assert "casme2/sub02/EP02_01" in report.summary()


def test_worker_processes_prepare_the_same_bundles(tmp_path, face_clip):
    write_clip(tmp_path, "sub01", "EP01_02", {n: cv2.flip(face_frame(n / 2), 1) for n in range(1, 6)})
    clips = [face_clip, casme_clip(tmp_path, "sub01", "EP01_02")]
    serial = prepare_clips(clips, BundleCache(tmp_path / "a"), workers=1, progress=False)
    parallel = prepare_clips(clips, BundleCache(tmp_path / "b"), workers=2, progress=False)
    assert serial.keys == parallel.keys and parallel.prepared == 2
    for key in serial.keys.values():
        a, b = BundleCache(tmp_path / "a").load(key), BundleCache(tmp_path / "b").load(key)
        assert np.array_equal(a["flows"], b["flows"])
