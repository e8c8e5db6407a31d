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
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mer_bench.datasets.clip import Clip
from mer_bench.datasets.errors import MACHINE_ERRNOS, ClipError, FaceNotFound, MachineFault
from mer_bench.datasets.faces import (
    check_detector, detect_face, detection_options, detector_key, verify_detector, wants_colour)
from mer_bench.datasets.flow import tvl1_flow
from mer_bench.datasets.interpolation import interpolate_frames

PIPELINE_VERSION = "1"
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

    def __post_init__(self):
        if isinstance(self.domains, bool) or not isinstance(self.domains, int) or self.domains < 2:
            raise ValueError(f"domains must be an integer >= 2 (2: onset->apex->offset flows; "
                             f"5 or 10: the paper's interpolated clips), got {self.domains!r}")
        check_detector(self)

    def digest(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if not k.startswith("detector_")}
        text = json.dumps(fields | detector_key(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def key_frames(clip: Clip) -> dict[str, int]:
    if clip.apex is None:
        raise ClipError(clip.key, "no apex frame in the annotation")
    return {"onset": clip.onset, "apex": clip.apex, "offset": clip.offset}


def frames_read(clip: Clip, settings: PreprocessSettings) -> dict[str, int]:
    """Role -> frame number of every frame a bundle reads: onset, apex, offset and, with
    domains > 2, every frame from onset to offset (roles "frame <n>")."""
    numbers = key_frames(clip)
    if settings.domains > 2:
        if clip.offset <= clip.onset:
            raise ClipError(clip.key, f"temporal interpolation ({settings.domains} domains) needs "
                            f"at least 2 frames from onset to offset, got onset {clip.onset}, "
                            f"offset {clip.offset}")
        numbers.update({f"frame {n}": n for n in range(clip.onset, clip.offset + 1)})
    return numbers


def read_frames(clip: Clip, settings: PreprocessSettings) -> dict[str, bytes]:
    """The bytes of every frame the bundle reads, by role; each file is read once. A clip of
    a released image (no frames) reads that image, role "image"."""
    if clip.image is not None:
        return {"image": _read_file(clip, Path(clip.image), "released image")}
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
    digest = hashlib.sha256((RELEASED_BUNDLE if clip.image is not None
                             else settings.digest()).encode())
    for role, data in frame_bytes.items():
        digest.update(role.encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:24]


def make_bundle(clip: Clip, frame_bytes: dict[str, bytes], settings: PreprocessSettings) -> dict:
    if clip.image is not None:
        return released_bundle(clip, frame_bytes["image"])
    numbers = key_frames(clip)
    grey = {role: _decode_grey(clip, frame_bytes[role], numbers[role], role) for role in numbers}
    box = face_box(clip, grey["onset"], settings, frame_bytes["onset"])
    faces = {role: face_crop(box, image, settings) for role, image in grey.items()}
    if settings.domains > 2:
        frames = _interpolated_crops(clip, frame_bytes, grey, box, settings)
        return {
            "faces": np.stack([faces["onset"], faces["apex"], faces["offset"]]),
            "flows": np.stack([tvl1_flow(a, b) for a, b in pairwise(frames)]),
            "frames": frames,
            "box": np.asarray(box, dtype=np.int32),
        }
    flows = [tvl1_flow(faces["onset"], faces["apex"]), tvl1_flow(faces["apex"], faces["offset"])]
    return {
        "faces": np.stack([faces["onset"], faces["apex"], faces["offset"]]),
        "flows": np.stack(flows),
        "box": np.asarray(box, dtype=np.int32),
    }


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
    seen = onset
    if wants_colour(settings):
        data = onset_bytes if onset_bytes is not None else _read_bytes(clip, clip.onset, "onset")
        seen = imdecode(data, cv2.IMREAD_COLOR)
    box = detect_face(seen, settings.detector, **detection_options(settings))
    if box is None:
        raise FaceNotFound(clip.key, f"no face found by {settings.detector} on the first frame",
                           str(clip.frame_path(clip.onset)))
    return box


def released_bundle(clip: Clip, data: bytes) -> dict:
    """A released flow image as OpenCV reads it (BGR order, uint8), the way its authors read
    it: {"flow_image": (H, W, 3)}. Views of such a bundle: datasets/views.py."""
    image = imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.shape[2] != 3:
        what = unreadable(data) if image is None else f"has shape {image.shape}"
        raise ClipError(clip.key, f"released image {what}; expected a 3-channel image (u, v "
                        "and strain channels)", clip.image)
    return {"flow_image": image}


def _interpolated_crops(clip: Clip, frame_bytes: dict[str, bytes], grey: dict[str, np.ndarray],
                        box, settings: PreprocessSettings) -> np.ndarray:
    """Every frame onset..offset cropped with the box (area-resized in float), resampled to
    domains + 1 frames by the temporal interpolation model; (domains + 1, S, S) uint8."""
    size = (settings.crop_size, settings.crop_size)
    by_number = {number: grey[role] for role, number in key_frames(clip).items()}
    crops = []
    for number in range(clip.onset, clip.offset + 1):
        image = by_number.get(number)
        if image is None:
            image = _decode_grey(clip, frame_bytes[f"frame {number}"], number, "sequence")
        crop = box.crop(image)
        if crop.shape[0] < 2 or crop.shape[1] < 2:
            raise ClipError(clip.key, f"sequence frame {number} ({image.shape[1]}x{image.shape[0]}) "
                            f"does not hold the first frame's face box {tuple(box)}",
                            str(clip.frame_path(number)))
        crops.append(cv2.resize(crop.astype(np.float32), size, interpolation=cv2.INTER_AREA))
    frames = interpolate_frames(np.stack(crops), settings.domains + 1)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


@dataclass
class BundleCache:
    """Bundles on disk under root/<settings digest>/, written atomically (temp file + rename)."""

    root: Path
    settings: PreprocessSettings = field(default_factory=PreprocessSettings)

    def path(self, key: str) -> Path:
        return Path(self.root) / self.settings.digest() / key[:2] / f"{key}.npz"

    def locate(self, clip: Clip) -> tuple[str, dict[str, bytes]]:
        frame_bytes = read_frames(clip, self.settings)
        return bundle_key(clip, frame_bytes, self.settings), frame_bytes

    def ensure(self, clip: Clip) -> tuple[str, bool]:
        """The clip's bundle key, making the bundle if absent; True when it was made now."""
        key, made, _ = self.ensure_whole(clip)
        return key, made

    def ensure_whole(self, clip: Clip) -> tuple[str, bool, str | None]:
        """`ensure`, and why a cached bundle that could not be loaded was deleted and remade
        (else None); a bundle that fails again is the clip's failure."""
        key, frame_bytes = self.locate(clip)
        path = self.path(key)
        damaged = None
        if path.exists():
            damaged = self.damage(key)
            if damaged is None:
                return key, False, None
            path.unlink(missing_ok=True)
        bundle = make_bundle(clip, frame_bytes, self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **bundle)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        if damaged is not None and self.damage(key) is not None:
            raise ClipError(clip.key, f"its bundle could not be loaded ({damaged}), nor once "
                            "remade", str(path))
        return key, True, damaged

    def load(self, key: str) -> dict[str, np.ndarray]:
        with np.load(self.path(key)) as data:
            return {name: data[name] for name in data.files}

    def damage(self, key: str) -> str | None:
        """Why the cached bundle cannot be loaded whole (every array read, so every CRC
        checked); None if it can."""
        try:
            self.load(key)
        except Exception as error:  # noqa: BLE001 -- a zip, a pickle or an OS error
            return f"{type(error).__name__}: {error}"
        return None

    def sweep_temporary(self, older_than_s: float = 3600.0) -> int:
        """Removes temp files that a killed writer left behind; a young one may belong to a
        process writing now, so only those older than `older_than_s` go. Returns the count."""
        folder = Path(self.root) / self.settings.digest()
        removed = 0
        if folder.is_dir():
            limit = time.time() - older_than_s
            for temp in folder.glob("*/*.tmp"):
                try:
                    if temp.stat().st_mtime < limit:
                        temp.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed


@dataclass
class PrepareReport:
    keys: dict[str, str] = field(default_factory=dict)  # clip key -> bundle key
    prepared: int = 0
    cached: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # clip key -> reason
    seconds: list[float] = field(default_factory=list)  # per clip prepared now
    remade: dict[str, str] = field(default_factory=dict)  # clip key -> why its bundle was

    def summary(self) -> str:
        text = f"{self.prepared} prepared, {self.cached} cached, {len(self.failed)} failed"
        if self.seconds:
            text += f" (median {np.median(self.seconds):.2f} s per clip prepared)"
        text += "".join(f"\n  remade {key}: its cached bundle could not be loaded ({why})"
                        for key, why in self.remade.items())
        return text + "".join(f"\n  failed {key}: {why}" for key, why in self.failed.items())


class CacheUnwritable(MachineFault):
    """The bundle cache cannot be written (disk full, read-only, no permission): a fault of
    the machine, not of a clip, so preparing stops instead of dropping clip after clip."""


def _machine_fault(error: OSError, cache: BundleCache) -> bool:
    if error.errno in MACHINE_ERRNOS:
        return True
    where = Path(error.filename or "").resolve() if error.filename else None
    return (error.errno in (errno.EACCES, errno.EPERM) and where is not None
            and Path(cache.root).resolve() in (where, *where.parents))


def _prepare_one(cache: BundleCache, clip: Clip) -> tuple:
    """(clip key, bundle key, seconds if made now else None, failure reason, why a damaged
    cached bundle was remade).

    Any error of the clip is its failure, reported by name; it never stops the other clips.
    An error of the machine (the cache cannot be written) raises CacheUnwritable."""
    started = time.perf_counter()
    try:
        key, made, damaged = cache.ensure_whole(clip)
        return clip.key, key, time.perf_counter() - started if made else None, None, damaged
    except ClipError as error:
        return (clip.key, None, None,
                error.problem + (f" ({error.path})" if error.path else ""), None)
    except OSError as error:
        if _machine_fault(error, cache):
            raise CacheUnwritable(f"cannot write the bundle cache {cache.root}: "
                                  f"{error.strerror or error} ({error.filename or clip.key}); "
                                  f"preparing stopped, no clip dropped") from None
        return clip.key, None, None, f"{type(error).__name__}: {error}", None
    except Exception as error:  # noqa: BLE001 -- e.g. an OpenCV error on a strange frame
        return clip.key, None, None, f"{type(error).__name__}: {error}", None


def _worker_init() -> None:
    # Dies with the driver (no orphan preparing on, holding the resource tracker open). One
    # OpenCV and one torch (RetinaFace) thread per worker: the workers already fill the
    # cores, and more threads per worker only contend. Torch is imported later, if at all,
    # and reads OMP_NUM_THREADS when it is.
    from mer_bench.benchmark.lifetimes import die_with_parent

    die_with_parent()
    cv2.setNumThreads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def prepare_clips(clips: list[Clip], cache: BundleCache, workers: int = 1,
                  progress: bool = True) -> PrepareReport:
    """Makes every missing bundle; a clip that fails is reported by name, the rest go on.

    Safe to interrupt and to run twice at once on the same cache: each bundle is written to a
    temp file and renamed into place, so a bundle on disk is always whole; a killed run loses
    only the clips in flight and the next run makes them (and reports the rest as cached).
    """
    report = PrepareReport()
    if any(clip.image is None for clip in clips):  # frames to detect faces on
        verify_detector(cache.settings)
    cache.sweep_temporary()
    bar = tqdm(total=len(clips), desc="preparing clips", unit="clip", disable=not progress,
               leave=False, dynamic_ncols=True)
    results: list = [None] * len(clips)

    def record(index: int, outcome: tuple) -> None:
        results[index] = outcome
        _, _, seconds, reason, damaged = outcome
        if damaged is not None:
            report.remade[outcome[0]] = damaged
        if reason is not None:
            report.failed[outcome[0]] = reason
        elif seconds is not None:
            report.prepared += 1
        else:
            report.cached += 1
        bar.set_postfix({"prepared": report.prepared, "cached": report.cached,
                         "failed": len(report.failed)}, refresh=False)
        bar.update()

    try:
        if workers > 1 and len(clips) > 1:
            pool = ProcessPoolExecutor(min(workers, len(clips)), mp_context=get_context("spawn"),
                                       initializer=_worker_init)
            try:
                futures = {pool.submit(_prepare_one, cache, clip): index
                           for index, clip in enumerate(clips)}
                for future in as_completed(futures):
                    index = futures[future]
                    try:
                        outcome = future.result()
                    except BrokenProcessPool as error:  # a worker was killed (e.g. out of memory)
                        outcome = (clips[index].key, None, None,
                                   f"its worker process died ({error})", None)
                    record(index, outcome)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            for index, clip in enumerate(clips):
                record(index, _prepare_one(cache, clip))
    finally:
        bar.close()
    # The report lists clips in the order given, whatever order the workers finished in.
    report.failed = {}
    for clip_key, key, seconds, reason, _ in results:
        if reason is not None:
            report.failed[clip_key] = reason
            continue
        report.keys[clip_key] = key
        if seconds is not None:
            report.seconds.append(seconds)
    return report
