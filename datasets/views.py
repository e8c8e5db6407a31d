"""Views: what a method reads, derived from a clip's bundle by a named function.

Methods declare the views they need; every method's view comes from the same bundles, so
preprocessing is identical for all. A new view is one function and one `register_view` line
(datasets/__init__.py, or a plugin's own) with its version, which enters every job key that
reads it.

A bundle of a released flow image (datasets/released_flows.py: u, v and strain, each min-max
scaled to 0..255, as OpenCV reads it: (strain, v, u)) has no frames; it serves RELEASED_VIEWS
only, each from the image: `ststnet_release_28` is the image itself, as the STSTNet and HTNet
releases feed it; `flow_strain_28` is (u, v, strain) scaled to [0, 1] (the raw flow is not
recoverable from an 8-bit min-max image), and the views built on it follow. A release that
ships more images per clip (CausalNet's four) also serves COMPANION_VIEWS, each one image as
OpenCV reads it.
"""

from __future__ import annotations

import cv2
import numpy as np

from mer_bench.datasets.flow import optical_strain


RELEASED_VIEWS = ("ststnet_release_28", "flow_strain_28", "flow_28", "htnet_regions_28")
# View -> the companion image it is (its name in the bundle; datasets/released_flows.py).
COMPANION_VIEWS = {"released_apex_offset_28": "apex_offset_flow",
                   "released_onset_apex_direction_28": "onset_apex_direction",
                   "released_apex_offset_direction_28": "apex_offset_direction"}


def _frames_of(bundle: dict, view: str) -> dict:
    """The bundle, if it holds face crops and flows; a released image's says what it lacks."""
    if "flow_image" in bundle:
        raise ValueError(f"view {view!r} reads face crops or the harness's own flows, but this "
                         "source is released flow images, which hold no frames; it serves "
                         f"{', '.join(RELEASED_VIEWS)}")
    return bundle


def faces(bundle: dict) -> np.ndarray:
    """Onset, apex, offset grey crops, (3, S, S) in [0, 1]."""
    return _frames_of(bundle, "faces")["faces"].astype(np.float32) / 255.0


def flows(bundle: dict) -> np.ndarray:
    """The bundle's D flows as (2D, S, S): u1, v1, u2, v2, ... in crop pixels. D = 2 (the
    default): onset->apex and apex->offset; D > 2: between consecutive interpolated frames."""
    return np.concatenate(list(_frames_of(bundle, "flows")["flows"]),
                          axis=-1).transpose(2, 0, 1)


def domains(bundle: dict) -> int:
    """The number of temporal domains (flows) a bundle holds."""
    return len(bundle["flows"])


def onset_apex_flow(bundle: dict) -> np.ndarray:
    """The onset->apex flow, which only key-frame bundles (domains = 2) hold."""
    if "frames" in bundle:
        raise ValueError(f"this view reads the onset->apex flow, but the bundle was prepared "
                         f"with domains = {domains(bundle)} (flows between interpolated frames); "
                         "prepare with domains = 2 for it")
    return bundle["flows"][0]


