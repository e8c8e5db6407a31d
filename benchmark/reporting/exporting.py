"""`mer-bench export`: a stored fold's kept weights, or a model trained here on every
subject of a task, written as an export folder (benchmark/storage/model_files.py) with the LOSO
score of its run from the store as its expected performance."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.storage.model_files import (
    ALL_SUBJECTS, expected_performance, export_config, model_card, write_export)
from mer_bench.benchmark.storage.store import WEIGHTS, JobRecord
from mer_bench.benchmark.stats.runs import RunScores, run_scores


def run_key(job: Job) -> tuple:
    """What every fold and seed of one run share: label, task, selection, budget, versions."""
    return job.run_label, job.task, job.selection, job.budget, job.versions


def run_of(job: Job, records: list[JobRecord]) -> RunScores | None:
    """The stored run `job` belongs to, every seed of it, scored; None if none is stored."""
    rows = run_scores([r for r in records if run_key(r.job) == run_key(job)])
    return next((row for row in rows if row.task == job.task), None)


def job_card(job: Job, run: RunScores | None, info: dict | None = None) -> dict:
    """The protocol card of the run `job` belongs to, as a paper table's row has one; `info`:
    the stored job's, whose display text spares building its method."""
    from mer_bench.benchmark.protocol.cards import measured_card

    settings = {"selection": job.selection, "seeds": list(run.seeds) if run else [job.seed],
                "budget": _budget_text(job, info),
                "transfer": (f"from {job.pretrain} ({job.pretrain_budget} iterations)"
                             if job.pretrain else "none"),
                "recipe": dict(job.recipe), "precision": job.precision,
                "options": dict(job.options)}
    if job.weights:
        settings = {"weights": f"released {job.weights}, one file per held-out subject",
                    "seeds": [job.seed]}
    return measured_card(job.run_label, settings, {job.task: run})


def _budget_text(job: Job, info: dict | None) -> str:
    """The budget as the method states it: stored with the job, else asked of the method (a
    store written before display texts were kept), else the number itself (a plugin's run
    read without its plugin)."""
    from mer_bench.benchmark.execution.one_job import job_method
    from mer_bench.benchmark.protocol.registry import RegistryError

    stored = (info or {}).get("display", {}).get("budget")
    if stored:
        return stored
    try:
        return job_method(job).budget_text(job.budget)
    except RegistryError:
        return f"budget {job.budget if job.budget is not None else 'default'}"


def _settings_of(job: Job, config: RunConfig):
    """The preprocessing `job` was prepared under; refused if this run's options give other
    settings (the export would prepare a new clip otherwise than its training clips)."""
    settings = config.for_bundles(job).preprocess
    recorded = dict(job.versions).get("preprocess")
    if recorded and recorded != settings.digest():
        raise ValueError(f"the stored job {job.key} ({job.run_label}, {job.task}) was prepared "
                         f"under other preprocessing settings (digest {recorded}; these options "
                         f"give {settings.digest()}): give export the preprocessing options "
                         "its run had (--detector, --detector-weights, --domains, --key-frames, "
                         "--key-frame-shift, --crop, --flow-encoding)")
    return settings


def stored_fold(config: RunConfig, label: str, task: str, fold: str,
                seed: int | None = None) -> JobRecord:
    """The one stored job of run `label` on `task` holding out `fold` that kept its weights;
    the error lists what the store has instead."""
    store = config.store
    records = [r for r in store.records() if r.job.task == task and r.job.run_label == label
               and (seed is None or r.job.seed == seed)]
    kept = [r for r in records if (store.job_dir(r.job) / WEIGHTS).is_file()]
    found = [r for r in kept if r.job.fold == fold]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        runs = "; ".join(f"seed {r.job.seed}, selection {r.job.selection}, budget "
                         f"{r.job.budget}" for r in found)
        raise ValueError(f"{len(found)} stored jobs of {label} on {task} hold out {fold} "
                         f"({runs}): give --seed to choose")
    if not records:
        labels = sorted({r.job.run_label for r in store.records() if r.job.task == task})
        raise ValueError(f"no stored run {label!r} on {task}; stored runs of {task}: "
                         f"{', '.join(labels) or 'none'}")
    if not kept:
        raise ValueError(f"the stored run {label} on {task} kept no weights: run it again with "
                         "--keep weights")
    raise ValueError(f"no stored fold {fold!r} of {label} on {task} kept weights; these did: "
                     f"{', '.join(sorted({r.job.fold for r in kept}))}")


def export_fold(config: RunConfig, record: JobRecord, folder: Path) -> Path:
    """Writes the fold's kept weights as an export, its run's LOSO score in its card."""
    from safetensors.torch import load_file

    from mer_bench.benchmark.execution.one_job import job_method

    job = record.job
    run = run_of(job, list(config.store.records()))
    source = {"kind": f"the LOSO fold holding out {job.fold} (trained without that subject)",
              "data": record.info["task"].get("data", ""), "job": job.key, "fold": job.fold}
    settings = _settings_of(job, config)
    exported = export_config(job, record.predictions.classes, settings, job_method(job).views,
                             source, expected_performance(run))
    weights = load_file(config.store.job_dir(job) / WEIGHTS)
    return write_export(folder, weights, exported,
                        model_card(exported, job_card(job, run, record.info)))


def export_every_subject(config: RunConfig, grid, folder: Path) -> Path:
    """Trains the grid's one method on every subject of its one task (its seed and budget)
    and writes the export; the LOSO run of the same grid, if stored, gives its expected
    performance."""
    from mer_bench.benchmark.execution.one_job import job_method, train_on_every_subject
    from mer_bench.benchmark.execution.planning import plan

    if len(grid.methods) != 1 or len(grid.runnable_tasks) != 1 or len(grid.seeds) != 1:
        raise ValueError("export trains one model: give one method, one task and one seed")
    jobs, prepared = plan(grid, config)
    if not jobs:
        raise ValueError(f"nothing to export: {grid.methods[0].name} does not run on "
                         f"{grid.runnable_tasks[0]}")
    if jobs[0].weights:
        raise ValueError("a method with released weights trains nothing: export one of its "
                         "folds instead (--fold)")
    job = replace(jobs[0], fold=ALL_SUBJECTS, selection="last")
    keys = {j.key for j in jobs}
    runs = [r for r in run_scores(list(config.store.records()), keys=keys)
            if r.task == job.task]
    run = runs[0] if runs else None
    data = prepared[job.task].data
    state = train_on_every_subject(job, config, progress=config.progress)
    source = {"kind": f"trained here on all {len(data.subjects())} subjects of {job.task} "
                      f"({len(data.samples)} clips), seed {job.seed}, rule last",
              "data": data.data_label, "job": job.key, "fold": ALL_SUBJECTS}
    exported = export_config(job, data.task.classes, _settings_of(job, config),
                             job_method(job).views, source, expected_performance(run))
    return write_export(folder, state, exported, model_card(exported, job_card(job, run)))
