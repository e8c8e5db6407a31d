"""Errors that name the dataset, the clip, the file or row, and what was expected."""

from __future__ import annotations


class DatasetError(Exception):
    """The dataset as a whole cannot be read: a missing folder or sheet, a missing column."""


class ClipError(Exception):
    """One clip cannot be used; the run reports it and goes on without it."""

    def __init__(self, clip_key: str, problem: str, path: str | None = None):
        self.clip_key = clip_key
        self.problem = problem
        self.path = path
        where = f" ({path})" if path else ""
        super().__init__(f"{clip_key}: {problem}{where}")


class FaceNotFound(ClipError):
    """The face detector found no face on the clip's first frame."""
