"""Face detection backends. The box found on a clip's first frame crops every frame of it.

dlib's HOG detector is the default: built into the dlib-bin wheel, offline, fast. `lbp` is
OpenCV's LBP frontal-face cascade as scikit-image ships it (offline too). RetinaFace,
the paper's detector, runs from a Pytorch_Retinaface checkpoint the user gives (nothing is
downloaded). The backend and its options are part of the cache key, a weights file by the hash
of its bytes: another checkpoint never reuses a bundle made with the first.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np


class Box(NamedTuple):
    left: int
    top: int
    right: int
    bottom: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.top : self.bottom, self.left : self.right]


@lru_cache(maxsize=None)
def _dlib_detector():
    import dlib

    return dlib.get_frontal_face_detector()


def detect_dlib(grey: np.ndarray) -> Box | None:
    """The largest frontal face; upsamples once only if the frame at its size shows none."""
    detector = _dlib_detector()
    for upsample in (0, 1):
        found = detector(grey, upsample)
        if len(found):
            best = max(found, key=lambda r: r.width() * r.height())
            height, width = grey.shape[:2]
            box = Box(max(best.left(), 0), max(best.top(), 0),
                      min(best.right(), width), min(best.bottom(), height))
            if box.right - box.left > 1 and box.bottom - box.top > 1:
                return box
    return None


@lru_cache(maxsize=None)
def _lbp_cascade():
    import skimage.data
    from skimage.feature import Cascade

    return Cascade(skimage.data.lbp_frontal_face_cascade_filename())


def detect_lbp(grey: np.ndarray) -> Box | None:
    """The largest face OpenCV's LBP frontal-face cascade finds (as scikit-image ships it):
    a second offline detector of another family than dlib's HOG, for the detector axis where
    RetinaFace's weights are not at hand. Faces from a fifth of the frame's short side up."""
    image = grey if grey.ndim == 2 else cv2.cvtColor(grey, cv2.COLOR_BGR2GRAY)
    side = min(image.shape[:2])
    found = _lbp_cascade().detect_multi_scale(
        img=image.astype(np.float64) / 255.0, scale_factor=1.2, step_ratio=1,
        min_size=(side // 5, side // 5), max_size=(side, side))
    if not found:
        return None
    best = max(found, key=lambda d: d["width"] * d["height"])
    height, width = image.shape[:2]
    box = Box(max(best["c"], 0), max(best["r"], 0), min(best["c"] + best["width"], width),
              min(best["r"] + best["height"], height))
    return box if box.right - box.left > 1 and box.bottom - box.top > 1 else None


def _stamp(path: Path) -> tuple[int, int] | None:
    """(mtime, size): a file replaced in place is loaded and hashed again."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


