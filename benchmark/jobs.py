"""Jobs: one method on one fold of one task with one seed, frozen and content-keyed.

The key hashes the job's canonical JSON, which includes the versions of what it depends on
(method, preprocessing settings, annotations and the task's bundles), so a stored result is
reused exactly when it would be computed again the same way.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def _frozen(mapping: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((mapping or {}).items()))


@dataclass(frozen=True)
class Job:
    method: str
    task: str
    fold: str  # the held-out subject, "dataset/subject"
    seed: int = 0
    selection: str = "last"
    budget: int | None = None  # training iterations; None: the method's default
    options: tuple[tuple[str, Any], ...] = ()
    versions: tuple[tuple[str, str], ...] = ()
    pretrain: str | None = None  # task whose checkpoint the model starts from (e.g. ckplus-7)
    pretrain_budget: int | None = None

    def __post_init__(self):
        # Order never matters: the same options in any order are the same job.
        object.__setattr__(self, "options", _frozen(dict(self.options)))
        object.__setattr__(self, "versions", _frozen(dict(self.versions)))

    def canonical(self) -> str:
        spec = asdict(self)
        spec["options"] = dict(self.options)
        spec["versions"] = dict(self.versions)
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:20]

    @property
    def rng_seed(self) -> int:
        """The seed the job's randomness uses, derived from its key (so from the seed index too)."""
        return int(self.key[:8], 16)

    @property
    def run_label(self) -> str:
        """Identifies the run a job belongs to: every fold of it shares this label."""
        options = [f"{k}={v}" for k, v in self.options]
        if self.pretrain:
            options.append(f"pretrain={self.pretrain}:{self.pretrain_budget}")
        return self.method + (f"[{','.join(options)}]" if options else "")

    @classmethod
    def from_canonical(cls, text: str) -> "Job":
        spec = json.loads(text)
        spec["options"] = _frozen(spec.get("options"))
        spec["versions"] = _frozen(spec.get("versions"))
        return cls(**spec)


@dataclass(frozen=True)
class MethodSpec:
    """A method of a grid: registry name, options for its factory, its budget."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()
    budget: int | None = None
    pretrain: str | None = None
    pretrain_budget: int | None = None

    @classmethod
    def make(cls, name: str, options: dict[str, Any] | None = None, budget: int | None = None,
             pretrain: str | None = None, pretrain_budget: int | None = None) -> "MethodSpec":
        return cls(name, _frozen(options), budget, pretrain, pretrain_budget)


@dataclass(frozen=True)
class Grid:
    """Methods x tasks x seeds under one selection rule; expands to jobs once folds are known."""

    methods: tuple[MethodSpec, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    selection: str = "last"

    def jobs(self, folds: dict[str, list[str]], versions: dict[tuple[str, str], dict]) -> list[Job]:
        """`folds`: task -> held-out subjects; `versions`: (method, task) -> version strings."""
        return [
            Job(method=spec.name, task=task, fold=fold, seed=seed, selection=self.selection,
                budget=spec.budget, options=spec.options,
                versions=_frozen(versions[(spec.name, task)]), pretrain=spec.pretrain,
                pretrain_budget=spec.pretrain_budget)
            for spec in self.methods
            for task in self.tasks
            for seed in self.seeds
            for fold in folds[task]
        ]


def load_grid(path: str | Path) -> Grid:
    """A grid from TOML: `tasks`, `seeds`, `selection` and `[[methods]]` (name, options, budget)."""
    with open(path, "rb") as file:
        raw = tomllib.load(file)
    unknown = set(raw) - {"tasks", "seeds", "selection", "methods", "description"}
    if unknown:
        raise ValueError(f"grid {path}: unknown keys {sorted(unknown)}")
    try:
        methods = tuple(MethodSpec.make(m["name"], m.get("options"), m.get("budget"),
                                        m.get("pretrain"), m.get("pretrain_budget"))
                        for m in raw["methods"])
        return Grid(methods, tuple(raw["tasks"]), tuple(raw.get("seeds", [0])),
                    raw.get("selection", "last"))
    except KeyError as error:
        raise ValueError(f"grid {path}: missing key {error}") from None
