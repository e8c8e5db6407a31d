"""Nothing outlives its run: worker processes die with the process that started them, and a
temporary file or folder carries its writer's host and process id (`owner_tag`), so that a
sweep removes only what a writer that has ended left behind (or what is old), never the work
of a writer still running beside it. Once renamed into place, a temporary file or folder has
the permissions the user's umask gives (tempfile makes them private).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

STALE_S = 3600.0  # left this long, a temporary file is a killed writer's, whoever wrote it
TAG = re.compile(r"~(?P<host>[^~/]+)~(?P<pid>\d+)~")


def die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (e.g. SIGKILL), so no orphan
    goes on working, or holding multiprocessing's resource tracker open. Elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def owner_tag() -> str:
    """`~host~pid~`: put in a temporary name, it says who is writing it."""
    return f"~{socket.gethostname()}~{os.getpid()}~"


def writer_gone(name: str) -> bool:
    """Whether the writer a temporary name was tagged with is a process of this host that
    has ended (another host's writer cannot be checked from here: False)."""
    match = TAG.search(name)
    if not match or match["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(match["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def is_stale(path: Path, older_than_s: float = STALE_S) -> bool:
    """A temporary path to sweep: its writer has ended, or it is older than `older_than_s`."""
    try:
        return writer_gone(path.name) or path.stat().st_mtime < time.time() - older_than_s
    except OSError:  # gone already
        return False


def user_umask() -> int:
    """The process's umask: read from /proc on Linux (setting it to read it back would
    change it for every thread meanwhile), else set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def as_umask_allows(path: Path, folder: bool = True) -> None:
    """Gives a temporary file or folder (created private by tempfile) the permissions the
    user's umask gives anything else they create, so a store shared with a group stays
    readable to it."""
    os.chmod(path, (0o777 if folder else 0o666) & ~user_umask())
