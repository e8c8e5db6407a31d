"""TV-L1 optical flow (OpenCV's DualTVL1, default parameters) and optical strain."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# TV-L1 is in OpenCV's contrib modules. Plain opencv-python(-headless) installed beside the
# contrib build shares its cv2 folder and pip leaves cv2.optflow missing: say so at once.
OPENCV_REQUIREMENT = "opencv-contrib-python-headless>=4.8,<5.1"  # as pyproject.toml pins it
if not hasattr(cv2, "optflow"):
    raise ImportError(
        f"OpenCV {getattr(cv2, '__version__', '?')} at {getattr(cv2, '__file__', '?')} has no "
        "cv2.optflow (TV-L1 optical flow, a contrib module). Install the contrib build alone: "
        "pip uninstall -y opencv-python opencv-python-headless opencv-contrib-python "
        f"opencv-contrib-python-headless && pip install '{OPENCV_REQUIREMENT}'")


@lru_cache(maxsize=None)
def _tvl1():
    return cv2.optflow.DualTVL1OpticalFlow_create()


def tvl1_flow(previous: np.ndarray, following: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 flow, u then v, in pixels, from one grey uint8 image to the next."""
    return _tvl1().calc(previous, following, None).astype(np.float32)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Magnitude of the strain tensor, sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2), e = sym. grad of flow.

    STSTNet's third input channel; central differences, one pixel apart.
    """
    du_dy, du_dx = np.gradient(flow[..., 0])
    dv_dy, dv_dx = np.gradient(flow[..., 1])
    shear = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx**2 + dv_dy**2 + 2 * shear**2).astype(np.float32)
