"""The record every dataset adapter produces: one annotated clip, as its dataset writes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Clip:
    """A clip's identity, frames and labels, with nothing interpreted yet.

    `frame_template` is the path of any frame with `{n}` for its number (format specs allowed,
    e.g. `.../006_{n:05d}.jpg`), so the adapter never lists folders and a missing frame is
    found, and reported by name, only when it is read. `apex` is None where the sheet has none.
    """

    dataset: str
    subject: str
    clip: str
    emotion: str
    onset: int
    apex: int | None
    offset: int
    frame_template: str
    row: int | None = None  # the annotation row it came from, for error messages
    # A source without frames (authors' released per-clip flow images): the image's path.
    # Such a clip has no frames to read; onset, apex and offset are 0 and not used.
    image: str | None = None
    # Further images a release ships per clip beside `image` (CausalNet's apex->offset flow and
    # flow-direction maps): (bundle name, path) pairs, read into the clip's bundle by name.
    companions: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """Unique across datasets: the id predictions and caches use."""
        return f"{self.dataset}/{self.subject}/{self.clip}"

    @property
    def subject_key(self) -> str:
        """LOSO folds are over (dataset, subject)."""
        return f"{self.dataset}/{self.subject}"

    def frame_path(self, number: int) -> Path:
        return Path(self.frame_template.format(n=number))


@dataclass(frozen=True)
class Note:
    """One rule an adapter (or a task) applied to one clip or annotation row, by name.

    `action` says what happened: "dropped" (the row became no clip), "repaired" (a value was
    changed), "fell back" (a value the annotation lacks was filled in by a stated rule),
    "relabelled" (a task's list gave the label) or "kept" (flagged, used as written). `rule`
    is the same text for every clip it hits, so it can be counted; `detail` says which row and
    which values.
    """

    clip_key: str
    action: str
    rule: str
    detail: str = ""