def _min_max(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def flow_strain_28(bundle: dict) -> np.ndarray:
    """Onset->apex u, v and optical strain, area-resized to (3, 28, 28), in crop pixels; from
    a released image: its (u, v, strain) channels scaled to [0, 1]."""
    if "flow_image" in bundle:
        return bundle["flow_image"][..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
    flow = onset_apex_flow(bundle)
    stack = np.dstack([flow, optical_strain(flow)])
    return cv2.resize(stack, (28, 28), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)


def ststnet_release_28(bundle: dict) -> np.ndarray:
    """The STSTNet release's input (3, 28, 28) in 0..255, channels (strain, v, u): a released
    image as OpenCV reads it; from frames, `flow_strain_28` with each channel min-max scaled
    to 0..255 and rounded to integers, as the released images store them."""
    if "flow_image" in bundle:
        return bundle["flow_image"].transpose(2, 0, 1).astype(np.float32)
    scaled = [np.rint(_min_max(channel) * 255) for channel in flow_strain_28(bundle)]
    return np.stack(scaled[::-1]).astype(np.float32)


def _companion(bundle: dict, view: str) -> np.ndarray:
    """A companion image as OpenCV reads it, (3, H, W) in 0..255; a source without it says so."""
    name = COMPANION_VIEWS[view]
    if name not in bundle:
        raise ValueError(f"view {view!r} reads the released {name.replace('_', ' ')} image, "
                         "which this source does not ship (one image per clip: "
                         f"{', '.join(RELEASED_VIEWS)})")
    return bundle[name].transpose(2, 0, 1).astype(np.float32)


def released_apex_offset_28(bundle: dict) -> np.ndarray:
    """The apex->offset flow image (strain, v, u as OpenCV reads it, like the base image)."""
    return _companion(bundle, "released_apex_offset_28")


def released_onset_apex_direction_28(bundle: dict) -> np.ndarray:
    """The onset->apex flow-direction map: a hue per pixel, saturation and value full."""
    return _companion(bundle, "released_onset_apex_direction_28")


def released_apex_offset_direction_28(bundle: dict) -> np.ndarray:
    """The apex->offset flow-direction map: a hue per pixel, saturation and value full."""
    return _companion(bundle, "released_apex_offset_direction_28")


def flow_28(bundle: dict) -> np.ndarray:
    """OFF-ApexNet's input: onset->apex u, v area-resized to (2, 28, 28) (the first two
    channels of `flow_strain_28`, without computing the strain)."""
    if "flow_image" in bundle:
        return flow_strain_28(bundle)[:2]
    flow = onset_apex_flow(bundle)
    return cv2.resize(flow, (28, 28), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)


# HTNet's four regions as (row, col) centres in a 28x28 face: left eye, right eye, left and
# right lip corners. These are the fixed landmarks the HTNet release falls back to when MTCNN
# finds none, rounded and kept within [7, 21] so that every 14x14 crop lies inside the image.
HTNET_CENTRES = ((11, 10), (11, 21), (21, 10), (21, 21))


def htnet_regions_28(bundle: dict) -> np.ndarray:
    """HTNet's input (3, 28, 28): u, v, strain each min-max scaled, then the four 14x14 regions
    around HTNET_CENTRES tiled as [left eye | right eye] over [left lip | right lip]."""
    image = np.stack([_min_max(channel) for channel in flow_strain_28(bundle)])
    crops = [image[:, r - 7:r + 7, c - 7:c + 7] for r, c in HTNET_CENTRES]
    top, bottom = np.concatenate(crops[:2], axis=2), np.concatenate(crops[2:], axis=2)
    return np.concatenate([top, bottom], axis=1)


def frame_sequence(bundle: dict) -> np.ndarray:
    """The grey crops an LBP-TOP reads, (T, S, S) in [0, 255]: the D + 1 interpolated frames
    of a bundle prepared with domains D > 2, else its three key frames (onset, apex, offset)."""
    _frames_of(bundle, "frame_sequence")
    return np.asarray(bundle.get("frames", bundle["faces"]), dtype=np.float32)


def _blocks(face: np.ndarray, grid: int = 4, size: int = 48) -> list[np.ndarray]:
    step = face.shape[0] // grid
    return [cv2.resize(face[r * step:(r + 1) * step, c * step:(c + 1) * step], (size, size))
            for r in range(grid) for c in range(grid)]


def skd_tstsan_38(bundle: dict) -> np.ndarray:
    """SKD-TSTSAN's 38 x 48 x 48 input, each image min-max scaled to [0, 1].

    0 apex face, 1 onset face, 2-17 apex 4x4 blocks (row-major), 18-33 onset blocks, 34-35
    flow onset->apex (u, v), 36-37 flow apex->offset. Resizing is OpenCV's default (bilinear).
    A bundle of D temporal domains (settings `domains`) gives 34 + 2D channels: channels
    34 + 2d, 35 + 2d are the u, v of flow d (d = 0..D-1), which SKD-TSTSAN reads with
    `segments=D`. With D = 2 that is the 38 channels above.
    """
    onset, apex = (_frames_of(bundle, "skd_tstsan_38")["faces"][i].astype(np.float32)
                   for i in (0, 1))
    images = [cv2.resize(apex, (48, 48)), cv2.resize(onset, (48, 48)),
              *_blocks(apex), *_blocks(onset)]
    for flow in bundle["flows"]:
        images += [cv2.resize(flow[..., 0], (48, 48)), cv2.resize(flow[..., 1], (48, 48))]
    return np.stack([_min_max(image) for image in images]).astype(np.float32)


def view_version(name: str) -> str:
    """The registered version of a view ("1" where none was given)."""
    from mer_bench.datasets import VIEWS

    return VIEWS.entry(name).version or "1"


def build_view(name: str, bundles: list[dict]) -> np.ndarray:
    """The view `name` of every bundle, stacked as float32."""
    from mer_bench.datasets import VIEWS

    view = VIEWS.entry(name).resolve()
    return np.stack([view(bundle) for bundle in bundles]).astype(np.float32)
