"""Shared fixtures: tiny frame trees in CASME II's layout, made at test time."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def _prepared_synthetic(tmp_path_factory) -> Path:
    """A results folder with the synthetic default generated and preprocessed, made once."""
    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.execution.planning import prepare_task

    results = tmp_path_factory.mktemp("prepared") / "results"
    prepare_task("synthetic-5", RunConfig(results=results, progress=False), workers=2)
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
    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.execution.planning import prepare_task

    config = RunConfig(results=_prepared_synthetic, progress=False)
    prepared = prepare_task("synthetic-5", config)
    subjects = sorted({s.clip.subject for s in prepared.data.samples})[:2]
    samples = [s for s in prepared.data.samples if s.clip.subject in subjects][:16]
    bundles = [config.cache.load(prepared.bundle_keys[s.clip.key]) for s in samples]
    return (bundles, np.array([s.label for s in samples]),
            tuple(s.clip.subject for s in samples), tuple(s.clip.key for s in samples))
