"""The bundle cache and preparing clips into it: one file per clip, keyed by what it read
(preprocess.bundle_key), written by rename so that it is whole or absent, in worker processes
where asked; a clip that fails is recorded with why, and a fault of the machine (a full disk,
a folder that cannot be written) stops the preparation rather than failing every clip.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mer_bench.benchmark.storage.lifetimes import as_umask_allows
from mer_bench.datasets.clip import Clip
from mer_bench.datasets.errors import MACHINE_ERRNOS, ClipError, MachineFault
from mer_bench.datasets.faces import verify_detector
from mer_bench.datasets.preprocess import PreprocessSettings, bundle_key, make_bundle, read_frames


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
            as_umask_allows(Path(temp), folder=False)  # a cache shared with a group
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
    from mer_bench.benchmark.storage.lifetimes import die_with_parent

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
