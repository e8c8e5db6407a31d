"""Task manifests: what planning learned of a task's data, kept so that no one prepares it
again to learn it. Planning writes one per task and bundle settings, from the folders the run
read (`RESULTS/manifests/`): its folds, its data digest (every clip, label and bundle key),
its annotation versions and what its source can serve. Tables and reports plan a grid from
them (`plan(..., from_manifests=True)`) and so never read a frame or detect a face; a task
never prepared with those settings and folders has no manifest, and its rows are left
unchecked, saying so.

A manifest holds what the data were when the task was last prepared (by `run` or
`prepare`): the rows tables choose are the jobs of that run's data.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.tasks import build_task

VERSION = 1


@dataclass(frozen=True)
class TaskFacts:
    """What planning needs of a prepared task: its folds, the digest of its usable clips,
    labels and bundles, its annotation versions, and the views its source can serve."""

    task: str
    folds: tuple[str, ...]
    data_digest: str
    annotation_versions: dict
    synthetic: bool
    source: str = ""
    served_views: tuple[str, ...] | None = None

    def as_json(self) -> dict:
        return {"version": VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, raw: dict) -> "TaskFacts":
        fields = {k: v for k, v in raw.items() if k != "version"}
        fields["folds"] = tuple(fields["folds"])
        if fields.get("served_views") is not None:
            fields["served_views"] = tuple(fields["served_views"])
        return cls(**fields)


class NotPlanned(LookupError):
    """No manifest for a task with these settings and folders: it was never prepared so."""


def manifest_path(task: str, config: RunConfig) -> Path:
    """One file per task, bundle settings and dataset folders (so `--data NAME=DIR` pointing
    elsewhere is another manifest)."""
    roots = {d: _named(config.root_of(d, must_exist=False), Path(config.results))
             for d in build_task(task).datasets}
    identity = json.dumps([task, config.preprocess.digest(), roots], sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in task)
    return Path(config.results) / "manifests" / f"{safe}-{digest}.json"


def _named(root: Path, results: Path) -> str:
    """A root inside the results folder (the generated default) by its place in it, so that a
    results folder moved or copied keeps its manifests; any other by its absolute path."""
    try:
        return "RESULTS/" + str(root.resolve().relative_to(results.resolve()))
    except ValueError:
        return str(root.resolve())


def write_manifest(facts: TaskFacts, config: RunConfig) -> Path:
    """Written whole (a temporary file renamed); a manifest that cannot be written is only a
    loss of speed for later tables, never of a result, so an unwritable folder is passed."""
    path = manifest_path(facts.task, config)
    if path.exists() and not _is_manifest_of(path, facts.task):
        print(f"not overwritten: {path} is not a task manifest mer-bench wrote; later tables "
              f"will check {facts.task}'s rows only once it is moved away", file=sys.stderr)
        return path
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps(facts.as_json(), indent=1) + "\n")
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)  # ours: named by this process, never renamed into place
    return path


def _is_manifest_of(path: Path, task: str) -> bool:
    """Only a file that reads as a manifest of this task is replaced."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and "version" in raw and raw.get("task") == task


def read_manifest(task: str, config: RunConfig) -> TaskFacts:
    path = manifest_path(task, config)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotPlanned(f"{task}: not prepared with these settings and folders here (no "
                         f"{path.name}); `run` or `prepare` it to check its rows") from None
    except (OSError, ValueError) as error:
        raise NotPlanned(f"{task}: its manifest {path} cannot be read ({error})") from None
    if raw.get("version") != VERSION:
        raise NotPlanned(f"{task}: its manifest {path} is of another version")
    return TaskFacts.from_json(raw)
