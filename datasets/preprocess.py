"""One cached sample bundle per clip, shared by every method.

A bundle holds the grey face crops of onset, apex and offset (box from the first frame, the
onset) and the TV-L1 flows onset->apex and apex->offset. Its cache key hashes the settings and
the bytes of the frames it reads: a change of frames or settings invalidates it, nothing else.

With `domains` = D > 2 (the paper's Table 6: 5 or 10 temporal domains) the bundle reads every
frame from onset to offset, crops each with the first frame's box, resamples the sequence to
D + 1 frames with the temporal interpolation model (datasets/interpolation.py) and holds the D
TV-L1 flows between consecutive interpolated frames (`flows`, (D, S, S, 2)) and those frames
(`frames`, (D + 1, S, S)). Its `faces` stay the real onset, apex and offset crops, exactly as
with D = 2, so the S- and L-stream inputs do not depend on D; only the T-stream's do. The
interpolated frames start at the onset and end at the offset; the apex need not be one of them.

Three settings are protocols of their own (issue 16), each off at its default, where it leaves
the digest, and so every key made before it, unchanged:
- `key_frames`, `key_frame_shift`, `key_frame_seed`: which onset and apex are read (the
  annotated ones, seeded perturbations of them, an estimated apex; datasets/key_frames.py).
  A bundle records the frames it read (`key_frames`: onset, apex, offset).
- `crop`: "first-frame" (the default: the onset's face box crops every frame) or "per-frame"
  (each frame cropped with the box found on it, as the SKD-TSTSAN release did before its fix;
  the bundle then holds every box, `boxes`, onset first). The onset crop is the same under
  both; the others differ only where the detector finds the face elsewhere.
- `flow_encoding`: "float" (the default: TV-L1 flows in crop pixels) or "Nbit" (N = 1..8):
  each flow's u and v stored as an N-bit image, min-max scaled per image, and read back as
  codes / (2^N - 1) in [0, 1], as the releases store flows ("8bit") and lose their scale and
  zero. A released image is 8-bit already: "float" and "8bit" read it as shipped, fewer bits
  re-quantize its channels.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np

from mer_bench.datasets.clip import Clip
from mer_bench.datasets.errors import ClipError, FaceNotFound
from mer_bench.datasets.faces import (
    check_detector, detect_face, detection_options, detector_key, wants_colour)
from mer_bench.datasets.flow import tvl1_flow
from mer_bench.datasets.interpolation import interpolate_frames
from mer_bench.datasets.key_frames import check_key_frames, key_frame_numbers, peak_flow_apex

PIPELINE_VERSION = "1"
# The crop side the peak-flow apex is estimated on: a quarter of the pixels of 128, so a
# quarter of the TV-L1 time, for a quantity (which frame moved most) that needs no detail.
PEAK_FLOW_SIZE = 64
RELEASED_BUNDLE = "released-image-1"  # what a released image's bundle holds (released_bundle)


@dataclass(frozen=True)
class PreprocessSettings:
    """Everything that changes a bundle; its digest is part of every job key."""

    detector: str = "dlib"
    crop_size: int = 128
    flow: str = "tvl1"
    # Temporal domains of the T-stream: 2 = flows onset->apex, apex->offset (the default);
    # D > 2 = onset..offset interpolated to D + 1 frames, D flows between consecutive ones.
    domains: int = 2
    version: str = PIPELINE_VERSION
    # Options of the detector chosen (datasets/faces.py); only its own enter the digest.
    detector_weights: str | None = None  # RetinaFace: a Pytorch_Retinaface .pth file
    detector_network: str | None = None  # "mobilenet0.25" | "resnet50"; None: from the file
    detector_confidence: float = 0.9
    detector_nms: float = 0.4
    detector_nms_area: str = "exact"  # or "plus_one", the release's NMS areas
    detector_colour: bool = False  # the first frame in colour, as the release feeds it
    # Protocols (module docstring): which key frames, which crop boxes, how flows are stored.
    key_frames: str = "annotated"  # or "middle", "peak-flow" (datasets/key_frames.py)
    key_frame_shift: int = 0  # k: annotated onset and apex each moved by a seeded -k..k
    key_frame_seed: int = 0
    crop: str = "first-frame"  # or "per-frame"
    flow_encoding: str = "float"  # or "8bit" ... "1bit"

    def __post_init__(self):
        if isinstance(self.domains, bool) or not isinstance(self.domains, int) or self.domains < 2:
            raise ValueError(f"domains must be an integer >= 2 (2: onset->apex->offset flows; "
                             f"5 or 10: the paper's interpolated clips), got {self.domains!r}")
        check_detector(self)
        check_key_frames(self.key_frames, self.key_frame_shift, self.key_frame_seed)
        if self.crop not in CROP_POLICIES:
            raise ValueError(f"crop {self.crop!r}; expected one of {', '.join(CROP_POLICIES)}")
        flow_bits(self.flow_encoding)

    def digest(self) -> str:
        fields = {k: v for k, v in asdict(self).items()
                  if not k.startswith("detector_") and PROTOCOL_DEFAULTS.get(k, ...) != v}
        if not self.key_frame_shift:  # the seed draws nothing without a shift
            fields.pop("key_frame_seed", None)
        text = json.dumps(fields | detector_key(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


CROP_POLICIES = ("first-frame", "per-frame")
# Settings that enter the digest only away from these values (older keys stay as they were).
PROTOCOL_DEFAULTS = {"key_frames": "annotated", "key_frame_shift": 0, "key_frame_seed": 0,
                     "crop": "first-frame", "flow_encoding": "float"}


def flow_bits(encoding: str) -> int | None:
    """The bits of a flow encoding ("8bit": 8), None for "float"; anything else refused."""
    if encoding == "float":
        return None
    bits = encoding[:-3] if encoding.endswith("bit") else ""
    if not (bits.isdigit() and 1 <= int(bits) <= 8):
        raise ValueError(f"flow_encoding {encoding!r}; expected float, or Nbit with N 1..8 "
                         "(8bit: the 8-bit min-max images the releases store)")
    return int(bits)


def encode_flow(flow: np.ndarray, bits: int | None) -> np.ndarray:
    """A flow (S, S, 2) as stored under the encoding: unchanged for float; else each channel
    min-max scaled to 0..2^bits - 1, rounded, and read back as codes / (2^bits - 1)."""
    if bits is None:
        return flow
    top = 2 ** bits - 1
    channels = []
    for channel in np.moveaxis(flow, -1, 0).astype(np.float64):
        low, high = channel.min(), channel.max()
        scaled = (channel - low) / (high - low) if high > low else np.zeros_like(channel)
        channels.append(np.rint(scaled * top) / top)
    return np.stack(channels, axis=-1).astype(np.float32)


def _read_bytes(clip: Clip, number: int, role: str) -> bytes:
    return _read_file(clip, clip.frame_path(number), f"{role} frame {number}")


def _read_file(clip: Clip, path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problem = f"{what} missing"
        if not path.parent.is_dir():
            problem += f"; the folder {path.parent} does not exist"
        raise ClipError(clip.key, problem, str(path)) from None
    except OSError as error:
        raise ClipError(clip.key, f"{what} unreadable: {error}", str(path)) from None


def imdecode(data: bytes, flags: int) -> np.ndarray | None:
    """cv2.imdecode, None for anything it cannot read (OpenCV 5 raises on an empty buffer
    where 4.x returned None), so that the caller names the file."""
    if not data:
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None


def unreadable(data: bytes) -> str:
    return "is empty (0 bytes)" if not data else f"is not a readable image ({len(data)} bytes)"


def _decode_grey(clip: Clip, data: bytes, number: int, role: str) -> np.ndarray:
    image = imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ClipError(clip.key, f"{role} frame {number} {unreadable(data)}",
                        str(clip.frame_path(number)))
    return image


def key_frames(clip: Clip, settings: PreprocessSettings | None = None) -> dict[str, int]:
    """Onset, apex and offset as the settings choose them (datasets/key_frames.py); under
    `peak-flow` the apex is found from the frames, so it is absent here."""
    settings = settings or PreprocessSettings()
    return key_frame_numbers(clip, settings.key_frames, settings.key_frame_shift,
                             settings.key_frame_seed)


def reads_sequence(settings: PreprocessSettings) -> bool:
    """Whether a bundle reads every frame from onset to offset, not the key frames only."""
    return settings.domains > 2 or settings.key_frames == "peak-flow"


def frames_read(clip: Clip, settings: PreprocessSettings) -> dict[str, int]:
    """Role -> frame number of every frame a bundle reads: onset, apex, offset and, with
    domains > 2 or an apex estimated from the frames, every frame from onset to offset
    (roles "frame <n>")."""
    numbers = key_frames(clip, settings)
    if reads_sequence(settings):
        if clip.offset <= numbers["onset"]:
            raise ClipError(clip.key, f"temporal interpolation ({settings.domains} domains) needs "
                            f"at least 2 frames from onset to offset, got onset "
                            f"{numbers['onset']}, offset {clip.offset}")
        numbers.update({f"frame {n}": n for n in range(numbers["onset"], clip.offset + 1)})
    return numbers


def read_frames(clip: Clip, settings: PreprocessSettings) -> dict[str, bytes]:
    """The bytes of every frame the bundle reads, by role; each file is read once. A clip of
    a released image (no frames) reads that image, role "image"."""
    if clip.image is not None:
        return {"image": _read_file(clip, Path(clip.image), "released image"),
                **{name: _read_file(clip, Path(path), f"released {name}")
                   for name, path in clip.companions}}
    by_number: dict[int, bytes] = {}
    frame_bytes = {}
    for role, number in frames_read(clip, settings).items():
        if number not in by_number:
            label = "sequence" if role.startswith("frame ") else role
            by_number[number] = _read_bytes(clip, number, label)
        frame_bytes[role] = by_number[number]
    return frame_bytes


def bundle_key(clip: Clip, frame_bytes: dict[str, bytes], settings: PreprocessSettings) -> str:
    # A released image's bundle depends on its bytes and its encoding, not on the face and
    # flow settings, which it never uses.
    digest = hashlib.sha256((released_kind(settings) if clip.image is not None
                             else settings.digest()).encode())
    for role, data in frame_bytes.items():
        digest.update(role.encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:24]


def released_kind(settings: PreprocessSettings) -> str:
    """What a released image's bundle is: as shipped, or re-quantized to fewer bits."""
    bits = flow_bits(settings.flow_encoding)
    return RELEASED_BUNDLE + (f":{bits}bit" if bits is not None and bits < 8 else "")


