"""How a run is set up: where data, results and released weights are, and how jobs run.
Nothing here changes a result (that is each job's)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from mer_bench.benchmark.protocol.registry import load_plugin
from mer_bench.benchmark.storage.store import Store
from mer_bench.datasets.bundle_cache import BundleCache
from mer_bench.datasets.preprocess import PreprocessSettings


@dataclass(frozen=True)
class RunConfig:
    """Where things are and how to run; nothing here changes a result (that is the job's)."""

    results: Path = Path("results")
    data_roots: tuple[tuple[str, str], ...] = ()  # dataset name -> folder
    default_data_root: str | None = None  # for datasets not named in data_roots
    plugins: tuple[str, ...] = ()
    preprocess: PreprocessSettings = PreprocessSettings()
    device: str = "auto"
    workers: int = 1  # job workers
    # CPU threads of each job; None: the cores shared out among the workers. Jobs give the
    # same bits under any executor only with the same count (stored with every job).
    threads: int | None = None
    # Artefacts every job keeps beside its result: "weights", "features" (off: stores small).
    keep: tuple[str, ...] = ()
    prepare_workers: int = 1  # preprocessing workers
    progress: bool = True
    # Folds of one run trained at once in one process (methods/fold_parallel.py); 1 = off,
    # 0 = chosen for the device (auto_fold_parallel).
    # Same data, seeds, budgets and rule per fold; dropout masks differ, so results are the
    # same in distribution and share the job key.
    fold_parallel: int = 1
    executor: str = "local"  # local (serial / worker processes), ray or slurm
    ray_address: str | None = None  # None: a local Ray cluster; "auto" or host:port: a running one
    gpus_per_job: float = 0.0  # Ray: the GPU share of each job (e.g. 0.25: four jobs per GPU)
    # SLURM: `--slurm KEY=VALUE` settings (over the grid's [slurm] table); `detach`: submit the
    # array and return (`mer-bench status` follows it).
    slurm: tuple[tuple[str, Any], ...] = ()
    detach: bool = False
    # Speed-ups that compute the same function (methods.base.Speed); bf16 is the job's.
    compile: bool = False  # torch.compile the training step (sequential training only)
    channels_last: bool | None = None  # None: each method's own layout
    # Folders of released per-subject weights, by name (a grid method's `weights`).
    weights_dirs: tuple[tuple[str, str], ...] = ()

    def weights_folder(self, name: str) -> Path:
        folders = dict(self.weights_dirs)
        if name not in folders:
            given = ", ".join(f"{n} ({f})" for n, f in folders.items()) or "none"
            raise ValueError(f"a method reads the released weights {name!r}: give their "
                             f"folder with --weights-dir {name}=DIR (or a folder named {name}); given: "
                             f"{given}")
        return Path(folders[name])

    def root_of(self, dataset: str, must_exist: bool = True) -> Path:
        """`--data NAME=DIR`, else `--data-root DIR`: its subfolder named like the dataset
        (case-insensitive, for tasks over several datasets) if there is one, else DIR itself;
        else results/data/<name>, the default root, where generated sets are made.

        A root the user gave that does not exist is an error (`must_exist`), never created:
        a typo must not become a freshly generated synthetic set read as a real dataset."""
        named = dict(self.data_roots)
        if dataset in named:
            return _existing(Path(named[dataset]), f"--data {dataset}=DIR", must_exist)
        if self.default_data_root:
            root = _existing(Path(self.default_data_root), "--data-root", must_exist)
            if root.is_dir():
                for entry in sorted(root.iterdir()):
                    if entry.name.lower() == dataset.lower() and entry.is_dir():
                        return entry
            return root
        return Path(self.results) / "data" / dataset

    @cached_property
    def store(self) -> Store:
        """One Store per config, so that what it quarantines is reported once, at the end."""
        return Store(self.results)

    @property
    def cache(self) -> BundleCache:
        return BundleCache(Path(self.results) / "cache" / "bundles", self.preprocess)

    def load_plugins(self) -> None:
        for plugin in self.plugins:
            load_plugin(plugin)

    def speed(self, precision: str):
        """A job's speed settings: its precision and this run's compile / layout choices."""
        from mer_bench.methods.base import Speed

        return Speed(precision, self.compile, self.channels_last)

    def with_domains(self, domains: int | None) -> "RunConfig":
        """This configuration with bundles of `domains` temporal domains (None: unchanged)."""
        if domains is None or domains == self.preprocess.domains:
            return self
        return replace(self, preprocess=replace(self.preprocess, domains=domains))

    def for_bundles(self, spec) -> "RunConfig":
        """This configuration with the bundles a job (or grid method) reads: its temporal
        domains and its preprocessing settings (`preprocess`; a RetinaFace weights file by
        its --weights-dir name), else the run's."""
        config = self.with_domains(spec.domains)
        overrides = dict(getattr(spec, "preprocess", ()))
        if not overrides:
            return config
        if "detector_weights" in overrides:
            overrides["detector_weights"] = str(self.weights_folder(overrides["detector_weights"]))
        return replace(config, preprocess=replace(config.preprocess, **overrides))


def _existing(root: Path, option: str, must_exist: bool) -> Path:
    if must_exist and not root.exists():
        from mer_bench.datasets.errors import DatasetError

        raise DatasetError(f"{option}: {root} does not exist (a data root is read, never "
                           "created; only the default, RESULTS/data/<dataset>, is generated)")
    return root
