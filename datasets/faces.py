"""Face detection backends. The box found on a clip's first frame crops every frame of it.

dlib's HOG detector is the default: built into the dlib-bin wheel, offline, fast. The paper's
RetinaFace is a second backend (a later addition); the backend name is part of the cache key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

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


DETECTORS = {"dlib": detect_dlib}


def detect_face(grey: np.ndarray, backend: str) -> Box | None:
    try:
        detect = DETECTORS[backend]
    except KeyError:
        raise ValueError(f"unknown face detector {backend!r}; known: {sorted(DETECTORS)}") from None
    return detect(grey)
