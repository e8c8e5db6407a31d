"""From a grid to stored results: prepare the tasks, plan the jobs, run what is not done yet.

Preparation happens once, in the calling process (with its own worker pool); jobs then read
the cached bundles. A job that fails is recorded with its traceback and the rest go on.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from mer_bench.benchmark.environment import describe
from mer_bench.benchmark.executors import make_executor, visible_gpus
from mer_bench.benchmark.folds import fold_of
from mer_bench.benchmark.jobs import Grid, Job
from mer_bench.benchmark.metrics import score
from mer_bench.benchmark.pretraining import ensure_checkpoint, pretraining_job
from mer_bench.benchmark.registry import load_plugin
from mer_bench.benchmark.released_weights import folder_digest, match_weights
from mer_bench.benchmark.store import Predictions, Store
from mer_bench.benchmark.tasks import TASKS, TaskData, load_task
from mer_bench.datasets.preprocess import BundleCache, PrepareReport, PreprocessSettings, prepare_clips
from mer_bench.datasets.views import build_view, view_version


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
    prepare_workers: int = 1  # preprocessing workers
    progress: bool = True
    # Folds of one run trained at once in one process (methods/fold_parallel.py); 1 = off,
    # 0 = chosen for the device (auto_fold_parallel).
    # Same data, seeds, budgets and rule per fold; dropout masks differ, so results are the
    # same in distribution and share the job key.
    fold_parallel: int = 1
    executor: str = "local"  # local (serial / worker processes) or ray
    ray_address: str | None = None  # None: a local Ray cluster; "auto" or host:port: a running one
    gpus_per_job: float = 0.0  # Ray: the GPU share of each job (e.g. 0.25: four jobs per GPU)
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

    def root_of(self, dataset: str) -> Path:
        """`--data NAME=DIR`, else `--data-root DIR`: its subfolder named like the dataset
        (case-insensitive, for tasks over several datasets) if there is one, else DIR itself;
        else results/data/<name>."""
        named = dict(self.data_roots)
        if dataset in named:
            return Path(named[dataset])
        if self.default_data_root:
            root = Path(self.default_data_root)
            if root.is_dir():
                for entry in sorted(root.iterdir()):
                    if entry.name.lower() == dataset.lower() and entry.is_dir():
                        return entry
            return root
        return Path(self.results) / "data" / dataset

    @property
    def store(self) -> Store:
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


@dataclass
class PreparedTask:
    """A task's usable samples (preprocessing failures excluded and listed) and their bundles."""

    data: TaskData
    bundle_keys: dict[str, str]
    report: PrepareReport

    def data_digest(self) -> str:
        """Changes whenever a frame, a label or the set of usable clips changes."""
        digest = hashlib.sha256()
        for sample in self.data.samples:
            digest.update(f"{sample.clip.key}:{sample.label}:{self.bundle_keys[sample.clip.key]};"
                          .encode())
        return digest.hexdigest()[:16]


def prepare_task(name: str, config: RunConfig, workers: int = 1,
                 progress: bool = False) -> PreparedTask:
    task = TASKS.build(name)
    data = load_task(task, {d: config.root_of(d) for d in task.datasets})
    clips = [sample.clip for sample in data.samples]
    report = prepare_clips(clips, config.cache, workers=workers, progress=progress)
    return PreparedTask(data.without(report.failed), report.keys, report)


def method_version(name: str) -> str:
    from mer_bench.methods import METHODS

    return str(getattr(METHODS.entry(name).resolve(), "version", "1"))


@dataclass
class RunSummary:
    jobs: list[Job]
    already_done: int = 0
    ran: int = 0
    failed: list[tuple[Job, str]] = field(default_factory=list)
    prepared: dict[str, PreparedTask] = field(default_factory=dict)