def make_bundle(clip: Clip, frame_bytes: dict[str, bytes], settings: PreprocessSettings) -> dict:
    if clip.image is not None:
        return released_bundle(clip, frame_bytes["image"], flow_bits(settings.flow_encoding),
                               {name: frame_bytes[name] for name, _ in clip.companions})
    numbers = key_frames(clip, settings)
    grey = {role: _decode_grey(clip, frame_bytes[role], number, role)
            for role, number in numbers.items()}
    box = frame_box(clip, grey["onset"], settings, numbers["onset"], frame_bytes["onset"],
                    "the first frame")
    if "apex" not in numbers:  # peak-flow: the apex from the first frame's crops
        small = replace(settings, crop_size=min(settings.crop_size, PEAK_FLOW_SIZE))
        crops = {n: face_crop(box, _sequence_frame(clip, frame_bytes, grey, numbers, n), small)
                 for n in range(numbers["onset"], clip.offset + 1)}
        numbers["apex"] = peak_flow_apex(crops)
        grey["apex"] = _sequence_frame(clip, frame_bytes, grey, numbers, numbers["apex"])
    roles = ("onset", "apex", "offset")
    boxes = {role: box if role == "onset" or settings.crop == "first-frame"
             else frame_box(clip, grey[role], settings, numbers[role], frame_bytes[role])
             for role in roles}
    faces = np.stack([face_crop(boxes[role], grey[role], settings) for role in roles])
    bits = flow_bits(settings.flow_encoding)
    bundle = {"faces": faces, "box": np.asarray(box, dtype=np.int32),
              "key_frames": np.asarray([numbers[role] for role in roles], dtype=np.int32)}
    if settings.crop == "per-frame":
        bundle["boxes"] = np.asarray([boxes[role] for role in roles], dtype=np.int32)
    if settings.domains > 2:
        frames = _interpolated_crops(clip, frame_bytes, grey, numbers, box, settings)
        bundle["flows"] = np.stack([encode_flow(tvl1_flow(a, b), bits)
                                    for a, b in pairwise(frames)])
        bundle["frames"] = frames
    else:
        bundle["flows"] = np.stack([encode_flow(tvl1_flow(faces[0], faces[1]), bits),
                                    encode_flow(tvl1_flow(faces[1], faces[2]), bits)])
    return bundle


