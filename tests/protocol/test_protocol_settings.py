"""Preprocessing protocols (issue 16): key-frame perturbations seeded and in the key, estimated
apexes, the two crop policies differing only where they should, flow encodings, the detector
axis, and the grid key that sets them per method."""

import cv2
import numpy as np
import pytest

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.grids import load_grid
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.stats.uncertainty import Pooled, difference_ci, subject_draws
from mer_bench.datasets.clip import Clip
from mer_bench.datasets.errors import ClipError
from mer_bench.datasets.faces import detect_face
from mer_bench.datasets.key_frames import key_frame_numbers, shift_offsets
from mer_bench.datasets.preprocess import (
    PreprocessSettings, bundle_key, encode_flow, make_bundle, read_frames, released_bundle)
from tests.conftest import casme_clip, face_frame, write_clip


def _bundle(clip, **settings):
    chosen = PreprocessSettings(**settings)
    return make_bundle(clip, read_frames(clip, chosen), chosen)


def _clip(tmp_path, frames, onset=1, apex=3, offset=5):
    write_clip(tmp_path, "sub01", "EP01_01", frames)
    return casme_clip(tmp_path, "sub01", "EP01_01", onset, apex, offset)


def _placed(shift=0.0, x=40, y=40):
    """The test face on a larger grey canvas, its top-left corner at (x, y)."""
    canvas = np.full((330, 310, 3), 90, np.uint8)
    face = face_frame(shift)
    canvas[y:y + face.shape[0], x:x + face.shape[1]] = face
    return canvas


# --- key frames ---------------------------------------------------------------------------

def test_shift_offsets_are_a_function_of_seed_and_clip_only():
    keys = [f"casme2/sub{s:02d}/EP0{c}" for s in range(1, 9) for c in range(1, 6)]
    drawn = [shift_offsets(key, 3, 0) for key in keys]
    assert drawn == [shift_offsets(key, 3, 0) for key in reversed(keys)][::-1]
    assert all(-3 <= d <= 3 for pair in drawn for d in pair)
    assert len(set(drawn)) > 5  # not one offset for every clip
    assert drawn != [shift_offsets(key, 3, 1) for key in keys]  # another seed, other frames


def test_shifted_key_frames_stay_on_disk_and_in_order(tmp_path):
    # frames 3..12 on disk, annotated onset 4, apex 6, offset 11
    write_clip(tmp_path, "sub01", "EP01_01", {n: face_frame() for n in range(3, 13)})
    seen = set()
    for seed in range(40):
        clip = Clip("casme2", "sub01", "EP01_01", "happiness", 4, 6, 11,
                    str(tmp_path / "sub01" / "EP01_01" / "img{n}.jpg"))
        numbers = key_frame_numbers(clip, "annotated", 4, seed)
        assert 3 <= numbers["onset"] < numbers["apex"] <= numbers["offset"] == 11
        assert abs(numbers["apex"] - 6) <= 4 and abs(numbers["onset"] - 4) <= 4
        seen.add((numbers["onset"], numbers["apex"]))
    assert len(seen) > 8
    assert key_frame_numbers(clip, "annotated", 0, 7) == {"onset": 4, "apex": 6, "offset": 11}


def test_perturbed_settings_are_in_the_digest_and_the_bundle_key(face_clip):
    default = PreprocessSettings()
    assert default.digest() == PreprocessSettings(key_frame_seed=5).digest()  # nothing drawn
    digests = {PreprocessSettings(**s).digest() for s in (
        {}, {"key_frame_shift": 1}, {"key_frame_shift": 2}, {"key_frame_shift": 2, "key_frame_seed": 1},
        {"key_frames": "middle"}, {"key_frames": "peak-flow"}, {"crop": "per-frame"},
        {"flow_encoding": "8bit"}, {"detector": "lbp"})}
    assert len(digests) == 9
    shifted = PreprocessSettings(key_frame_shift=2)
    assert bundle_key(face_clip, read_frames(face_clip, shifted), shifted) != \
        bundle_key(face_clip, read_frames(face_clip, default), default)