def plan(grid: Grid, config: RunConfig) -> tuple[list[Job], dict[str, PreparedTask]]:
    """Prepares every task of the grid and expands it into jobs with their version strings."""
    from mer_bench.methods import METHODS
    from mer_bench.methods.base import SELECTION_RULES, Speed

    Speed(grid.precision)  # an unknown precision fails here, before any work
    if grid.selection not in SELECTION_RULES:
        raise ValueError(f"selection rule {grid.selection!r} is not available; "
                         f"choose from {list(SELECTION_RULES)}")
    for spec in grid.methods:
        METHODS.entry(spec.name)  # unknown names fail here, before any work
        if (spec.selection or grid.selection) not in SELECTION_RULES:
            raise ValueError(f"selection rule {spec.selection!r} is not available; "
                             f"choose from {list(SELECTION_RULES)}")
    prepared: dict[tuple[str, int | None], PreparedTask] = {}

    def prepared_task(name: str, domains: int | None) -> PreparedTask:
        if (name, domains) not in prepared:
            label = name + (f" (domains {domains})" if domains is not None else "")
            if config.progress:
                print(f"preparing task {label} ...", flush=True)
            prepared[(name, domains)] = prepare_task(name, config.with_domains(domains),
                                                     config.prepare_workers, config.progress)
            if config.progress:
                print(f"  {label}: {prepared[(name, domains)].report.summary()}", flush=True)
        return prepared[(name, domains)]

    versions = {}
    for spec in grid.methods:
        settings = config.with_domains(spec.domains).preprocess
        method = METHODS.build(spec.name, **dict(spec.options))
        for name in grid.runnable_tasks:
            task = prepared_task(name, spec.domains)
            _check_spec(spec, method, name, task.data, spec.selection or grid.selection)
            versions[(spec, name)] = {
                "method": method_version(spec.name),
                "views": ",".join(f"{v}:{view_version(v)}" for v in method.views),
                "preprocess": settings.digest(),
                "annotations": ",".join(f"{d}:{v}" for d, v in
                                        sorted(task.data.annotation_versions.items())),
                "data": task.data_digest(),
            }
            if spec.pretrain:
                versions[(spec, name)]["pretrain_data"] = \
                    prepared_task(spec.pretrain, spec.domains).data_digest()
            if spec.weights:
                files = match_weights(config.weights_folder(spec.weights), task.data.subjects())
                versions[(spec, name)]["weights"] = folder_digest(files)
    folds = {name: prepared_task(name, None).data.subjects() for name in grid.runnable_tasks}
    return grid.jobs(folds, versions), {name: task for (name, _), task in prepared.items()}


def _check_spec(spec, method, task: str, data: TaskData, selection: str) -> None:
    """Refuses, before any work, what cannot run: released weights with a method that cannot
    load them or with training settings; a view that a source without frames (released flow
    images) cannot serve, naming what it can."""
    if spec.weights and not hasattr(method, "load_weights"):
        raise ValueError(f"method {spec.name} cannot load released weights ({spec.weights}): "
                         "it has no load_weights")
    if spec.weights and (spec.pretrain or spec.budget is not None or selection != "last"):
        raise ValueError(f"method {spec.name} with released weights ({spec.weights}) trains "
                         "nothing: give it no budget, no pretraining task and selection last")
    if data.served_views is None:
        return
    views = method.views
    lacking = [v for v in views if v not in data.served_views]
    if lacking:
        raise ValueError(f"method {spec.name} reads {', '.join(lacking)}, which task {task} "
                         f"cannot serve: its data are {data.source}, with no frames; it serves "
                         f"{', '.join(data.served_views)}")


def run_grid(grid: Grid, config: RunConfig) -> RunSummary:
    return run_grids([grid], config)


