"""One cached sample bundle per clip, shared by every method.

A bundle holds the grey face crops of onset, apex and offset (box from the first frame, the
onset) and the TV-L1 flows onset->apex and apex->offset. Its cache key hashes the settings and
the bytes of the frames it reads: a change of frames or settings invalidates it, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.clip import Clip
from datasets.errors import ClipError, FaceNotFound
from datasets.faces import detect_face
from datasets.flow import tvl1_flow

PIPELINE_VERSION = "1"


@dataclass(frozen=True)
class PreprocessSettings:
    """Everything that changes a bundle; its digest is part of every job key."""

    detector: str = "dlib"
    crop_size: int = 128
    flow: str = "tvl1"
    version: str = PIPELINE_VERSION

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_bytes(clip: Clip, number: int, role: str) -> bytes:
    path = clip.frame_path(number)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problem = f"{role} frame {number} missing"
        if not path.parent.is_dir():
            problem += f"; the clip folder {path.parent} does not exist"
        raise ClipError(clip.key, problem, str(path)) from None
    except OSError as error:
        raise ClipError(clip.key, f"{role} frame {number} unreadable: {error}", str(path)) from None


def _decode_grey(clip: Clip, data: bytes, number: int, role: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ClipError(clip.key, f"{role} frame {number} is not a readable image",
                        str(clip.frame_path(number)))
    return image


def key_frames(clip: Clip) -> dict[str, int]:
    if clip.apex is None:
        raise ClipError(clip.key, "no apex frame in the annotation")
    return {"onset": clip.onset, "apex": clip.apex, "offset": clip.offset}


def bundle_key(clip: Clip, frame_bytes: dict[str, bytes], settings: PreprocessSettings) -> str:
    digest = hashlib.sha256(settings.digest().encode())
    for role, data in frame_bytes.items():
        digest.update(role.encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:24]


def make_bundle(clip: Clip, frame_bytes: dict[str, bytes], settings: PreprocessSettings) -> dict:
    numbers = key_frames(clip)
    grey = {role: _decode_grey(clip, frame_bytes[role], numbers[role], role) for role in numbers}
    box = detect_face(grey["onset"], settings.detector)
    if box is None:
        raise FaceNotFound(clip.key, f"no face found by {settings.detector} on the first frame",
                           str(clip.frame_path(clip.onset)))
    size = (settings.crop_size, settings.crop_size)
    faces = {role: cv2.resize(box.crop(image), size, interpolation=cv2.INTER_AREA)
             for role, image in grey.items()}
    flows = [tvl1_flow(faces["onset"], faces["apex"]), tvl1_flow(faces["apex"], faces["offset"])]
    return {
        "faces": np.stack([faces["onset"], faces["apex"], faces["offset"]]),
        "flows": np.stack(flows),
        "box": np.asarray(box, dtype=np.int32),
    }


@dataclass
class BundleCache:
    """Bundles on disk under root/<settings digest>/, written atomically (temp file + rename)."""

    root: Path
    settings: PreprocessSettings = field(default_factory=PreprocessSettings)

    def path(self, key: str) -> Path:
        return Path(self.root) / self.settings.digest() / key[:2] / f"{key}.npz"

    def locate(self, clip: Clip) -> tuple[str, dict[str, bytes]]:
        numbers = key_frames(clip)
        frame_bytes = {role: _read_bytes(clip, n, role) for role, n in numbers.items()}
        return bundle_key(clip, frame_bytes, self.settings), frame_bytes

    def ensure(self, clip: Clip) -> tuple[str, bool]:
        """The clip's bundle key, making the bundle if absent; True when it was made now."""
        key, frame_bytes = self.locate(clip)
        path = self.path(key)
        if path.exists():
            return key, False
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
        return key, True

    def load(self, key: str) -> dict[str, np.ndarray]:
        with np.load(self.path(key)) as data:
            return {name: data[name] for name in data.files}


@dataclass
class PrepareReport:
    keys: dict[str, str] = field(default_factory=dict)  # clip key -> bundle key
    prepared: int = 0
    cached: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # clip key -> reason
    seconds: list[float] = field(default_factory=list)  # per clip prepared now

    def summary(self) -> str:
        text = f"{self.prepared} prepared, {self.cached} cached, {len(self.failed)} failed"
        if self.seconds:
            text += f" (median {np.median(self.seconds):.2f} s per clip prepared)"
        return text + "".join(f"\n  failed {key}: {why}" for key, why in self.failed.items())


def _prepare_one(cache: BundleCache, clip: Clip) -> tuple[str, str | None, float | None, str | None]:
    """(clip key, bundle key, seconds if made now else None, failure reason)."""
    started = time.perf_counter()
    try:
        key, made = cache.ensure(clip)
        return clip.key, key, time.perf_counter() - started if made else None, None
    except ClipError as error:
        return clip.key, None, None, error.problem + (f" ({error.path})" if error.path else "")


def prepare_clips(clips: list[Clip], cache: BundleCache, workers: int = 1,
                  progress: bool = True) -> PrepareReport:
    """Makes every missing bundle; a clip that fails is reported by name, the rest go on."""
    report = PrepareReport()
    bar = tqdm(total=len(clips), desc="preprocessing clips", unit="clip", disable=not progress,
               leave=False)
    if workers > 1 and len(clips) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            outcomes = pool.map(_prepare_one, [cache] * len(clips), clips, chunksize=4)
            results = _collect(outcomes, bar)
    else:
        results = _collect((_prepare_one(cache, clip) for clip in clips), bar)
    bar.close()
    for clip_key, key, seconds, reason in results:
        if reason is not None:
            report.failed[clip_key] = reason
            continue
        report.keys[clip_key] = key
        if seconds is not None:
            report.prepared += 1
            report.seconds.append(seconds)
        else:
            report.cached += 1
    return report


def _collect(outcomes, bar) -> list:
    results = []
    for outcome in outcomes:
        results.append(outcome)
        bar.update()
    return results
