"""Execution: one job (or the folds of one run, together) trained and tested where it runs,
in the calling process or a worker; a job that fails is recorded with its traceback and the
rest go on. Fold grouping for fold-parallel training is decided here too."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.folds import fold_of
from mer_bench.benchmark.execution.job_results import write_result
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.execution.planning import PreparedTask, prepare_task
from mer_bench.benchmark.execution.pretraining import ensure_checkpoint, pretraining_job
from mer_bench.benchmark.execution.released_weights import folder_digest, match_weights
from mer_bench.benchmark.storage.store import Store
from mer_bench.datasets.errors import MACHINE_ERRNOS, MachineFault
from mer_bench.datasets.views import build_view


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


def auto_size(job: Job, method, config: RunConfig) -> int:
    """`auto_fold_parallel` for the run of `job`, from its method's measured memory per fold."""
    from mer_bench.methods.base import Split
    from mer_bench.methods.training import pick_device

    if pick_device(config.device).type != "cuda":
        return 1
    own = config.for_bundles(job)
    views = {name: _view(job.task, name, own) for name in method.views}
    classes = len(_prepared(job.task, own).data.task.classes)
    return auto_fold_parallel(config.device,
                              method.fold_memory_bytes(Split(views, None, (), ()), classes))


def fold_groups(jobs: list[Job], size: int | Callable[[Job, object], int]) -> list[list[Job]]:
    """Jobs that differ only in their fold, in groups of at most `size` (1: one job each), or
    of `size(job, method)` for each run (`--fold-parallel auto`).

    Only fp32 jobs under the `last` rule of methods that train folds together are grouped
    (methods/fold_parallel.py says why); the rest (released weights among them) stay alone."""
    if not callable(size) and size <= 1:
        return [[job] for job in jobs]
    runs: dict[str, list[Job]] = {}
    method_of, alone = {}, []
    for job in jobs:
        method = job_method(job)
        if (job.selection == "last" and job.precision == "fp32" and job.weights is None
                and method.trains_folds_together()):
            run = job.run_key
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
        return _run_together(jobs, config.for_bundles(jobs[0]), store)
    except OSError as failure:
        _stop_if_the_machines(failure, store)
        error = traceback.format_exc()
    except Exception:
        error = traceback.format_exc()
    for job in jobs:
        store.record_failure(job, error)
    return [(job, error) for job in jobs]


def job_method(job: Job):
    """The job's method: its registry entry with the job's options and recipe fields."""
    from mer_bench.methods import METHODS

    return METHODS.build(job.method, **dict(job.options)).with_recipe(dict(job.recipe))


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
        _run(job, config.for_bundles(job), store)
        return job, None
    except OSError as error:
        _stop_if_the_machines(error, store)
        failure = traceback.format_exc()
    except Exception:  # a bad job is recorded and the grid goes on
        failure = traceback.format_exc()
    store.record_failure(job, failure)
    return job, failure


def _stop_if_the_machines(error: OSError, store) -> None:
    """A full disk or a read-only results folder stops the run, with the reason; recording
    one failed job after another would only hide it (and could not be written either)."""
    if error.errno in MACHINE_ERRNOS:
        raise MachineFault(f"cannot write the results folder {store.root}: {error.strerror} "
                           f"({error.filename or 'a stored job'}); the run stopped, every job "
                           "stored before is kept") from None


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
    from mer_bench.methods.base import FitContext, Split
    from mer_bench.methods.training import pick_device

    prepared = _prepared(job.task, config)
    expected = dict(job.versions).get("data")
    if expected != prepared.data_digest():
        raise RuntimeError(f"the data of task {job.task} changed after the job was planned")
    samples = prepared.data.samples
    labels = np.array([s.label for s in samples])
    subjects = [s.clip.subject_key for s in samples]
    fold = fold_of(prepared.data.fold_keys(), job.fold)
    method = job_method(job)
    views = {name: _view(job.task, name, config) for name in method.views}

    def split(indices: np.ndarray, with_labels: bool) -> Split:
        return Split({n: v[indices] for n, v in views.items()},
                     labels[indices] if with_labels else None,
                     tuple(subjects[i] for i in indices),
                     tuple(samples[i].clip.key for i in indices))

    device = str(pick_device(config.device))
    checkpoint = (_checkpoint(job, config, method, device) if job.pretrain
                  else _start(job, config) if job.start else None)
    context = FitContext(num_classes=len(prepared.data.task.classes), seed=job.rng_seed,
                         budget=job.budget, selection=job.selection, device=device,
                         init_weights=str(checkpoint) if checkpoint else None,
                         speed=config.speed(job.precision),
                         weights=_fold_weights(job, config, prepared) if job.weights else None,
                         keep=config.keep)
    # Only the oracle rule (the release's, named as such in every table) sees test labels.
    return _JobData(method, split(fold.train, True),
                    split(fold.test, with_labels=job.selection == "oracle"), context, fold,
                    labels, subjects, prepared)


