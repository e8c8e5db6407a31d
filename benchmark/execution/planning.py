"""Planning: every task of a grid prepared once, and the grid expanded into jobs whose
versions (method, views, preprocessing, annotations, data, released weights) key them; what
cannot run is refused here, before any work. Each prepared task leaves a manifest
(manifests.py), from which tables plan the same jobs without preparing anything."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.environment import bf16_note
from mer_bench.benchmark.execution.manifests import TaskFacts, read_manifest, write_manifest
from mer_bench.benchmark.protocol.grids import Grid
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.protocol.registry import RegistryError
from mer_bench.benchmark.execution.released_weights import folder_digest, match_weights
from mer_bench.benchmark.protocol.tasks import TaskData, build_task, load_task
from mer_bench.datasets.bundle_cache import PrepareReport, prepare_clips
from mer_bench.datasets.views import view_version


@dataclass
class PreparedTask:
    """A task's usable samples (preprocessing failures excluded and listed) and their bundles."""

    data: TaskData
    bundle_keys: dict[str, str]
    report: PrepareReport

    def data_digest(self) -> str:
        """Changes whenever a frame, a label or the set of usable clips changes, and with
        what the data are (a job stored when a generated set was read as real is not reused
        as the result of the same clips known to be synthetic)."""
        digest = hashlib.sha256(b"synthetic;" if self.data.synthetic else b"")
        for sample in self.data.samples:
            digest.update(f"{sample.clip.key}:{sample.label}:{self.bundle_keys[sample.clip.key]};"
                          .encode())
        return digest.hexdigest()[:16]

    def facts(self) -> TaskFacts:
        data = self.data
        return TaskFacts(data.task.name, tuple(data.folds()), self.data_digest(),
                         dict(data.annotation_versions), data.synthetic, data.source,
                         data.served_views)


def prepare_task(name: str, config: RunConfig, workers: int = 1,
                 progress: bool = False) -> PreparedTask:
    task = build_task(name)
    data = load_task(task, {d: config.root_of(d) for d in task.datasets})
    clips = [sample.clip for sample in data.samples]
    report = prepare_clips(clips, config.cache, workers=workers, progress=progress)
    prepared = PreparedTask(data.without(report.failed), report.keys, report)
    write_manifest(prepared.facts(), config)  # what later tables plan from
    return prepared


def check_grid(grid: Grid, config: RunConfig, announce: bool = True) -> None:
    """Every name the grid gives (method, option, recipe field, view, task, selection rule,
    precision, device) checked before any data are generated or prepared, so that a typo
    fails in a second, not after the task's preparation. `announce`: say here, before any
    work, where bf16 cannot pay."""
    from mer_bench.datasets import VIEWS
    from mer_bench.methods import METHODS
    from mer_bench.methods.base import SELECTION_RULES, Speed

    Speed(grid.precision)  # an unknown precision fails here, before any work
    check_device(config.device)
    if grid.precision == "bf16" and announce:
        from mer_bench.methods.training import pick_device

        note = bf16_note(grid.precision, pick_device(config.device).type)
        if note:
            print(note, file=sys.stderr, flush=True)
    if grid.selection not in SELECTION_RULES:
        raise ValueError(f"selection rule {grid.selection!r} is not available; "
                         f"choose from {list(SELECTION_RULES)}")
    for name in grid.runnable_tasks:
        build_task(name)
    for spec in grid.methods:
        METHODS.entry(spec.name)
        if (spec.selection or grid.selection) not in SELECTION_RULES:
            raise ValueError(f"selection rule {spec.selection!r} is not available; "
                             f"choose from {list(SELECTION_RULES)}")
        method = build_method(spec)
        for view in method.views:
            try:
                VIEWS.entry(view)
            except RegistryError as error:
                raise RegistryError(f"method {spec.name} reads view {view!r}: {error}") from None
        for task in filter(spec.runs_on, grid.runnable_tasks):
            build_method(spec).with_recipe(dict(spec.recipe_for(task)))
        if spec.pretrain:
            build_task(spec.pretrain)
            if not method.can_pretrain():
                raise ValueError(f"method {spec.name} cannot be pretrained (on "
                                 f"{spec.pretrain}): it implements no pretrain")


def method_version(name: str) -> str:
    from mer_bench.methods import METHODS

    return str(getattr(METHODS.entry(name).resolve(), "version", "1"))


