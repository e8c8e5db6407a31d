"""Outputs written where a user points the harness (a report site, an exported model, a
picture): the harness replaces only what it wrote and can prove it wrote.

A folder output is filled in a fresh temporary folder beside its target, gets a manifest
(OWNED_MANIFEST: its kind and the sha256 of every file written) and is then swapped in by
renames, so a failure leaves the previous output whole. An existing folder is replaced only
when it is empty or carries a manifest of the same kind and holds nothing else: no file the
manifest does not list, none changed since. A single file (a PNG, a JSON) is replaced only
when it carries the harness's mark (PNG text `Software`, a JSON `written_by` field). Anything
else is refused with its path and what it holds: a thesis folder, a results folder, a
symbolic link are never deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from mer_bench.benchmark.storage.lifetimes import as_umask_allows, owner_tag

OWNED_MANIFEST = ".mer-bench-output.json"
WRITER = "mer-bench"  # the mark of files the harness writes (PNG Software, JSON written_by)
PNG_MARK = {"Software": WRITER}  # matplotlib's savefig(metadata=...)


class RefusedOutput(ValueError):
    """An output path that holds something the harness did not write, or cannot prove it did."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(paths: list[str], limit: int = 6) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def check_replaceable_folder(folder: Path, kind: str) -> None:
    """Raises RefusedOutput unless `folder` is absent, empty, or a `kind` output written by
    the harness and left as it wrote it."""
    if folder.is_symlink():
        raise RefusedOutput(f"{folder} is a symbolic link (to {os.readlink(folder)}); the "
                            f"{kind} is not written through it: give a real folder")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise RefusedOutput(f"{folder} is a file, not a folder; the {kind} was not written")
    held = sorted(p.name + ("/" if p.is_dir() and not p.is_symlink() else "")
                  for p in folder.iterdir())  # the top level only: `--out ~` is not walked
    if not held:
        return
    refuse = (f"{folder} is not a {kind} written by mer-bench, so it is not replaced; "
              "choose a new or empty folder")
    manifest = folder / OWNED_MANIFEST
    try:
        recorded = json.loads(manifest.read_text())
        files = dict(recorded["files"])
        written_kind = recorded["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        raise RefusedOutput(f"{refuse} (no readable {OWNED_MANIFEST}; it holds "
                            f"{_listing(held)})") from None
    if written_kind != kind:
        raise RefusedOutput(f"{folder} holds a mer-bench {written_kind}, not a {kind}; it is "
                            "not replaced: choose a new or empty folder")
    folders = {parent.as_posix() for name in files for parent in Path(name).parents}
    foreign, changed = [], []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if name == OWNED_MANIFEST or (path.is_dir() and not path.is_symlink()
                                      and name in folders):
            continue
        if path.is_symlink() or path.is_dir() or name not in files:
            foreign.append(name)
        elif _digest(path) != files[name]:
            changed.append(name)
    if foreign:
        raise RefusedOutput(f"{refuse} (it holds {_listing(foreign)}, which mer-bench did "
                            "not write there)")
    if changed:
        raise RefusedOutput(f"{refuse} ({_listing(changed)} changed since mer-bench wrote "
                            f"{'it' if len(changed) == 1 else 'them'})")


def write_folder(folder: str | Path, kind: str, fill: Callable[[Path], None]) -> Path:
    """Writes a `kind` output folder whole or not at all: `fill(partial)` writes its files
    into a fresh temporary folder, which gets the manifest and replaces `folder` (refused
    unless check_replaceable_folder allows it). Returns `folder`."""
    folder = Path(folder)
    check_replaceable_folder(folder, kind)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial{owner_tag()}",
                                    dir=folder.parent))
    try:
        as_umask_allows(partial)
        fill(partial)
        for path in partial.rglob("*"):  # libraries may write private files (safetensors)
            as_umask_allows(path, folder=path.is_dir())
        files = {p.relative_to(partial).as_posix(): _digest(p)
                 for p in sorted(partial.rglob("*")) if p.is_file()}
        (partial / OWNED_MANIFEST).write_text(json.dumps(
            {"kind": kind, "written_by": WRITER, "files": files}, indent=1, sort_keys=True))
        check_replaceable_folder(folder, kind)  # again: it may have changed while we wrote
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old{owner_tag()}{uuid.uuid4().hex[:8]}")
            os.rename(folder, old)
            os.rename(partial, folder)
            shutil.rmtree(old)  # proven ours (or empty) just above
        else:
            os.rename(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # made by mkdtemp here: ours
    return folder


def _marked(path: Path) -> bool:
    """Whether an existing file carries the harness's mark."""
    if path.suffix.lower() == ".png":
        try:
            from PIL import Image

            with Image.open(path) as image:
                return str(image.info.get("Software", "")).startswith(WRITER)
        except (OSError, ValueError):
            return False
    try:
        return json.loads(path.read_text()).get("written_by", "").startswith(WRITER)
    except (OSError, ValueError, AttributeError):
        return False


def check_replaceable_file(path: Path, what: str) -> None:
    """Raises RefusedOutput unless `path` is absent or a file the harness wrote (its mark)."""
    if path.is_symlink():
        raise RefusedOutput(f"{path} is a symbolic link (to {os.readlink(path)}); the {what} "
                            "is not written through it")
    if path.exists() and (path.is_dir() or not _marked(path)):
        raise RefusedOutput(f"{path} exists and was not written by mer-bench; the {what} "
                            "does not replace it: choose another name")


def write_file(path: str | Path, what: str, write: Callable[[Path], None],
               guard: bool = True) -> Path:
    """Writes one file through a temporary sibling and a rename; with `guard` (a path the
    user named), refusing to replace a file the harness did not write
    (check_replaceable_file). `write(temp)` gives the file its mark: PNGs with the PNG_MARK
    metadata, JSON with `written_by`."""
    path = Path(path)
    if guard:
        check_replaceable_file(path, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}{owner_tag()}", suffix=path.suffix,
                                    dir=path.parent)
    os.close(handle)
    temp = Path(name)
    try:
        as_umask_allows(temp, folder=False)
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path
