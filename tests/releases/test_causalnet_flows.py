"""CausalNet's released composite flows (../shared/released/causalnet_composite_flows), four
images a clip: the same clips and folds as HTNet's release, what each image is (checked on the
images, not taken from the repository's description), and its base image another
preprocessing than HTNet's. Skipped, naming what is missing, where the folders are absent.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mer_bench.benchmark.protocol.tasks import TASKS, load_task
from tests.released import CAUSALNET, FLOWS, released

IMAGES = "STSNet_whole_norm_u_v_os"


@pytest.fixture(scope="module")
def causalnet():
    return released(CAUSALNET)


@pytest.fixture(scope="module")
def clips(causalnet):
    return load_task(TASKS.build("composite-3-causalnet"), {"causalnet_flows": causalnet})


def _images(clip) -> dict[str, np.ndarray]:
    paths = {"base": clip.image, **dict(clip.companions)}
    return {name: cv2.imread(path).astype(np.float64) for name, path in paths.items()}


def _direction(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Direction (radians) and magnitude of a u, v image's flow, zero at each channel's median
    (the background: the image's min-max scaling hides where zero was)."""
    u = image[..., 2] - np.median(image[..., 2])
    v = image[..., 1] - np.median(image[..., 1])
    return np.arctan2(v, u), np.hypot(u, v)


def _explained(hue: np.ndarray, image: np.ndarray) -> float:
    """How much of a hue map the flow direction of `image` explains (R², hue regressed on the
    direction's cosine and sine, over the half of the pixels that move most)."""
    angle, magnitude = _direction(image)
    moving = magnitude > np.median(magnitude)
    design = np.stack([np.cos(angle[moving]), np.sin(angle[moving]),
                       np.ones(moving.sum())], axis=1)
    target = hue[moving]
    residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
    return 1 - (residual ** 2).sum() / ((target - target.mean()) ** 2).sum()


def test_same_clips_labels_and_folds_as_htnet_release(clips):
    htnet = load_task(TASKS.build("composite-3-flows"), {"composite_flows": released(FLOWS)})
    assert len(clips.samples) == 442 and not clips.excluded
    assert {s.clip.key: s.label for s in clips.samples} == \
        {s.clip.key: s.label for s in htnet.samples}
    assert clips.subjects() == htnet.subjects() and len(clips.subjects()) == 68
    assert all(len(s.clip.companions) == 3 for s in clips.samples)


def test_what_each_of_the_four_images_is(clips):
    """Base and `_1`: u, v, strain images (a dark strain channel first as OpenCV reads them);
    `_1`'s flow mostly runs against the base's (apex->offset against onset->apex); `_2`, `_3`:
    pure hues (one channel 0, one 255 at every pixel) within a quarter of the colour circle,
    following the direction of the base's flow and of `_1`'s respectively."""
    sample = clips.samples[::4]
    against = follows = 0
    for s in sample:
        images = _images(s.clip)
        for name in ("base", "apex_offset_flow"):
            medians = np.median(images[name], axis=(0, 1))
            assert medians[0] < min(medians[1], medians[2]), (s.clip.key, name)
        base, back = images["base"], images["apex_offset_flow"]
        against += np.corrcoef(base[..., 1].ravel(), back[..., 1].ravel())[0, 1] < 0
        hues = {}
        for name in ("onset_apex_direction", "apex_offset_direction"):
            image = images[name]
            assert (image.min(axis=2) == 0).all() and (image.max(axis=2) == 255).all()
            hue = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_BGR2HSV)[..., 0]
            assert hue.max() <= 45, (s.clip.key, name)
            hues[name] = hue.astype(np.float64)
        follows += (_explained(hues["onset_apex_direction"], base)
                    > _explained(hues["onset_apex_direction"], back)) and \
                   (_explained(hues["apex_offset_direction"], back)
                    > _explained(hues["apex_offset_direction"], base))
    assert against > 0.6 * len(sample)
    assert follows > 0.6 * len(sample)


def test_base_image_is_another_preprocessing_than_htnets(clips):
    htnet = released(FLOWS) / IMAGES
    differences = [np.abs(cv2.imread(s.clip.image).astype(int)
                          - cv2.imread(str(htnet / s.clip.image.rsplit("/", 1)[1]))).mean()
                   for s in clips.samples[::20]]
    assert min(differences) > 1 and np.median(differences) > 10