def run_grids(grids: list[Grid], config: RunConfig) -> RunSummary:
    """Runs every job of the grids once: a job in several grids (same key) runs once."""
    config.load_plugins()
    size = partial(_auto_size, config=config) if config.fold_parallel == 0 else config.fold_parallel
    if config.compile and config.fold_parallel != 1:
        raise ValueError("--compile compiles one fold's training step; fold-parallel training "
                         "is not compiled: use --compile without --fold-parallel")
    store = config.store
    gpus = visible_gpus() if config.device in ("auto", "cuda") else ()
    with make_executor(config.workers, config.executor, config.ray_address,
                       partial(_crashed, store=store), config.gpus_per_job, gpus) as executor:
        # the workers start (import torch) while the tasks are prepared and planned
        jobs, prepared = [], {}
        for grid in grids:
            grid_jobs, grid_prepared = plan(grid, config)
            jobs += grid_jobs
            prepared.update(grid_prepared)
        jobs = list({job.key: job for job in jobs}.values())
        store.sweep_temporary()
        pending = [job for job in jobs if not store.is_done(job)]
        summary = RunSummary(jobs, already_done=len(jobs) - len(pending), prepared=prepared)
        if config.progress:
            how = {"serial": "serial", "processes": f"{config.workers} worker processes",
                   "ray": "Ray tasks"}[executor.name]
            print(f"{len(jobs)} jobs: {summary.already_done} already done, {len(pending)} to "
                  f"run ({how})", flush=True)
        bar = tqdm(total=len(pending), desc="jobs", unit="job", disable=not config.progress)
        for outcomes in executor.map(partial(execute_group, config=config),
                                     fold_groups(pending, size)):
            for job, error in outcomes:
                bar.update()
                if error is None:
                    summary.ran += 1
                else:
                    summary.failed.append((job, error))
                    bar.write(f"FAILED {job.run_label} {job.task} fold {job.fold}: "
                              f"{error.strip().splitlines()[-1]}")
        bar.close()
    return summary


def _crashed(jobs: list[Job], reason: str, store: Store) -> list[tuple[Job, str]]:
    """The outcome of a group whose worker died for good: recorded, retried next run."""
    for job in jobs:
        store.record_failure(job, reason)
    return [(job, reason) for job in jobs]


HEADROOM = 1.5  # device memory per fold over fold_memory_bytes' count (allocator, workspaces,
# vmap's stacked copies): a guess until measured on a GPU


def auto_fold_parallel(device: str, fold_bytes: float, free: int | None = None) -> int:
    """K for `--fold-parallel auto`: 1 on CPU (vmapped convolutions run slower there than one
    fold after another; see tests/benchmarks/test_fold_parallel_speed.py), on a GPU as many
    folds of `fold_bytes` (methods.fold_parallel.fold_memory_bytes) as 80% of its free memory
    holds with HEADROOM, at most 32."""
    import torch

    from mer_bench.methods.training import pick_device

    where = pick_device(device)
    if where.type != "cuda":
        return 1
    if free is None:
        free, _ = torch.cuda.mem_get_info(where)
    return max(1, min(32, int(0.8 * free / (HEADROOM * fold_bytes))))


def _auto_size(job: Job, method, config: RunConfig) -> int:
    """`auto_fold_parallel` for the run of `job`, from its method's measured memory per fold."""
    from mer_bench.methods.base import Split
    from mer_bench.methods.fold_parallel import fold_memory_bytes
    from mer_bench.methods.training import pick_device

    if pick_device(config.device).type != "cuda":
        return 1
    own = config.with_domains(job.domains)
    views = {name: _view(job.task, name, own) for name in method.views}
    inputs = method.inputs(Split(views, None, (), ()))
    classes = len(_prepared(job.task, own).data.task.classes)
    return auto_fold_parallel(config.device, fold_memory_bytes(method, inputs, classes))


def fold_groups(jobs: list[Job], size: int | Callable[[Job, object], int]) -> list[list[Job]]:
    """Jobs that differ only in their fold, in groups of at most `size` (1: one job each), or
    of `size(job, method)` for each run (`--fold-parallel auto`).

    Only fp32 jobs of torch methods under the `last` rule, trained by shuffled batches, are
    grouped (fold_parallel.py says why); the rest (in-order epoch schedules, released weights)
    stay alone."""
    if not callable(size) and size <= 1:
        return [[job] for job in jobs]
    from mer_bench.methods import METHODS
    from mer_bench.methods.training import TorchMethod

    runs: dict[str, list[Job]] = {}
    method_of, alone = {}, []
    for job in jobs:
        method = METHODS.build(job.method, **dict(job.options))
        if (job.selection == "last" and job.precision == "fp32" and job.weights is None
                and isinstance(method, TorchMethod) and method.recipe.epochs is None):
            run = replace(job, fold="").key
            runs.setdefault(run, []).append(job)
            method_of.setdefault(run, method)
        else:
            alone.append([job])
    groups = []
    for run, members in runs.items():
        k = size(members[0], method_of[run]) if callable(size) else size
        groups += [members[i:i + k] for i in range(0, len(members), max(1, k))]
    return groups + alone