def test_middle_and_peak_flow_apexes(tmp_path):
    # the lower face moves most at frame 4 (of 1..7); annotated apex 2
    shifts = {1: 0, 2: 1, 3: 2, 4: 4, 5: 2, 6: 1, 7: 0}
    clip = _clip(tmp_path, {n: face_frame(s) for n, s in shifts.items()}, 1, 2, 7)
    assert list(_bundle(clip)["key_frames"]) == [1, 2, 7]
    assert list(_bundle(clip, key_frames="middle")["key_frames"]) == [1, 4, 7]
    peak = _bundle(clip, key_frames="peak-flow")
    assert list(peak["key_frames"]) == [1, 4, 7]
    annotated_at_4 = casme_clip(tmp_path, "sub01", "EP01_01", 1, 4, 7)
    assert np.array_equal(peak["faces"], _bundle(annotated_at_4)["faces"])
    with pytest.raises(ClipError, match="needs a frame between"):
        key_frame_numbers(casme_clip(tmp_path, "sub01", "EP01_01", 1, 2, 2), "middle")


def test_bad_key_frame_settings_are_refused_at_once():
    with pytest.raises(ValueError, match="key_frames 'apex'"):
        PreprocessSettings(key_frames="apex")
    with pytest.raises(ValueError, match="key_frame_shift must be"):
        PreprocessSettings(key_frame_shift=-1)
    with pytest.raises(ValueError, match="does not read them"):
        PreprocessSettings(key_frames="middle", key_frame_shift=2)


# --- crop policies ------------------------------------------------------------------------

def test_crop_policies_agree_on_a_still_face(tmp_path):
    clip = _clip(tmp_path, {n: _placed([0, 1, 2, 1, 0][n - 1]) for n in range(1, 6)})
    first, per_frame = _bundle(clip), _bundle(clip, crop="per-frame")
    boxes = per_frame["boxes"]
    assert (boxes == boxes[0]).all()  # the detector finds the same box on every frame
    assert np.array_equal(first["faces"], per_frame["faces"])
    assert np.array_equal(first["flows"], per_frame["flows"])
    assert np.array_equal(boxes[0], first["box"]) and "boxes" not in first


def test_per_frame_boxes_follow_a_moving_head_and_change_only_those_crops(tmp_path):
    frames = {1: _placed(x=40, y=40), 2: _placed(x=40, y=40), 3: _placed(2, x=58, y=52),
              4: _placed(x=40, y=40), 5: _placed(x=40, y=40)}
    clip = _clip(tmp_path, frames)
    first, per_frame = _bundle(clip), _bundle(clip, crop="per-frame")
    onset_box, apex_box, offset_box = (np.asarray(b) for b in per_frame["boxes"])
    assert np.array_equal(onset_box, first["box"])
    moved = apex_box - onset_box
    assert abs(moved[0] - 18) <= 4 and abs(moved[1] - 12) <= 4  # the head's move, found
    # the onset crop is the same under both; the apex crop differs, and follows the face
    assert np.array_equal(first["faces"][0], per_frame["faces"][0])
    assert not np.array_equal(first["faces"][1], per_frame["faces"][1])
    still = np.abs(per_frame["faces"][1].astype(int) - per_frame["faces"][0]).mean()
    drifted = np.abs(first["faces"][1].astype(int) - first["faces"][0]).mean()
    assert still < drifted / 2
    assert np.array_equal(offset_box, onset_box)  # back where it was: the same crop
    assert np.array_equal(first["faces"][2], per_frame["faces"][2])
    # the first-frame flow onset->apex sees the head's move; the per-frame one hardly does
    assert np.abs(per_frame["flows"][0]).mean() < np.abs(first["flows"][0]).mean() / 2


def test_a_frame_without_a_face_under_per_frame_names_it(tmp_path):
    frames = {n: _placed() for n in range(1, 6)}
    frames[3] = np.full_like(frames[1], 90)
    clip = _clip(tmp_path, frames)
    assert _bundle(clip)["faces"].shape == (3, 128, 128)  # the first frame's box crops it
    with pytest.raises(ClipError, match="no face found by dlib on frame 3") as caught:
        _bundle(clip, crop="per-frame")
    assert caught.value.path.endswith("img3.jpg")


# --- flow encodings and detectors -----------------------------------------------------------

