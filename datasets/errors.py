"""Errors that name the dataset, the clip, the file or row, and what was expected."""

from __future__ import annotations

import errno


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


class MachineFault(DatasetError):
    """The machine, not the data: a disk full, a read-only or forbidden results folder. The
    run stops with the reason instead of failing (or dropping) one job or clip after another."""


# A write error with one of these is the machine's, whichever file met it.
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