def plan(grid: Grid, config: RunConfig, from_manifests: bool = False, checked: bool = False,
         ) -> tuple[list[Job], dict[str, PreparedTask]]:
    """Prepares every task of the grid and expands it into jobs with their version strings.
    `from_manifests`: the same jobs from the tasks' manifests, nothing prepared (no prepared
    task is returned); a task without one raises manifests.NotPlanned. `checked`: the grid's
    names were checked already (check_grid)."""
    if not checked:
        check_grid(grid, config, announce=not from_manifests)
    prepared: dict[tuple, PreparedTask] = {}
    known: dict[tuple, TaskFacts] = {}

    def task_facts(name: str, spec=None) -> TaskFacts:
        """The task with the bundles of `spec` (its domains and preprocessing settings; None:
        the run's): prepared once for all specs that share them, or read from its manifest."""
        domains, settings = (spec.domains, spec.preprocess) if spec else (None, ())
        key = (name, domains, settings)
        own = config.for_bundles(spec) if spec else config
        if key not in known and from_manifests:
            known[key] = read_manifest(name, own)
        elif key not in known:
            shown = ([f"domains {domains}"] if domains is not None else []) + \
                [f"{k} {v}" for k, v in settings]
            label = name + (f" ({', '.join(shown)})" if shown else "")
            if config.progress:
                print(f"preparing task {label} ...", flush=True)
            prepared[key] = prepare_task(name, own, config.prepare_workers, config.progress)
            if config.progress:
                for note in prepared[key].data.run_notes:
                    print(f"  {note}", flush=True)
                print(f"  {label}: {prepared[key].report.summary()}", flush=True)
            known[key] = prepared[key].facts()
        return known[key]

    versions = {}
    for spec in grid.methods:
        settings = config.for_bundles(spec).preprocess
        method = build_method(spec)
        for name in filter(spec.runs_on, grid.runnable_tasks):
            task = task_facts(name, spec)
            _check_spec(spec, method, name, task, spec.selection or grid.selection)
            versions[(spec, name)] = {
                "method": method_version(spec.name),
                "views": ",".join(f"{v}:{view_version(v)}" for v in method.views),
                "preprocess": settings.digest(),
                "annotations": ",".join(f"{d}:{v}" for d, v in
                                        sorted(task.annotation_versions.items())),
                "data": task.data_digest,
            }
            if spec.pretrain:
                versions[(spec, name)]["pretrain_data"] = \
                    task_facts(spec.pretrain, spec).data_digest
            if spec.weights:
                files = match_weights(config.weights_folder(spec.weights), list(task.folds))
                versions[(spec, name)]["weights"] = folder_digest(files)
            if spec.start:
                versions[(spec, name)]["start"] = start_digest(spec, method, config)
    folds = {name: list(task_facts(name).folds) for name in grid.runnable_tasks}
    return grid.jobs(folds, versions), {name: task for (name, _, _), task in prepared.items()}


def start_digest(spec, method, config: RunConfig) -> str:
    """The digest of the weights a spec's folds start from (an export, or a release's
    checkpoint file); refused before any work where the export is not one, or is another
    method's, or the spec trains otherwise."""
    from mer_bench.benchmark.storage.model_files import read_export, start_weights
    from mer_bench.datasets.faces import file_sha256

    if spec.weights or spec.pretrain:
        raise ValueError(f"method {spec.name}: a transfer start ({spec.start}) with "
                         f"{'released weights' if spec.weights else 'a pretraining task'} too: "
                         "give one start")
    if not method.can_pretrain():
        raise ValueError(f"method {spec.name} cannot start from exported weights ({spec.start})")
    given = config.weights_folder(spec.start)
    if given.is_file():  # a release's checkpoint: the method maps its names when it loads it
        return file_sha256(start_weights(given))[:16]
    exported = read_export(given)
    if exported.config["method"].split(".")[0] != spec.name.split(".")[0]:
        raise ValueError(f"method {spec.name} cannot start from {exported.folder}: it exports "
                         f"{exported.config['method']}")
    return file_sha256(exported.weights_path)[:16]


def build_method(spec):
    """The spec's method with its options; options its factory does not take are named."""
    from mer_bench.methods import METHODS

    try:
        return METHODS.build(spec.name, **dict(spec.options))
    except TypeError as error:
        raise ValueError(f"method {spec.name} with options {dict(spec.options)}: {error}") \
            from None


def check_device(device: str) -> None:
    """`--device cuda` (or cuda:N) where no such GPU is visible fails before any work."""
    if not device.startswith("cuda"):
        return
    import torch

    index = int(device.split(":")[1]) if ":" in device else 0
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: no such CUDA device is visible here "
                         f"({torch.cuda.device_count()} GPUs); use --device cpu or auto")


def _check_spec(spec, method, task: str, data: TaskFacts, selection: str) -> None:
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
