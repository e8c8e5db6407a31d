"""Views: what a method reads, derived from a clip's bundle by a named function.

Methods declare the views they need; every method's view comes from the same bundles, so
preprocessing is identical for all. A new view is one function and one line in VIEWS.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from datasets.flow import optical_strain


def faces(bundle: dict) -> np.ndarray:
    """Onset, apex, offset grey crops, (3, S, S) in [0, 1]."""
    return bundle["faces"].astype(np.float32) / 255.0


def flows(bundle: dict) -> np.ndarray:
    """Flows onset->apex and apex->offset as (4, S, S): u1, v1, u2, v2 in crop pixels."""
    return np.concatenate([bundle["flows"][0], bundle["flows"][1]], axis=-1).transpose(2, 0, 1)


def flow_strain_28(bundle: dict) -> np.ndarray:
    """STSTNet's input: onset->apex u, v and optical strain, area-resized to (3, 28, 28)."""
    flow = bundle["flows"][0]
    stack = np.dstack([flow, optical_strain(flow)])
    return cv2.resize(stack, (28, 28), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)


VIEWS: dict[str, Callable[[dict], np.ndarray]] = {
    "faces": faces,
    "flows": flows,
    "flow_strain_28": flow_strain_28,
}


def build_view(name: str, bundles: list[dict]) -> np.ndarray:
    try:
        view = VIEWS[name]
    except KeyError:
        raise KeyError(f"unknown view {name!r}; known: {sorted(VIEWS)}") from None
    return np.stack([view(bundle) for bundle in bundles]).astype(np.float32)
