"""Shared fixtures: tiny frame trees in CASME II's layout, made at test time."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from mer_bench.datasets.clip import Clip


def face_frame(shift: float = 0.0) -> np.ndarray:
    """The public-domain astronaut face (BGR, 240x220), its lower half moved `shift` px up."""
    face = cv2.cvtColor(data.astronaut()[20:260, 110:330], cv2.COLOR_RGB2BGR)
    if shift:
        rows, cols = np.indices(face.shape[:2], dtype=np.float32)
        weight = np.clip((rows - 120) / 60, 0, 1)
        face = cv2.remap(face, cols, (rows + float(shift) * weight).astype(np.float32),
                         cv2.INTER_LINEAR)
    return face


def write_clip(root: Path, subject: str, name: str, frames: dict[int, np.ndarray]) -> Path:
    folder = root / subject / name
    folder.mkdir(parents=True, exist_ok=True)
    for number, image in frames.items():
        cv2.imwrite(str(folder / f"img{number}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def casme_clip(root: Path, subject: str, name: str, onset=1, apex=3, offset=5) -> Clip:
    return Clip("casme2", subject, name, "happiness", onset, apex, offset,
                str(root / subject / name / "img{n}.jpg"))


@pytest.fixture
def face_clip(tmp_path) -> Clip:
    """A five-frame clip whose lower face moves up 2 px at the apex."""
    write_clip(tmp_path, "sub01", "EP01_01",
               {n: face_frame(shift=[0, 1, 2, 1, 0][n - 1]) for n in range(1, 6)})
    return casme_clip(tmp_path, "sub01", "EP01_01")


REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n N: N workers share the cores, so each
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # computes on one thread (torch reads this)


def _prepared_home() -> Path:
    """Where the prepared synthetic default is kept between pytest sessions: a folder keyed
    by every source file of the package and the versions of the libraries that make its
    bundles, so that CI's stages and a developer's reruns prepare it once, and any change to
    them prepares it anew. Such folders left a day by an older key are removed (each holds
    the marker this fixture writes; nothing else there is touched)."""
    import hashlib
    import tempfile

    import cv2
    import skimage
    import torch

    digest = hashlib.sha256()
    for top in ("benchmark", "datasets", "methods", "mer_bench"):
        for path in sorted((REPO / top).rglob("*.py")):
            digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    digest.update(f"{np.__version__} {cv2.__version__} {skimage.__version__} "
                  f"{torch.__version__}".encode())
    home = Path(tempfile.gettempdir()) / "mer-bench-tests"
    sweep_prepared(home, keep=digest.hexdigest()[:16])
    return home / digest.hexdigest()[:16]


PREPARED_MARKER = "made-by-mer-bench-tests"


def sweep_prepared(home: Path, keep: str, older_than_s: float = 86400) -> None:
    """Removes the prepared folders under `home` that this fixture made (they hold its
    marker) for another key, left longer than `older_than_s`; nothing without the marker."""
    import shutil
    import time

    for marker in home.glob(f"*/{PREPARED_MARKER}"):
        if marker.parent.name != keep and marker.stat().st_mtime < time.time() - older_than_s:
            shutil.rmtree(marker.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def _prepared_synthetic() -> Path:
    """A results folder with the synthetic default generated and preprocessed, made once for
    this checkout (`_prepared_home`): the first pytest process to need it makes it and the
    others, xdist workers or other sessions, wait for it (its 220 TV-L1 flows are most of a
    minute on 2 cores). Tests copy it (`results`), never write to it."""
    from filelock import FileLock

    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.execution.planning import prepare_task

    home = _prepared_home()
    home.mkdir(parents=True, exist_ok=True)
    results, done = home / "results", home / PREPARED_MARKER
    with FileLock(str(home / "prepared.lock")):
        if not done.exists():
            prepare_task("synthetic-5", RunConfig(results=results, progress=False), workers=2)
            done.touch()
    return results


@pytest.fixture
def results(_prepared_synthetic, tmp_path) -> Path:
    """A fresh copy of the prepared results folder: the store empty, the caches warm."""
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(_prepared_synthetic, copy)
    return copy


@pytest.fixture(scope="session")
def synthetic_samples(_prepared_synthetic):
    """16 prepared synthetic clips of two subjects: (bundles, labels, subjects, clip keys)."""
    from filelock import FileLock

    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.execution.planning import prepare_task

    config = RunConfig(results=_prepared_synthetic, progress=False)
    with FileLock(str(_prepared_synthetic.parent / "prepared.lock")):
        prepared = prepare_task("synthetic-5", config)  # all cached; its manifest rewritten
    subjects = sorted({s.clip.subject for s in prepared.data.samples})[:2]
    samples = [s for s in prepared.data.samples if s.clip.subject in subjects][:16]
    bundles = [config.cache.load(prepared.bundle_keys[s.clip.key]) for s in samples]
    return (bundles, np.array([s.label for s in samples]),
            tuple(s.clip.subject for s in samples), tuple(s.clip.key for s in samples))