def _sequence_frame(clip: Clip, frame_bytes: dict[str, bytes], grey: dict[str, np.ndarray],
                    numbers: dict[str, int], number: int) -> np.ndarray:
    """Frame `number` of the sequence read, decoded once where it is a key frame."""
    for role, key_number in numbers.items():
        if key_number == number and role in grey:
            return grey[role]
    return _decode_grey(clip, frame_bytes[f"frame {number}"], number, "sequence")


def grey_frame(clip: Clip, number: int, role: str) -> np.ndarray:
    """One frame of the clip read and decoded to grey as every bundle reads its frames."""
    return _decode_grey(clip, _read_bytes(clip, number, role), number, role)


def face_crop(box, image: np.ndarray, settings: PreprocessSettings) -> np.ndarray:
    """One frame cropped to the clip's face box and resized to the settings' crop size."""
    size = (settings.crop_size, settings.crop_size)
    return cv2.resize(box.crop(image), size, interpolation=cv2.INTER_AREA)


def face_box(clip: Clip, onset: np.ndarray, settings: PreprocessSettings,
             onset_bytes: bytes | None = None):
    """The face box on the clip's first frame (grey `onset`; in colour where the detector
    settings ask for it), which crops every frame of the clip."""
    return frame_box(clip, onset, settings, clip.onset, onset_bytes, "the first frame")