def execute_group(jobs: list[Job], config: RunConfig) -> list[tuple[Job, str | None]]:
    """Runs jobs that differ only by fold together (fold-parallel); alone, one by one."""
    if len(jobs) == 1:
        return [execute_job(jobs[0], config)]
    store = config.store
    try:
        config.load_plugins()
        _run_together(jobs, config.with_domains(jobs[0].domains), store)
        return [(job, None) for job in jobs]
    except Exception:
        error = traceback.format_exc()
        for job in jobs:
            store.record_failure(job, error)
        return [(job, error) for job in jobs]


@lru_cache(maxsize=4)
def _prepared(task: str, config: RunConfig) -> PreparedTask:
    return prepare_task(task, config)


@lru_cache(maxsize=8)
def _view(task: str, view: str, config: RunConfig) -> np.ndarray:
    prepared = _prepared(task, config)
    cache = config.cache
    bundles = [cache.load(prepared.bundle_keys[s.clip.key]) for s in prepared.data.samples]
    return build_view(view, bundles)


def execute_job(job: Job, config: RunConfig) -> tuple[Job, str | None]:
    """Runs one job and stores it; returns (job, None) or (job, traceback). Worker-safe."""
    store = config.store
    try:
        config.load_plugins()
        _run(job, config.with_domains(job.domains), store)
        return job, None
    except Exception:  # a bad job is recorded and the grid goes on
        error = traceback.format_exc()
        store.record_failure(job, error)
        return job, error


@dataclass
class _JobData:
    """What one job trains and tests on, built the same way whoever trains it."""

    method: object
    train: object  # methods.base.Split
    test: object
    context: object  # methods.base.FitContext
    fold: object
    labels: np.ndarray
    subjects: list[str]
    prepared: PreparedTask


def _job_data(job: Job, config: RunConfig) -> _JobData:
    from mer_bench.methods import METHODS
    from mer_bench.methods.base import FitContext, Split
    from mer_bench.methods.training import pick_device

    prepared = _prepared(job.task, config)
    expected = dict(job.versions).get("data")
    if expected != prepared.data_digest():
        raise RuntimeError(f"the data of task {job.task} changed after the job was planned")
    samples = prepared.data.samples
    labels = np.array([s.label for s in samples])
    subjects = [s.clip.subject_key for s in samples]
    fold = fold_of(subjects, job.fold)
    method = METHODS.build(job.method, **dict(job.options))
    views = {name: _view(job.task, name, config) for name in method.views}

    def split(indices: np.ndarray, with_labels: bool) -> Split:
        return Split({n: v[indices] for n, v in views.items()},
                     labels[indices] if with_labels else None,
                     tuple(subjects[i] for i in indices),
                     tuple(samples[i].clip.key for i in indices))

    device = str(pick_device(config.device))
    checkpoint = _checkpoint(job, config, method, device) if job.pretrain else None
    context = FitContext(num_classes=len(prepared.data.task.classes), seed=job.rng_seed,
                         budget=job.budget, selection=job.selection, device=device,
                         init_weights=str(checkpoint) if checkpoint else None,
                         speed=config.speed(job.precision),
                         weights=_fold_weights(job, config, prepared) if job.weights else None)
    # Only the oracle rule (the release's, named as such in every table) sees test labels.
    return _JobData(method, split(fold.train, True),
                    split(fold.test, with_labels=job.selection == "oracle"), context, fold,
                    labels, subjects, prepared)


@lru_cache(maxsize=4)
def _matched_weights(folder: Path, folds: tuple[str, ...]) -> tuple[dict[str, Path], str]:
    """A weights folder matched to a task's folds and its digest, once per process."""
    files = match_weights(folder, list(folds))
    return files, folder_digest(files)


def _fold_weights(job: Job, config: RunConfig, prepared: PreparedTask) -> str:
    """The released weights file of the job's fold, as matched when the job was planned."""
    folder = config.weights_folder(job.weights)
    files, digest = _matched_weights(folder, tuple(prepared.data.subjects()))
    if digest != dict(job.versions).get("weights"):
        raise RuntimeError(f"the weights in {folder} changed after the job was planned")
    return str(files[job.fold])


