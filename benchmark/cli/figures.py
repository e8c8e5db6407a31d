"""`curves`, `tsne`, `gradcam` and `figures`: pictures of stored runs, from what their jobs
kept (training curves, features, weights)."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from mer_bench.benchmark.cli.options import config_of, positive_int, report_quarantined
from mer_bench.benchmark.execution.config import RunConfig


def add_parsers(commands, common: argparse.ArgumentParser) -> dict:
    stored_runs = argparse.ArgumentParser(add_help=False)  # which stored runs to draw
    stored_runs.add_argument("--method", help="only runs whose label starts with this")
    stored_runs.add_argument("--task", help="only runs of this task")
    commands.add_parser("curves", parents=[common, stored_runs],
                        help="draw the training curves of stored runs (loss per step, scored "
                             "epochs) under results/tables/curves/")
    commands.add_parser("tsne", parents=[common, stored_runs],
                        help="t-SNE of the features stored runs kept (run --keep features), "
                             "one figure per run and final layer, under results/tables/tsne/")
    gradcam = commands.add_parser("gradcam", parents=[common, stored_runs],
                                  help="Grad-CAM of stored runs that kept weights (run --keep "
                                       "weights), at the layer their method declares (Fig. 7 "
                                       "kind), under results/tables/gradcam/")
    gradcam.add_argument("--clips", type=positive_int, default=8,
                         help="test clips drawn per run, in fold order (default 8)")
    figures = commands.add_parser("figures", parents=[common, stored_runs],
                                  help="curves, t-SNE (Figs. 8/11 kind) and Grad-CAM (Fig. 7 "
                                       "kind) of every stored run that kept what each needs")
    figures.add_argument("--clips", type=positive_int, default=8,
                         help="Grad-CAM: test clips drawn per run (default 8)")
    return {"curves": command_curves, "tsne": command_tsne, "gradcam": command_gradcam, "figures": command_figures}


def command_curves(args: argparse.Namespace) -> int:
    """One figure per stored run (its folds together) whose jobs kept training curves."""
    from mer_bench.benchmark.reporting.figures import curves_figure, save

    config = config_of(args)
    runs = _stored_runs(args, config, lambda record: config.store.curves(record.job))
    folder = config.results / "tables" / "curves"
    for key, folds in sorted(runs.items(), key=str):
        title, name = _run_title(key, len(folds))
        print(save(curves_figure(title, folds), folder / f"{name}.png"))
    if not runs:
        print("no stored run has training curves (torch methods' jobs store them)")
    report_quarantined(config)
    return 0


def _stored_runs(args: argparse.Namespace, config: RunConfig, wanted) -> dict[tuple, list]:
    """Stored jobs grouped by run (label, task, selection, budget, seed, data), filtered by
    --method / --task, each with what `wanted(record)` gives (jobs giving None left out)."""
    runs: dict[tuple, list] = {}
    for record in config.store.records():
        job = record.job
        if (args.method and not job.run_label.startswith(args.method)) or \
                (args.task and job.task != args.task):
            continue
        found = wanted(record)
        if found is not None:
            data = record.info["task"].get("data", "")
            key = (job.run_label, job.task, job.selection, job.budget, job.seed, data)
            runs.setdefault(key, []).append(found)
    return runs


def _run_title(key: tuple, folds: int) -> tuple[str, str]:
    """A run's figure title (its data named, SYNTHETIC where it is) and a file name."""
    import re

    label, task, selection, budget, seed, data = key
    shown = f"{task} ({'SYNTHETIC data' if data == 'synthetic' else data})"
    budget = "default" if budget is None else budget
    return (f"{label}\non {shown}, selection {selection}, budget {budget}, seed {seed}: "
            f"{folds} folds", re.sub(r"[^A-Za-z0-9._=-]+", "_",
                                     f"{label}_{task}_{selection}_{budget}_s{seed}"))


def command_tsne(args: argparse.Namespace) -> int:
    """Each run's kept features, every fold's test clips pooled (each fold's own model)."""
    import numpy as np

    from mer_bench.benchmark.reporting.figures import save, tsne_figure
    from mer_bench.benchmark.storage.store import FEATURES

    config = config_of(args)

    def kept(record):
        path = config.store.job_dir(record.job) / FEATURES
        if not path.is_file():
            return None
        with np.load(path) as features:
            return dict(features), record.predictions

    runs = _stored_runs(args, config, kept)
    folder = config.results / "tables" / "tsne"
    for key, folds in tqdm(sorted(runs.items(), key=str), desc="t-SNE", unit="run",
                           disable=not config.progress):
        title, name = _run_title(key, len(folds))
        classes = folds[0][1].classes
        labels = np.concatenate([p.labels for _, p in folds])
        for layer in folds[0][0]:
            features = np.concatenate([f[layer] for f, _ in folds])
            figure = tsne_figure(f"t-SNE of the inputs to {layer}, each fold's test clips by "
                                 f"its own model\n{title}", features, labels, classes)
            print(save(figure, folder / f"{name}_{layer}.png"))
    if not runs:
        print("no stored run kept features (run --keep features)")
    report_quarantined(config)
    return 0


def command_gradcam(args: argparse.Namespace) -> int:
    """Each run's first test clips under the Grad-CAM of their own fold's kept model."""
    import torch
    from safetensors.torch import load_file

    from mer_bench.benchmark.execution.one_job import _prepared, _view, job_method
    from mer_bench.benchmark.reporting.figures import gradcam_figure, save
    from mer_bench.benchmark.storage.store import WEIGHTS
    from mer_bench.methods.gradcam import grad_cam

    config = config_of(args)

    def kept(record):
        path = config.store.job_dir(record.job) / WEIGHTS
        return (record, path) if path.is_file() else None

    runs = _stored_runs(args, config, kept)
    folder, drawn = config.results / "tables" / "gradcam", 0
    for key, jobs in tqdm(sorted(runs.items(), key=str), desc="Grad-CAM", unit="run",
                          disable=not config.progress):
        method = job_method(jobs[0][0].job)
        if method.gradcam_layer() is None:
            print(f"{key[0]}: its method offers no Grad-CAM layer", file=sys.stderr)
            continue
        panels = []
        for record, path in sorted(jobs, key=lambda item: item[0].job.fold):
            job, classes = record.job, record.predictions.classes
            own = config.for_bundles(job)
            keys = [s.clip.key for s in _prepared(job.task, own).data.samples]
            (view,) = method.views
            inputs = _view(job.task, view, own)
            model = method.build_model(len(classes))
            model.load_state_dict(load_file(path))
            for clip, label in zip(record.predictions.clips, record.predictions.labels):
                if len(panels) == args.clips:
                    break
                sample = torch.from_numpy(inputs[keys.index(clip)])
                cam, predicted = grad_cam(model, method.gradcam_layer(), sample)
                panels.append((method.gradcam_image(sample.numpy()), cam,
                               f"{clip}\ntrue {classes[label]}, predicted {classes[predicted]}"))
            if len(panels) == args.clips:
                break
        title, name = _run_title(key, len(jobs))
        print(save(gradcam_figure(f"Grad-CAM at {method.gradcam_layer()}, each clip by its "
                                  f"own fold's model\n{title}", panels),
                   folder / f"{name}.png"))
        drawn += 1
    if not drawn:
        print("no stored run kept weights of a method with a Grad-CAM layer (run --keep "
              "weights)")
    report_quarantined(config)
    return 0


def command_figures(args: argparse.Namespace) -> int:
    """`curves`, `tsne` and `gradcam` in one: every figure the stored runs can give."""
    return max(command_curves(args), command_tsne(args), command_gradcam(args))
