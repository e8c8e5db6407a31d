"""The synthetic default is the same bytes on every machine: its digest is a constant.

Every bundle key, job key and seed of the default task derives from these bytes, so any drift
(a library that draws a pixel differently, a sheet written with other bytes) would change
every number the docs show; it fails here first. Generator 2.0 gave these digests with numpy
1.26.4 and 2.4.6, OpenCV 4.10.0 and 5.0.0, scikit-image 0.22.0 and 0.26.0, Pillow 10.4.0 and
13.0.0, pandas 2.2.3 and 3.1.2 (two venvs, 2026-12-07).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mer_bench.datasets.synthetic_frames import GENERATOR_VERSION, SyntheticSpec, generate

# sha256 over every file's relative path and bytes, in path order.
DEFAULT_DIGEST = "a2322b69b6345f3bfba4c5f0b1cc549ac531ae8a89299f43e6053405d47ec0d9"
SMALL_DIGEST = "65127d41f4f0079b0d0a7b94888bbc2b2f4389e425672b6cbbe2c495867cbd65"
SMALL = SyntheticSpec(seed=3, subjects=2, clips_per_subject=3, frame_size=(96, 80))


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def test_a_small_set_is_the_pinned_bytes(tmp_path):
    assert GENERATOR_VERSION == "2.0"  # a new version pins new digests here
    assert tree_digest(generate(tmp_path / "small", SMALL)) == SMALL_DIGEST


def test_the_default_set_is_the_pinned_bytes(_prepared_synthetic):
    root = _prepared_synthetic / "data" / "synthetic"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) > 1000  # the whole set: 110 clips of 8 to 14 frames, its sheet, its marker
    assert tree_digest(root) == DEFAULT_DIGEST
