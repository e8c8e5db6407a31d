"""A small synthetic micro-expression set written exactly in the CASME II layout.

It lets the demo and the tests run end to end without the licensed dataset: the CASME II
adapter reads it like the real thing. Every subject is the public-domain astronaut photo
re-posed on its own background, every clip one small local deformation (the class) with
distractors (synthetic_faces.py draws them). Everything is drawn from the seed with operations
that give the same bits on every machine and library version, so the same spec gives the same
bytes everywhere (tests/datasets/test_synthetic_digest.py pins the default's digest).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mer_bench.benchmark.storage.lifetimes import is_stale, owner_tag
from mer_bench.datasets.plain_xlsx import write_xlsx
from mer_bench.datasets.synthetic_faces import make_subject, write_clip

GENERATOR_VERSION = "2.0"  # bump whenever the output for a given spec changes (2.0: exact)
SHEET_NAME = "CASME2-coding-synthetic.xlsx"
EMOTIONS = ("happiness", "surprise", "disgust", "repression", "others")

MARKER_NAME = ".synthetic-complete.json"
# The 2014 CASME II sheet's columns; the blank headers read back as "Unnamed: 2" / "Unnamed: 6".
SHEET_COLUMNS = (
    "Subject", "Filename", "", "OnsetFrame", "ApexFrame", "OffsetFrame", "", "Action Units",
    "Estimated Emotion",
)
# Overall class shares, roughly CASME II's imbalance.
CLASS_SHARES = {"happiness": 0.14, "surprise": 0.14, "disgust": 0.25, "repression": 0.12,
                "others": 0.35}
ACTION_UNITS = {"happiness": ("12",), "surprise": ("1+2",), "disgust": ("9", "4+9"),
                "repression": ("17", "14"), "others": ("4", "7")}

# Random-stream tags so the layout, subject and clip streams never share a seed (the other two:
# synthetic_faces.py).
_LAYOUT = 0


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate; equal specs (and GENERATOR_VERSION) give identical datasets."""

    seed: int = 0
    subjects: int = 10
    clips_per_subject: int = 11  # average; subjects get uneven counts
    frame_size: tuple[int, int] = (320, 256)  # width, height
    motion_scale: float = 1.0  # multiplies every expression amplitude ('macro' sets: ~4)

    def __post_init__(self):
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.subjects < 1 or self.subjects * self.clips_per_subject < len(EMOTIONS):
            raise ValueError(
                f"need >= 1 subject and >= {len(EMOTIONS)} clips in all so every class appears, "
                f"got {self.subjects} subjects x {self.clips_per_subject} clips"
            )
        if len(self.frame_size) != 2 or min(self.frame_size) < 64:
            raise ValueError(
                f"frame_size must be (width, height), each >= 64, got {self.frame_size}")
        if self.motion_scale <= 0:
            raise ValueError(f"motion_scale must be > 0, got {self.motion_scale}")


@dataclass(frozen=True)
class _ClipRow:
    subject: int
    filename: str
    onset: int
    apex: int
    offset: int
    action_units: str
    emotion: str