def frame_box(clip: Clip, grey: np.ndarray, settings: PreprocessSettings, number: int,
              data: bytes | None = None, which: str | None = None):
    """The face box the detector finds on frame `number` (grey; decoded from `data` in colour
    where the settings ask for it); a frame without a face is the clip's error, by name."""
    seen = grey
    if wants_colour(settings):
        data = data if data is not None else _read_bytes(clip, number, "frame")
        seen = imdecode(data, cv2.IMREAD_COLOR)
    box = detect_face(seen, settings.detector, **detection_options(settings))
    if box is None:
        raise FaceNotFound(clip.key, f"no face found by {settings.detector} on "
                           f"{which or f'frame {number}'}", str(clip.frame_path(number)))
    return box


def released_bundle(clip: Clip, data: bytes, bits: int | None = None,
                    companions: dict[str, bytes] | None = None) -> dict:
    """A released flow image as OpenCV reads it (BGR order, uint8), the way its authors read
    it: {"flow_image": (H, W, 3)}, and each companion image the release ships beside it under
    its name; with `bits` < 8, every channel re-quantized to that many bits (codes spread back
    over 0..255). Views of such a bundle: datasets/views.py."""
    paths = dict(clip.companions)
    bundle = {}
    for name, raw in {"flow_image": data, **(companions or {})}.items():
        image = imdecode(raw, cv2.IMREAD_COLOR)
        if image is None or image.ndim != 3 or image.shape[2] != 3:
            what = unreadable(raw) if image is None else f"has shape {image.shape}"
            label = "image" if name == "flow_image" else name.replace("_", " ")
            raise ClipError(clip.key, f"released {label} {what}; expected a 3-channel image",
                            paths.get(name, clip.image))
        if bits is not None and bits < 8:
            top = 2 ** bits - 1
            image = (np.rint(np.rint(image / 255.0 * top) / top * 255)).astype(np.uint8)
        bundle[name] = image
    return bundle


def _interpolated_crops(clip: Clip, frame_bytes: dict[str, bytes], grey: dict[str, np.ndarray],
                        numbers: dict[str, int], box, settings: PreprocessSettings) -> np.ndarray:
    """Every frame onset..offset cropped (area-resized in float) with the first frame's box,
    or its own under the per-frame policy, resampled to domains + 1 frames by the temporal
    interpolation model; (domains + 1, S, S) uint8."""
    size = (settings.crop_size, settings.crop_size)
    crops = []
    for number in range(numbers["onset"], clip.offset + 1):
        image = _sequence_frame(clip, frame_bytes, grey, numbers, number)
        own = box
        if settings.crop == "per-frame" and number != numbers["onset"]:
            own = frame_box(clip, image, settings, number, frame_bytes.get(f"frame {number}"))
        crop = own.crop(image)
        if crop.shape[0] < 2 or crop.shape[1] < 2:
            raise ClipError(clip.key, f"sequence frame {number} ({image.shape[1]}x{image.shape[0]}) "
                            f"does not hold the face box {tuple(own)}",
                            str(clip.frame_path(number)))
        crops.append(cv2.resize(crop.astype(np.float32), size, interpolation=cv2.INTER_AREA))
    frames = interpolate_frames(np.stack(crops), settings.domains + 1)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
