"""Exported models: one folder with a model's weights (safetensors), everything needed to
rebuild it and to prepare its inputs the way it was trained (config.json), and a model card
(MODEL_CARD.md: its data, the licence of that data, its protocol, the LOSO score of its run
as the performance to expect). `predict` and a run's transfer start load such a folder by
path; nothing is downloaded.

A folder comes either from one stored fold (`run --keep weights`: the model that fold
trained, without its held-out subject) or from a model trained here on every subject of a
task under its run's budget (the rule `last`: no subject is left to select an epoch on).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from mer_bench.benchmark.storage.owned_outputs import write_folder

FORMAT = "mer-bench-export-1"
EXPORT = "model export"  # its kind in the folder's manifest (owned_outputs)
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "MODEL_CARD.md"
ALL_SUBJECTS = "all subjects"  # the fold name of a model trained on every subject
LICENCE_NOTE = ("The weights were learned from the data named above. The MER datasets are "
                "licensed per user, each by its own agreement: weights trained on one may be "
                "shared only as its agreement allows. Weights trained on the synthetic default "
                "carry no such terms (it is generated from scikit-image's public-domain "
                "astronaut photo).")


@dataclass(frozen=True)
class ExportedModel:
    """An export folder as read back: its config, and the method, model and preprocessing
    it rebuilds."""

    folder: Path
    config: dict

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.config["classes"])

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS_FILE

    def method(self):
        """The method as it was trained: registry entry, options and recipe fields."""
        from mer_bench.methods import METHODS

        config = self.config
        return METHODS.build(config["method"], **config["options"]).with_recipe(
            config["recipe"])

    def model(self, method=None):
        """The model with the exported weights, in eval mode, on the CPU."""
        from safetensors.torch import load_file

        method = method or self.method()
        model = method.build_model(len(self.classes))
        try:
            model.load_state_dict(load_file(self.weights_path))
        except RuntimeError as error:
            raise ValueError(f"{self.weights_path} does not fit {self.config['method']}: "
                             f"{str(error).splitlines()[0]}") from None
        return model.eval()

    def preprocess(self):
        """The preprocessing settings its training clips were prepared under."""
        from mer_bench.datasets.preprocess import PreprocessSettings

        known = {f.name for f in fields(PreprocessSettings)}
        return PreprocessSettings(**{k: v for k, v in self.config["preprocess"].items()
                                     if k in known})


CHECKPOINT_SUFFIXES = (".pth", ".pt")


def start_weights(path: str | Path) -> Path:
    """The weights file a transfer start (`run --start`) reads: an export's safetensors, or a
    checkpoint file as a release ships it (the SKD-TSTSAN release's CK+-pretrained
    `Pretrained_model/SKD-TSTSAN.pth`), whose names the method maps (`released_state`)."""
    path = Path(path)
    if path.is_file():
        if path.suffix not in CHECKPOINT_SUFFIXES:
            raise ValueError(f"--start {path}: a file to start from is a torch checkpoint "
                             f"({', '.join(CHECKPOINT_SUFFIXES)}); else give an exported "
                             "model's folder")
        return path
    return read_export(path).weights_path


def read_export(folder: str | Path) -> ExportedModel:
    """The export in `folder`; the error names the folder and what it lacks."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no exported model at {folder}: the folder does not exist (make one "
                         "with `mer-bench export`)")
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{folder} is not an exported model: it lacks {', '.join(missing)}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{folder / CONFIG_FILE} is not valid JSON: {error}") from None
    if config.get("format") != FORMAT:
        raise ValueError(f"{folder / CONFIG_FILE}: format {config.get('format')!r}; this "
                         f"version of mer-bench reads {FORMAT!r}")
    return ExportedModel(folder, config)


def export_config(job, classes: tuple[str, ...], preprocess, views: tuple[str, ...],
                  source: dict, expected: dict | None) -> dict:
    """What config.json holds: the job's method as the registry builds it, its classes, the
    preprocessing and views its inputs came through, where the weights came from, and the
    LOSO score of its run (None where the store holds no complete run of it)."""
    return {
        "format": FORMAT,
        "method": job.method,
        "options": dict(job.options),
        "recipe": dict(job.recipe),
        "run": job.run_label,
        "task": job.task,
        "classes": list(classes),
        "views": list(views),
        "preprocess": asdict(preprocess),
        "versions": dict(job.versions),
        "source": source,
        "expected": expected,
    }