def test_8bit_encoding_is_the_min_max_image_read_back():
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 0.6, (32, 32, 2)).astype(np.float32)
    assert encode_flow(flow, None) is flow
    encoded = encode_flow(flow, 8)
    for c in range(2):
        channel = flow[..., c]
        scaled = (channel - channel.min()) / (channel.max() - channel.min())
        assert np.abs(encoded[..., c] - scaled).max() <= 0.5 / 255 + 1e-6
        assert len(np.unique(encoded[..., c])) <= 256
        assert encoded[..., c].min() == 0 and encoded[..., c].max() == 1
    assert len(np.unique(encode_flow(flow, 2)[..., 0])) <= 4
    with pytest.raises(ValueError, match="flow_encoding '9bit'"):
        PreprocessSettings(flow_encoding="9bit")


def test_released_images_requantize_only_below_8_bits(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    path = tmp_path / "x .png"
    cv2.imwrite(str(path), image)
    clip = Clip("casme2", "sub01", "EP01", "", 0, 0, 0, "", image=str(path))
    data = path.read_bytes()
    assert np.array_equal(released_bundle(clip, data)["flow_image"], image)
    assert np.array_equal(released_bundle(clip, data, 8)["flow_image"], image)
    four = released_bundle(clip, data, 4)["flow_image"]
    assert len(np.unique(four)) <= 16 and np.abs(four.astype(int) - image).max() <= 9
    keys = {bundle_key(clip, {"image": data}, PreprocessSettings(flow_encoding=e))
            for e in ("float", "8bit", "4bit")}
    assert len(keys) == 2  # float and 8bit read the shipped image; 4bit is its own


def test_the_lbp_detector_finds_the_face_dlib_finds():
    frame = cv2.cvtColor(_placed(), cv2.COLOR_BGR2GRAY)
    lbp, dlib = detect_face(frame, "lbp"), detect_face(frame, "dlib")
    assert lbp is not None and dlib is not None
    centre = lambda b: np.array([(b.left + b.right) / 2, (b.top + b.bottom) / 2])  # noqa: E731
    assert np.linalg.norm(centre(lbp) - centre(dlib)) < 30
    assert lbp != dlib
    assert detect_face(np.full((200, 200), 90, np.uint8), "lbp") is None


# --- the grid key ----------------------------------------------------------------------------

def _grid(tmp_path, preprocess):
    path = tmp_path / "g.toml"
    path.write_text(f'tasks = ["synthetic-5"]\n[[methods]]\nname = "majority"\n'
                    f'[[methods]]\nname = "majority"\npreprocess = {preprocess}\n')
    return path


def test_a_grid_method_sets_preprocessing_and_its_jobs_say_so(tmp_path):
    grid = load_grid(_grid(tmp_path, '{ crop = "per-frame", key_frame_shift = 2 }'))
    plain, perturbed = grid.methods
    assert perturbed.preprocess == (("crop", "per-frame"), ("key_frame_shift", 2))
    job = Job("majority", "synthetic-5", "synthetic/sub01", preprocess=perturbed.preprocess)
    assert job.run_label == "majority[preprocess.crop=per-frame,preprocess.key_frame_shift=2]"
    assert job.key != Job("majority", "synthetic-5", "synthetic/sub01").key
    assert Job.from_canonical(job.canonical()) == job
    assert "preprocess" not in Job("majority", "synthetic-5", "synthetic/sub01").canonical()
    config = RunConfig()
    assert config.for_bundles(plain) is config
    assert config.for_bundles(perturbed).preprocess == PreprocessSettings(crop="per-frame",
                                                                           key_frame_shift=2)


@pytest.mark.parametrize("table, message", [
    ('{ crops = "per-frame" }', "unknown settings \\['crops'\\]"),
    ('{ key_frames = "apex" }', "key_frames 'apex'"),
    ('{ domains = 5 }', "unknown settings \\['domains'\\]"),  # a method's own key
])
def test_bad_preprocess_tables_are_refused_before_any_work(tmp_path, table, message):
    with pytest.raises(ValueError, match=message):
        load_grid(_grid(tmp_path, table))


def test_retinaface_weights_are_given_by_name(tmp_path):
    grid = load_grid(_grid(tmp_path, '{ detector = "retinaface", detector_weights = "rf" }'))
    spec = grid.methods[1]
    with pytest.raises(ValueError, match="--weights-dir rf=DIR"):
        RunConfig().for_bundles(spec)
    weights = tmp_path / "Resnet50_Final.pth"
    settings = RunConfig(weights_dirs=(("rf", str(weights)),)).for_bundles(spec).preprocess
    assert settings.detector == "retinaface" and settings.detector_weights == str(weights)


def test_the_command_line_sets_the_run_s_settings():
    from mer_bench.benchmark.cli import build_parser
    from mer_bench.benchmark.cli.options import preprocess_of as _preprocess

    args = build_parser().parse_args(["run", "--key-frame-shift", "2", "--key-frame-seed", "3",
                                      "--crop", "per-frame", "--flow-encoding", "8bit"])
    assert _preprocess(args) == PreprocessSettings(key_frame_shift=2, key_frame_seed=3,
                                                   crop="per-frame", flow_encoding="8bit")
    assert _preprocess(build_parser().parse_args(["run"])) == PreprocessSettings()


# --- the change of UF1 and its interval --------------------------------------------------------

def test_difference_interval_against_brute_force():
    rng = np.random.default_rng(3)
    subjects = tuple(f"s{i}" for i in rng.integers(0, 6, 60))
    labels = rng.integers(0, 3, 60)
    a = Pooled(labels, np.where(rng.random(60) < 0.7, labels, rng.integers(0, 3, 60)), subjects, 3)
    b = Pooled(labels, np.where(rng.random(60) < 0.4, labels, rng.integers(0, 3, 60)), subjects, 3)
    low, high = difference_ci([a], [b], draws=200, seed=4)
    from mer_bench.benchmark.stats.metrics import score

    names = sorted(set(subjects))
    weights = subject_draws(len(names), 200, 4)
    values = []
    for row in weights:  # each subject's clips repeated as often as it was drawn
        index = [i for s, n in zip(names, row) for i in np.flatnonzero(np.array(subjects) == s)
                 for _ in range(n)]
        values.append(score(labels[index], a.predicted[index], 3).uf1
                      - score(labels[index], b.predicted[index], 3).uf1)
    assert np.allclose([low, high], np.percentile(values, [2.5, 97.5]))
    assert difference_ci([a], [a], draws=50) == (0.0, 0.0)


# --- end to end -------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_key_frame_grid_runs_and_tables_each_setting_against_the_defaults(results, tmp_path):
    """Two settings of one method on the synthetic default: each its own bundles and jobs, the
    table's shifted row a change of UF1 against the defaults row, the figure and its points."""
    import pandas as pd

    from mer_bench.benchmark.cli import main

    grid = tmp_path / "kf.toml"
    grid.write_text('description = "key frames, test"\ntable = "key-frames"\n'
                    'tasks = ["synthetic-5"]\n[[methods]]\nname = "off_apexnet"\nbudget = 3\n'
                    '[[methods]]\nname = "off_apexnet"\nbudget = 3\n'
                    'preprocess = { key_frame_shift = 2 }\n')
    args = ["--results", str(results), "--quiet"]
    assert main(args + ["run", "--grid", str(grid), "--prepare-workers", "2"]) == 0
    config = RunConfig(results=results)
    records = list(config.store.records())
    digests = {dict(r.job.versions)["preprocess"] for r in records}
    assert len(records) == 20 and len(digests) == 2
    shifted = [r for r in records if r.job.preprocess]
    assert {r.job.run_label for r in shifted} == {"off_apexnet[preprocess.key_frame_shift=2]"}
    assert main(args + ["tables", "--grid", str(grid)]) == 0
    folder = results / "tables" / "paper"
    table = pd.read_csv(folder / "kf.csv")
    assert list(table.setting) == ["defaults", "key_frame_shift=2"]
    change = table["synthetic-5 (SYNTHETIC) ΔUF1"]
    assert change[0] == "ref"
    value = float(change[1].split()[0])
    uf1 = [float(text.split()[0]) for text in table["synthetic-5 (SYNTHETIC) UF1"]]
    assert value == pytest.approx(uf1[1] - uf1[0], abs=0.02)
    low, high = (float(v) for v in change[1].split("[")[1].rstrip("]").split(","))
    assert low <= value <= high
    points = pd.read_csv(folder / "kf-points.csv")
    assert list(points.setting) == ["defaults", "key_frame_shift=2"]
    assert (folder / "kf.png").stat().st_size > 0