@lru_cache(maxsize=8)
def _sha256(path: str, stamp: tuple[int, int]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """The sha256 of a weights file, computed once per process (per file version)."""
    path = Path(path).resolve()
    stamp = _stamp(path)
    if stamp is None or not path.is_file():
        from mer_bench.datasets.retinaface import weights_not_found

        raise weights_not_found(path)
    return _sha256(str(path), stamp)


@lru_cache(maxsize=4)
def _cached_retinaface(path: str, network: str | None, stamp: tuple[int, int] | None):
    from mer_bench.datasets.retinaface import load_retinaface

    return load_retinaface(path, network)


def retinaface_network(weights: str | Path, network: str | None = None):
    """The loaded network, once per process and file version: every clip's onset frame uses it."""
    path = Path(weights).resolve()
    return _cached_retinaface(str(path), network, _stamp(path))


def detect_retinaface(grey: np.ndarray, weights: str | Path | None = None,
                      network: str | None = None, confidence: float = 0.9,
                      nms: float = 0.4, nms_area: str = "exact") -> Box | None:
    """The most confident face. Not the largest, as for dlib: a clip shows one subject, and
    RetinaFace scores faces where HOG does not; a looser box beside the face can survive NMS
    and would win on size. Grey frames are repeated into three BGR channels; a colour (BGR)
    frame is used as it is (the `colour` option: the caller decodes it so, as the release)."""
    if weights is None:
        raise ValueError(_NEEDS_WEIGHTS)
    net = retinaface_network(weights, network)
    from mer_bench.datasets.retinaface import detect_faces

    colour = grey.ndim == 3 and grey.shape[2] == 3
    image = grey if colour else cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    boxes, _ = detect_faces(net, image, confidence, nms, nms_area)
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in boxes.tolist():  # best first
        box = Box(max(math.floor(x1), 0), max(math.floor(y1), 0),
                  min(math.ceil(x2), width), min(math.ceil(y2), height))
        if box.right - box.left > 1 and box.bottom - box.top > 1:
            return box
    return None


_NEEDS_WEIGHTS = ("the retinaface detector needs its weights file: detector_weights=PATH "
                  "(--detector-weights PATH), the Pytorch_Retinaface release's "
                  "mobilenet0.25_Final.pth or Resnet50_Final.pth; nothing is downloaded")


@dataclass(frozen=True)
class Backend:
    """A detector by name. `options` are its keyword options, held in PreprocessSettings as
    `detector_<option>`; `files` name the options that are paths, keyed by content."""

    detect: Callable[..., Box | None]
    options: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    load: Callable[..., object] | None = None  # loads its model from the options (`verify`)
    colour: str | None = None  # the option that asks for colour frames, if it has one
    # options that enter the cache key only away from their default (older keys stay)
    keyed_if_set: tuple[tuple[str, object], ...] = ()


DETECTORS = {
    "dlib": Backend(detect_dlib),
    "lbp": Backend(detect_lbp),
    "retinaface": Backend(detect_retinaface, ("weights", "network", "confidence", "nms",
                                              "nms_area", "colour"),
                          files=("weights",), colour="colour",
                          load=lambda weights, network, **_: retinaface_network(weights, network),
                          keyed_if_set=(("nms_area", "exact"), ("colour", False))),
}


def backend(name: str) -> Backend:
    try:
        return DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r}; known: {sorted(DETECTORS)}") from None


def detect_face(grey: np.ndarray, name: str = "dlib", **options) -> Box | None:
    return backend(name).detect(grey, **options)


def detector_options(settings) -> dict:
    """The chosen backend's options from settings with `detector` and `detector_<option>`."""
    return {option: getattr(settings, f"detector_{option}")
            for option in backend(settings.detector).options}


def check_detector(settings) -> None:
    """A clear error now, not at the first clip: an unknown backend, RetinaFace without weights."""
    chosen = backend(settings.detector)
    for option in chosen.files:
        if getattr(settings, f"detector_{option}") is None:
            raise ValueError(_NEEDS_WEIGHTS)


def detection_options(settings) -> dict:
    """The options the detect function takes (the colour option is the frame's decoding)."""
    colour = backend(settings.detector).colour
    return {k: v for k, v in detector_options(settings).items() if k != colour}


def wants_colour(settings) -> bool:
    """Whether the chosen detector is to see the first frame in colour."""
    option = backend(settings.detector).colour
    return bool(option and getattr(settings, f"detector_{option}"))


# Detector settings by name: `harness` (the default) and `release`, the values of the
# SKD-TSTSAN authors' RetinaFace preprocessing (colour frames, faces above 0.5, the
# Pytorch_Retinaface CPU NMS's +1-pixel areas).
DETECTOR_PRESETS = {
    "harness": {"detector_confidence": 0.9, "detector_nms_area": "exact",
                "detector_colour": False},
    "release": {"detector_confidence": 0.5, "detector_nms_area": "plus_one",
                "detector_colour": True},
}


def verify_detector(settings) -> None:
    """Loads the chosen detector's model once, before any clip, so that an empty, truncated
    or wrong weights file is one clear error naming the file, not one failure per clip."""
    check_detector(settings)
    chosen = backend(settings.detector)
    if chosen.load is not None:
        chosen.load(**detector_options(settings))


def detector_key(settings) -> dict:
    """The options as they enter the cache key: none for dlib (its keys stay as they were),
    a weights file by its sha256 rather than its path."""
    chosen = backend(settings.detector)
    key = {}
    for option, value in detector_options(settings).items():
        if (option, value) in chosen.keyed_if_set:
            continue
        if option in chosen.files:
            key[f"detector_{option}_sha256"] = file_sha256(value)
        else:
            key[f"detector_{option}"] = value
    return key
