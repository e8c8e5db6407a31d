"""Face detection per frame at CASME II's 640x480, on one CPU thread (pytest-benchmark).

Run with timings: `python -m pytest tests/benchmarks --benchmark-enable -k face`. One thread
each: dlib's detector uses one, and preprocessing runs one worker process per core, so this is
the cost per frame per core. RetinaFace runs on random weights in the release's format (the
trained files cannot be had offline); its time does not depend on the values except through
how many boxes reach NMS, so it runs at confidence 0: every anchor passes and the 5000 best
(the release's top-k) go to NMS, the most post-processing a frame can cost. With trained
weights at the default 0.9 a handful pass and NMS costs next to nothing.
"""

import cv2
import pytest
import torch

from mer_bench.datasets.faces import Box, detect_dlib, detect_face, retinaface_network
from mer_bench.datasets.retinaface import RetinaFace, detect_faces
from tests.datasets.test_retinaface import casme_frame, random_state, write_checkpoint


@pytest.fixture(scope="module")
def frame():
    return casme_frame()


@pytest.fixture
def one_thread(benchmark):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    benchmark.extra_info["threads"] = 1
    yield
    torch.set_num_threads(threads)


def test_dlib_per_640x480_frame(benchmark, frame):
    box = benchmark(detect_dlib, frame)
    assert isinstance(box, Box)
    # The face sits at x 210..430, y 120..360 of the frame.
    assert 210 <= box.left < box.right <= 430 and 120 <= box.top < box.bottom <= 360


def test_retinaface_mobilenet_per_640x480_frame(benchmark, frame, tmp_path, one_thread):
    weights = write_checkpoint(tmp_path / "mobilenet0.25_Final.pth")
    retinaface_network(weights)  # loaded once per process, as in preprocessing: not timed
    # The first pass sets up oneDNN's kernels (seconds): a warm-up round, not timed.
    box = benchmark.pedantic(detect_face, (frame, "retinaface"),
                             {"weights": weights, "confidence": 0.0}, rounds=10, warmup_rounds=1)
    assert isinstance(box, Box) and box.right <= 640 and box.bottom <= 480


def test_retinaface_resnet50_per_640x480_frame(benchmark, frame, one_thread):
    with torch.device("meta"):  # the random state gives every value; skip the init
        net = RetinaFace("resnet50")
    net.load_state_dict(random_state("resnet50"), assign=True)
    net.eval()
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    boxes, scores = benchmark.pedantic(detect_faces, (net, bgr), {"confidence": 0.0},
                                       rounds=3, warmup_rounds=1)
    assert boxes.shape == (len(scores), 4) and 0 < len(scores) <= 750