def expected_performance(run) -> dict | None:
    """The LOSO scores of a complete run (a `tables.RunScores`) as a model card states them."""
    if run is None or not run.complete:
        return None
    scores = {}
    for metric in ("uf1", "uar", "accuracy"):
        mean, sd = run.mean_std(metric)
        low, high = run.intervals.get(metric, (None, None))
        scores[metric] = {"mean": round(mean, 2), "sd": round(sd, 2),
                          "ci95": None if low is None else [round(low, 2), round(high, 2)]}
    return {"protocol": f"leave-one-subject-out over {run.folds} subjects, predictions "
                        "pooled over folds (MEGC 2019)", "selection": run.selection,
            "seeds": list(run.seeds), "data": run.data, "data_version": run.data_version,
            "scores": scores}


def model_card(config: dict, card: dict | None) -> str:
    """MODEL_CARD.md: what the model is, what it was trained on, what to expect of it."""
    source, expected = config["source"], config["expected"]
    lines = [f"# {config['run']} on {config['task']}", "",
             f"Exported by mer-bench ({FORMAT}). Load it by path: `mer-bench predict CLIP "
             "--weights THIS_FOLDER`, or start a run's folds from it (a grid method's "
             "`start`).", "",
             "## Model", "",
             f"- method: `{config['method']}` (registry entry), options {config['options'] or '{}'},"
             f" recipe fields {config['recipe'] or '{}'}",
             f"- classes: {', '.join(config['classes'])}",
             f"- inputs: views {', '.join(config['views'])} of clips prepared with "
             f"{_settings_text(config['preprocess'])}",
             "", "## Training data", "",
             f"- task `{config['task']}`, data: **{source['data']}**"
             + (" (generated, not a real dataset)" if source["data"] == "synthetic" else ""),
             f"- weights: {source['kind']}",
             f"- versions: {json.dumps(config['versions'], sort_keys=True)}",
             "", "## Expected performance", ""]
    if expected:
        scores = expected["scores"]
        lines += [f"{expected['protocol']}; selection `{expected['selection']}`, seeds "
                  f"{expected['seeds']}, data {expected['data']} (version "
                  f"{expected['data_version']}):", "",
                  "| metric | mean % | sd | 95% interval |", "|---|---|---|---|"]
        for metric, value in scores.items():
            interval = ("" if value["ci95"] is None
                        else f"[{value['ci95'][0]:.2f}, {value['ci95'][1]:.2f}]")
            lines.append(f"| {metric} | {value['mean']:.2f} | {value['sd']:.2f} | {interval} |")
        lines += ["", "Scores of models that never saw the subject they were tested on: what "
                  "to expect on a new subject of the same kind of data."]
    else:
        lines.append("No complete LOSO run of this method on this task is in the store it was "
                     "exported from, so no expected performance is stated; run it (`mer-bench "
                     "run`) and export again.")
    if card:
        lines += ["", "## Protocol card", "", "```json",
                  json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False), "```"]
    lines += ["", "## Licence", "", LICENCE_NOTE, ""]
    return "\n".join(lines)


def _settings_text(settings: dict) -> str:
    from mer_bench.datasets.preprocess import PROTOCOL_DEFAULTS

    shown = {k: v for k, v in settings.items()
             if v is not None and k in ("detector", "crop_size", "flow", "domains", "version")
             or k in PROTOCOL_DEFAULTS and v != PROTOCOL_DEFAULTS[k]}
    return ", ".join(f"{k} {v}" for k, v in shown.items())


def write_export(folder: str | Path, weights: dict, config: dict, card: str) -> Path:
    """Writes the export whole or not at all (a temporary folder renamed into place); only
    an export the harness wrote there, unchanged, is replaced: any other folder, a symbolic
    link or a file is refused (benchmark/storage/owned_outputs.py)."""
    from safetensors.torch import save_file

    def fill(partial: Path) -> None:
        save_file({k: v.contiguous() for k, v in weights.items()}, partial / WEIGHTS_FILE)
        (partial / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (partial / CARD_FILE).write_text(card)

    return write_folder(folder, EXPORT, fill)