def generate(root: Path, spec: SyntheticSpec = SyntheticSpec(), progress: bool = False) -> Path:
    """Writes the dataset under root (root/SHEET_NAME, root/sub01/EP01_01/img1.jpg ...).

    Returns root. Cached: a root that already holds this spec at this GENERATOR_VERSION (its
    marker file is written last) is returned at once, untouched. Written safely: everything
    goes to a temporary sibling folder that is renamed to root at the end, so a killed run
    never leaves a half-written root (the next generation removes a killed one's folder). An existing root is replaced only if it is empty or an
    older synthetic set; anything else raises FileExistsError rather than being deleted.
    """
    root = Path(root)
    marker = {"generator_version": GENERATOR_VERSION, "spec": asdict(spec)}
    if _is_complete(root, marker):
        return root
    if root.exists() and not _replaceable(root):
        raise FileExistsError(f"{root} exists and is not a synthetic dataset; not overwriting it")
    root.parent.mkdir(parents=True, exist_ok=True)
    for left in root.parent.glob(f".{root.name}.partial-*"):  # of a killed generation
        if is_stale(left):
            shutil.rmtree(left, ignore_errors=True)
    partial = root.with_name(f".{root.name}.partial-{owner_tag()}{uuid.uuid4().hex[:8]}")
    try:
        partial.mkdir()
        _write_dataset(partial, spec, progress)
        (partial / MARKER_NAME).write_text(json.dumps(marker, indent=1, sort_keys=True))
        if _is_complete(root, marker):  # a concurrent run finished first
            shutil.rmtree(partial)
            return root
        if root.exists():
            stale = root.with_name(f".{root.name}.stale-{uuid.uuid4().hex[:8]}")
            os.replace(root, stale)
            os.replace(partial, root)
            shutil.rmtree(stale)
        else:
            os.replace(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return root


def generated_tree(folder: Path) -> Path | None:
    """The generated synthetic set `folder` lies in (its root, which holds MARKER_NAME), or
    None: what makes data synthetic is what it is, not the adapter or root it is read
    through (benchmark/protocol/tasks.py asks this of every clip's folder)."""
    folder = Path(folder).absolute()
    for candidate in (folder, *folder.parents):
        if (candidate / MARKER_NAME).is_file():
            return candidate
    return None


def _is_complete(root: Path, marker: dict) -> bool:
    try:
        found = json.loads((root / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return found == json.loads(json.dumps(marker))


def _replaceable(root: Path) -> bool:
    return root.is_dir() and ((root / MARKER_NAME).is_file() or not any(root.iterdir()))


def _write_dataset(folder: Path, spec: SyntheticSpec, progress: bool) -> None:
    """Subjects render in threads (OpenCV and numpy release the GIL); each clip has its own
    random stream, so the order they finish in does not change a byte."""
    rows = layout(spec)
    _write_sheet(folder / SHEET_NAME, rows)

    def write_subject(subject: int) -> None:
        look = make_subject(spec, subject)
        for index, row in enumerate(r for r in rows if r.subject == subject):
            write_clip(folder / f"sub{subject:02d}" / row.filename, row, look, spec, index)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        jobs = [pool.submit(write_subject, s) for s in range(1, spec.subjects + 1)]
        try:
            for done, job in enumerate(as_completed(jobs), start=1):
                job.result()
                if progress:
                    print(f"synthetic dataset: {done}/{spec.subjects} subjects", file=sys.stderr)
        except BaseException:  # a failure or Ctrl-C: do not render the remaining subjects
            pool.shutdown(cancel_futures=True)
            raise


def layout(spec: SyntheticSpec) -> list[_ClipRow]:
    """The coding sheet: uneven clips per subject, imbalanced classes, CASME II-like names."""
    rng = np.random.default_rng((spec.seed, _LAYOUT))
    total = spec.subjects * spec.clips_per_subject
    per_subject = 1 + _apportion(total - spec.subjects, rng.uniform(0.5, 1.5, spec.subjects))
    per_class = 1 + _apportion(total - len(EMOTIONS), [CLASS_SHARES[e] for e in EMOTIONS])
    labels = np.repeat(np.arange(len(EMOTIONS)), per_class)
    # Reshuffle until each subject shows several classes, as real subjects do.
    for _ in range(1000):
        rng.shuffle(labels)
        groups = np.split(labels, np.cumsum(per_subject)[:-1])
        if all(len(set(g)) >= min(3, len(g)) for g in groups):
            break
    rows = []
    for subject, group in enumerate(groups, start=1):
        episodes = np.sort(rng.integers(1, 20, len(group)))
        taken: dict[int, int] = {}
        for episode, label in zip(episodes, group):
            taken[episode] = taken.get(episode, 0) + 1
            emotion = EMOTIONS[label]
            length = int(rng.integers(8, 15))
            onset = int(rng.integers(1, 41))
            offset = onset + length - 1
            apex = int(np.clip(onset + round((length - 1) * rng.uniform(0.3, 0.6)), onset + 1,
                               offset - 1))
            units = ACTION_UNITS[emotion][int(rng.integers(len(ACTION_UNITS[emotion])))]
            rows.append(_ClipRow(subject, f"EP{episode:02d}_{taken[episode]:02d}", onset, apex,
                                 offset, units, emotion))
    return rows


def _apportion(total: int, weights) -> np.ndarray:
    """Largest-remainder split of `total` into integers proportional to `weights`."""
    exact = total * np.asarray(weights, np.float64) / np.sum(weights)
    parts = np.floor(exact).astype(int)
    order = np.argsort(parts - exact, kind="stable")
    parts[order[: total - parts.sum()]] += 1
    return parts


def _write_sheet(path: Path, rows: list[_ClipRow]) -> None:
    """Sheet1 with the real column order, written byte for byte (plain_xlsx.py): the harness
    hashes it into every key of the task."""
    write_xlsx(path, "Sheet1", list(SHEET_COLUMNS),
               [(int(r.subject), r.filename, None, int(r.onset), int(r.apex), int(r.offset), None,
                 r.action_units, r.emotion) for r in rows])
