"""Jobs: one method on one fold of one task with one seed, frozen and content-keyed.

The key hashes the job's canonical JSON, which includes the versions of what it depends on
(method, preprocessing settings, annotations and the task's bundles), so a stored result is
reused exactly when it would be computed again the same way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
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
    domains: int | None = None  # temporal domains of its bundles; None: the run's setting
    precision: str = "fp32"  # torch methods: fp32, or bf16 autocast (methods.base.Speed)
    # A folder of released per-subject weights, by name: the job evaluates its fold's file
    # without training (benchmark/execution/released_weights.py); its files' digest is in `versions`.
    weights: str | None = None
    # Training recipe fields the grid sets for this task (e.g. CAS(ME)^3's batch 32).
    recipe: tuple[tuple[str, Any], ...] = ()
    # An exported model's folder, by name (as `weights`), every fold starts from (its final
    # layers aside): a transfer start; the digest of its weights is in `versions`.
    start: str | None = None
    # Preprocessing settings of its bundles other than the run's (a grid's protocol axis:
    # key frames, crop policy, flow encoding, detector); their digest is in `versions`.
    preprocess: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self):
        # Order never matters: the same options in any order are the same job.
        for name in ("options", "versions", "recipe", "preprocess"):
            object.__setattr__(self, name, _frozen(dict(getattr(self, name))))

    def canonical(self) -> str:
        spec = asdict(self)
        spec["options"] = dict(self.options)
        spec["versions"] = dict(self.versions)
        spec["recipe"] = dict(self.recipe)
        spec["preprocess"] = dict(self.preprocess)
        # absent at their defaults: keys of jobs made before these fields stay the same
        if self.domains is None:
            del spec["domains"]
        if self.precision == "fp32":
            del spec["precision"]
        if self.weights is None:
            del spec["weights"]
        if not self.recipe:
            del spec["recipe"]
        if self.start is None:
            del spec["start"]
        if not self.preprocess:
            del spec["preprocess"]
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:20]

    @property
    def rng_seed(self) -> int:
        """The seed the job's randomness uses, derived from its key (so from the seed index
        too), but not from its selection rule: the same job under `last`, `val` and `oracle`
        starts from the same weights and batch stream, so the honesty table compares rules,
        not seeds."""
        key = self.key if self.selection == "last" else replace(self, selection="last").key
        return int(key[:8], 16)

    @property
    def run_key(self) -> str:
        """The key of the run a job belongs to: every field of it but the fold."""
        return replace(self, fold="").key

    @property
    def run_label(self) -> str:
        """Identifies the run a job belongs to: every fold of it shares this label."""
        options = [f"{k}={v}" for k, v in self.options]
        if self.pretrain:
            options.append(f"pretrain={self.pretrain}:{self.pretrain_budget}")
        if self.domains is not None:
            options.append(f"domains={self.domains}")
        if self.precision != "fp32":
            options.append(f"precision={self.precision}")
        if self.weights is not None:
            options.append(f"weights={self.weights}")
        if self.start is not None:
            options.append(f"start={self.start}")
        options += [f"recipe.{k}={v}" for k, v in self.recipe]
        options += [f"preprocess.{k}={v}" for k, v in self.preprocess]
        return self.method + (f"[{','.join(options)}]" if options else "")

    @classmethod
    def from_canonical(cls, text: str) -> "Job":
        spec = json.loads(text)
        spec["options"] = _frozen(spec.get("options"))
        spec["versions"] = _frozen(spec.get("versions"))
        spec["recipe"] = _frozen(spec.get("recipe"))
        spec["preprocess"] = _frozen(spec.get("preprocess"))
        return cls(**spec)