def _run(job: Job, config: RunConfig, store: Store) -> None:
    import torch

    data = _job_data(job, config)
    torch.manual_seed(job.rng_seed)
    started = time.perf_counter()
    logits = data.method.fit_predict(data.train, data.test, data.context)
    _finish(job, data, logits, time.perf_counter() - started, store)


def _run_together(jobs: list[Job], config: RunConfig, store: Store) -> None:
    """Trains the folds of `jobs` (one run) at once, then tests and stores each."""
    from mer_bench.methods.fold_parallel import FoldData, train_folds

    datas = [_job_data(job, config) for job in jobs]
    method = datas[0].method
    started = time.perf_counter()
    models, folds = [], []
    for data in datas:
        model, device, iterations = method.fresh_model(data.context)
        models.append(model)
        folds.append(FoldData(method.inputs(data.train), data.train.labels, data.context.seed))
    trained = train_folds(method, models, folds, datas[0].context.num_classes, iterations, device)
    for job, data, model in zip(jobs, datas, trained):
        logits = method.predict(model, method.inputs(data.test), device)
        _finish(job, data, logits, (time.perf_counter() - started) / len(jobs), store,
                fold_parallel=len(jobs))


def _finish(job: Job, data: _JobData, logits: dict, elapsed: float, store: Store,
            fold_parallel: int = 1) -> None:
    fold, classes = data.fold, data.prepared.data.task.classes
    samples = data.prepared.data.samples
    _check_logits(logits, len(fold.test), len(classes), job)
    test_labels = data.labels[fold.test]
    predictions = Predictions(tuple(samples[i].clip.key for i in fold.test),
                              tuple(data.subjects[i] for i in fold.test), test_labels,
                              {h: np.asarray(v, dtype=np.float64) for h, v in logits.items()},
                              classes)
    info = {
        "fold_scores": score(test_labels, logits["final"].argmax(1), len(classes)).as_dict(),
        "timings": {"fit_predict_s": elapsed, "train_samples": len(fold.train),
                    "test_samples": len(fold.test), "fold_parallel": fold_parallel},
        "speed": asdict(data.context.speed),
        "task": {"folds": data.prepared.data.subjects(), "synthetic": data.prepared.data.synthetic,
                 "data": data.prepared.data.data_label,
                 "samples": len(samples), "excluded": len(data.prepared.data.excluded)},
        "environment": describe(data.context.device),
        "finished": time.time(),
    }
    store.write(job, predictions, info)


def _checkpoint(job: Job, config: RunConfig, method, device: str) -> Path:
    """The pretraining checkpoint the job starts from, trained here if nobody has yet."""
    from mer_bench.methods.base import FitContext, Split

    prepared = _prepared(job.pretrain, config)
    expected = dict(job.versions).get("pretrain_data")
    if expected != prepared.data_digest():
        raise RuntimeError(f"the data of task {job.pretrain} changed after the job was planned")
    pretraining = pretraining_job(job, prepared.data_digest())
    samples = prepared.data.samples

    def train() -> dict:
        views = {name: _view(job.pretrain, name, config) for name in method.views}
        everything = Split(views, np.array([s.label for s in samples]),
                           tuple(s.clip.subject_key for s in samples),
                           tuple(s.clip.key for s in samples))
        context = FitContext(num_classes=len(prepared.data.task.classes),
                             seed=pretraining.rng_seed, budget=job.pretrain_budget, device=device,
                             speed=config.speed(job.precision))
        return method.pretrain(everything, context)

    return ensure_checkpoint(config.results, pretraining, train)


def _check_logits(logits: dict, rows: int, classes: int, job: Job) -> None:
    if "final" not in logits:
        raise ValueError(f"method {job.method} returned heads {list(logits)}, none named 'final'")
    for head, values in logits.items():
        if np.shape(values) != (rows, classes):
            raise ValueError(f"method {job.method} head {head!r}: logits of shape "
                             f"{np.shape(values)}, expected ({rows}, {classes})")
