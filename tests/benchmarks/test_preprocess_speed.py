"""Speed of preprocessing on this machine (pytest-benchmark): one TV-L1 flow at 128x128, one
whole clip bundle (dlib box, crops, two flows) and one of five interpolated domains.

Run with timings: `python -m pytest tests/benchmarks/test_preprocess_speed.py
--benchmark-enable`. In the normal test run (benchmarks disabled) each body runs once.
"""

import cv2
import numpy as np
import pytest

from mer_bench.datasets.faces import detect_face
from mer_bench.datasets.flow import tvl1_flow
from mer_bench.datasets.preprocess import PreprocessSettings, make_bundle, read_frames
from tests.conftest import casme_clip, face_frame, write_clip


def crop(shift: float) -> np.ndarray:
    grey = cv2.cvtColor(face_frame(shift), cv2.COLOR_BGR2GRAY)
    box = detect_face(cv2.cvtColor(face_frame(), cv2.COLOR_BGR2GRAY), "dlib")
    return cv2.resize(box.crop(grey), (128, 128), interpolation=cv2.INTER_AREA)


def test_tvl1_flow_128(benchmark):
    onset, apex = crop(0.01), crop(2.0)  # both remapped alike; the lower face 2 px up
    flow = benchmark.pedantic(tvl1_flow, (onset, apex), rounds=5, warmup_rounds=1)
    assert flow.shape == (128, 128, 2) and flow.dtype == np.float32
    assert flow[90:120, :, 1].mean() < -0.5 and abs(flow[10:40, :, 1].mean()) < 0.2


@pytest.fixture
def moving_clip(tmp_path):
    """Nine frames: the lower face rises 0 -> 2 px by frame 5 and falls back."""
    shifts = [0.01, 0.5, 1.0, 1.5, 2.0, 1.5, 1.0, 0.5, 0.01]
    write_clip(tmp_path, "sub01", "EP01_01", {n: face_frame(s) for n, s in enumerate(shifts, 1)})
    return casme_clip(tmp_path, "sub01", "EP01_01", onset=1, apex=5, offset=9)


@pytest.mark.parametrize("domains", [2, 5])
def test_clip_bundle_dlib(benchmark, moving_clip, domains):
    settings = PreprocessSettings(domains=domains)
    frame_bytes = read_frames(moving_clip, settings)
    detect_face(np.zeros((8, 8), np.uint8), "dlib")  # the detector is loaded once per process
    bundle = benchmark.pedantic(make_bundle, (moving_clip, frame_bytes, settings), rounds=3,
                                warmup_rounds=0)
    benchmark.extra_info["flows"] = domains
    assert bundle["flows"].shape == (domains, 128, 128, 2)
    lower = bundle["flows"][:, 90:120, :, 1].mean(axis=(1, 2))
    assert lower[0] < -0.1 and lower[-1] > 0.1  # up towards the apex, down after it