def _start(job: Job, config: RunConfig) -> Path:
    """The weights file a job starts from (an export's, or a release's checkpoint), as it was
    when the job was planned."""
    from mer_bench.benchmark.storage.model_files import start_weights
    from mer_bench.datasets.faces import file_sha256

    path = start_weights(config.weights_folder(job.start))
    if file_sha256(path)[:16] != dict(job.versions).get("start"):
        raise RuntimeError(f"the exported weights {path} changed after the job was planned")
    return path


@lru_cache(maxsize=4)
def _matched_weights(folder: Path, folds: tuple[str, ...]) -> tuple[dict[str, Path], str]:
    """A weights folder matched to a task's folds and its digest, once per process."""
    files = match_weights(folder, list(folds))
    return files, folder_digest(files)


def _fold_weights(job: Job, config: RunConfig, prepared: PreparedTask) -> str:
    """The released weights file of the job's fold, as matched when the job was planned."""
    folder = config.weights_folder(job.weights)
    files, digest = _matched_weights(folder, tuple(prepared.data.folds()))
    if digest != dict(job.versions).get("weights"):
        raise RuntimeError(f"the weights in {folder} changed after the job was planned")
    return str(files[job.fold])


def _run(job: Job, config: RunConfig, store: Store) -> None:
    import torch

    if config.threads:  # in the driver too (serial), so every executor computes alike
        torch.set_num_threads(config.threads)
    data = _job_data(job, config)
    torch.manual_seed(job.rng_seed)
    started = time.perf_counter()
    data.method.training_logs, data.method.kept = [], {}
    logits = data.method.fit_predict(data.train, data.test, data.context)
    logs = data.method.training_logs
    write_result(job, data, logits, time.perf_counter() - started, store,
                 log=logs[-1] if logs else None, kept=data.method.kept)


def _run_together(jobs: list[Job], config: RunConfig,
                  store: Store) -> list[tuple[Job, str | None]]:
    """Has the method train the folds of `jobs` (one run) at once, then stores each; a fold
    whose result cannot be stored (non-finite logits, a wrong shape) fails alone."""
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    datas = [_job_data(job, config) for job in jobs]
    started = time.perf_counter()
    method = datas[0].method
    method.training_logs = []
    outputs = method.fit_predict_folds([(d.train, d.test, d.context) for d in datas])
    elapsed = (time.perf_counter() - started) / len(jobs)
    logs = method.training_logs if len(method.training_logs) == len(jobs) else [None] * len(jobs)
    outcomes = []
    for job, data, logits, log in zip(jobs, datas, outputs, logs):
        try:
            write_result(job, data, logits, elapsed, store, fold_parallel=len(jobs), log=log)
            outcomes.append((job, None))
        except ValueError:
            failure = traceback.format_exc()
            store.record_failure(job, failure)
            outcomes.append((job, failure))
    return outcomes


def _checkpoint(job: Job, config: RunConfig, method, device: str) -> Path:
    """The pretraining checkpoint the job starts from, trained here if nobody has yet."""
    from mer_bench.methods.base import FitContext

    prepared = _prepared(job.pretrain, config)
    expected = dict(job.versions).get("pretrain_data")
    if expected != prepared.data_digest():
        raise RuntimeError(f"the data of task {job.pretrain} changed after the job was planned")
    pretraining = pretraining_job(job, prepared.data_digest())
    method = job_method(pretraining)  # the fold's own recipe fields are not the pretraining's

    def train() -> dict:
        context = FitContext(num_classes=len(prepared.data.task.classes),
                             seed=pretraining.rng_seed, budget=job.pretrain_budget, device=device,
                             speed=config.speed(job.precision))
        return method.pretrain(_every_sample(job.pretrain, method, config), context)

    return ensure_checkpoint(config.results, pretraining, train)


def _every_sample(task: str, method, config: RunConfig):
    """A task's every sample, labelled, in the views `method` reads: one Split."""
    from mer_bench.methods.base import Split

    samples = _prepared(task, config).data.samples
    views = {name: _view(task, name, config) for name in method.views}
    return Split(views, np.array([s.label for s in samples]),
                 tuple(s.clip.subject_key for s in samples), tuple(s.clip.key for s in samples))


def train_on_every_subject(job: Job, config: RunConfig, progress: bool = False) -> dict:
    """The state of `job`'s method trained on every subject of its task (no fold held out),
    from its pretraining checkpoint if it has one, under its budget and the rule `last`: what
    `export` writes when no fold's weights are wanted."""
    from mer_bench.methods.base import FitContext
    from mer_bench.methods.training import pick_device

    config = config.for_bundles(job)
    prepared = _prepared(job.task, config)
    if dict(job.versions).get("data") != prepared.data_digest():
        raise RuntimeError(f"the data of task {job.task} changed after the job was planned")
    method = job_method(job)
    method.show_progress = progress
    if not method.can_pretrain():
        raise ValueError(f"method {job.method} cannot be trained on a whole task (it "
                         "implements no pretrain): export one of its folds instead")
    device = str(pick_device(config.device))
    checkpoint = _checkpoint(job, config, method, device) if job.pretrain else None
    context = FitContext(num_classes=len(prepared.data.task.classes), seed=job.rng_seed,
                         budget=job.budget, device=device, speed=config.speed(job.precision),
                         init_weights=str(checkpoint) if checkpoint else None)
    return method.pretrain(_every_sample(job.task, method, config), context)
