"""Tables as pure functions of the stored predictions: nothing here trains or preprocesses.

A run is every fold of one (method, options, task, selection, budget, seed) under one set of
versions. Its UF1 and UAR pool the predictions of all its folds (MEGC 2019); a run missing
folds is shown as incomplete, never scored. Over seeds: mean and standard deviation.
A run over clips of several datasets (the MEGC 2019 composite) is also scored on each
dataset's clips of the same predictions, as MEGC 2019 reports its parts: task `TASK[dataset]`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from mer_bench.benchmark.metrics import Scores, score
from mer_bench.benchmark.store import JobRecord
from mer_bench.benchmark.uncertainty import (
    Pooled, bootstrap_ci, difference_ci, paired_p_value, subject_mean)


@dataclass(frozen=True)
class RunScores:
    """One row of the tidy results: a method on a task, pooled over folds, over seeds."""

    method: str
    task: str
    selection: str
    budget: int | None
    synthetic: bool
    folds: int
    folds_expected: int
    seeds: tuple[int, ...]
    per_seed: tuple[Scores, ...]
    classes: tuple[str, ...] = ()
    data: str = ""  # where the inputs came from: synthetic, real, released flows
    pooled: tuple[Pooled, ...] = ()  # each seed's pooled predictions (for intervals, tests)
    # What its stored jobs say of their data, for protocol cards: annotation versions,
    # exclusions, source (benchmark/protocol_cards.py; jobs stored before cards lack some).
    provenance: dict = field(default_factory=dict, compare=False)
    data_version: str = ""  # a digest of what its jobs read (`data_identity`)

    def __post_init__(self):
        if not self.data:
            object.__setattr__(self, "data", "synthetic" if self.synthetic else "real")

    @property
    def complete(self) -> bool:
        return self.folds == self.folds_expected and bool(self.per_seed)

    def mean_std(self, metric: str) -> tuple[float, float]:
        values = np.array([getattr(s, metric) for s in self.per_seed]) * 100
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

    @cached_property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """Subject-bootstrap 95% intervals (%) of the seed mean (benchmark/uncertainty.py)."""
        if not (self.complete and self.pooled):
            return {}
        return {m: (100 * low, 100 * high)
                for m, (low, high) in bootstrap_ci(list(self.pooled)).items()}

    @cached_property
    def subject_mean(self) -> dict[str, float]:
        """The mean of per-subject scores (%), which some papers report; never the default."""
        if not (self.complete and self.pooled):
            return {}
        return {m: 100 * v for m, v in subject_mean(list(self.pooled)).items()}

    def p_value(self, reference: "RunScores", metric: str = "uf1") -> float | None:
        """Paired permutation p of this run against `reference` on the same clips and folds
        (seeds paired in order); None where they do not share them."""
        if not (self.complete and reference.complete and self.pooled and reference.pooled):
            return None
        count = min(len(self.pooled), len(reference.pooled))
        try:
            return paired_p_value(list(self.pooled[:count]), list(reference.pooled[:count]),
                                  metric)
        except ValueError:
            return None

    def change(self, reference: "RunScores", metric: str = "uf1",
               ) -> tuple[float, tuple[float, float]] | None:
        """This run's seed mean less `reference`'s (percentage points) and its paired 95%
        interval (the same subjects resampled for both); None where they do not share their
        clips and folds."""
        if not (self.complete and reference.complete and self.pooled and reference.pooled):
            return None
        count = min(len(self.pooled), len(reference.pooled))
        try:
            low, high = difference_ci(list(self.pooled[:count]), list(reference.pooled[:count]),
                                      metric)
        except ValueError:
            return None
        return self.mean_std(metric)[0] - reference.mean_std(metric)[0], (100 * low, 100 * high)


CODE_VERSIONS = ("method", "views")  # what a newer run of the same data may supersede


def data_identity(job) -> tuple:
    """The versions of what a job read (data, annotations, preprocessing, weights...), not of
    the code that read it: two runs with different identities are different rows."""
    return tuple((k, v) for k, v in job.versions if k not in CODE_VERSIONS)


def run_scores(records: list[JobRecord], head: str = "final",
               keys: set[str] | None = None) -> list[RunScores]:
    """Groups job records into runs and scores each seed's pooled predictions. `keys`: only
    the jobs with these keys (those a run just planned from the data as they are now).

    A run of newer code on the same data supersedes the old one; runs on different data
    (another version of a dataset tree, other annotations) are never merged and never hide
    each other: each is its own row, with its data version."""
    groups: dict[tuple, dict[int, list[JobRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        job = record.job
        if keys is not None and job.key not in keys:
            continue
        key = (job.run_label, job.task, job.selection, job.budget, job.versions)
        groups[key][job.seed].append(record)
    newest: dict[tuple, tuple[float, tuple]] = {}
    for key, seeds in groups.items():
        finished = max(r.info.get("finished", 0.0) for rs in seeds.values() for r in rs)
        job = next(iter(seeds.values()))[0].job
        row = (*key[:4], data_identity(job))
        if row not in newest or finished > newest[row][0]:
            newest[row] = (finished, key)
    rows = []
    for _, key in sorted(newest.values(), key=lambda item: item[1][:2]):
        seeds = groups[key]
        first = next(iter(seeds.values()))[0]
        expected = len(first.info["task"]["folds"])
        folds = min(len({r.job.fold for r in rs}) for rs in seeds.values())
        complete = folds == expected
        pooled = tuple(_pooled(rs, head) for _, rs in sorted(seeds.items())) if complete else ()
        synthetic = first.info["task"]["synthetic"]
        data = first.info["task"].get("data", "synthetic" if synthetic else "real")
        row = RunScores(key[0], key[1], key[2], key[3], synthetic, folds, expected,
                        tuple(sorted(seeds)), tuple(_scored(p) for p in pooled),
                        tuple(first.predictions.classes), data, pooled,
                        _provenance(first, [r for rs in seeds.values() for r in rs]),
                        _digest(data_identity(first.job)))
        rows.append(row)
        parts = sorted({clip.split("/")[0] for r in seeds[min(seeds)] for clip in
                        r.predictions.clips})
        for dataset in parts if len(parts) > 1 else ():
            part = tuple(_pooled(rs, head, dataset) for _, rs in sorted(seeds.items())) \
                if complete else ()
            rows.append(replace(row, task=f"{row.task}[{dataset}]",
                                per_seed=tuple(_scored(p) for p in part), pooled=part))
    return rows


def _digest(identity: tuple) -> str:
    return hashlib.sha256(repr(identity).encode()).hexdigest()[:8]


def _provenance(record: JobRecord, records: list[JobRecord]) -> dict:
    facts = {k: record.info["task"][k] for k in CARD_FACTS if k in record.info["task"]}
    threads = {r.info.get("environment", {}).get("cpu_threads") for r in records} - {None}
    if threads:  # more than one: its folds' float reductions differed (the bits may)
        facts["cpu threads"] = sorted(threads)
    return {"annotations": dict(record.job.versions).get("annotations", ""), **facts}


CARD_FACTS = ("exclusions", "source", "dropped_classes")  # as job_results.provenance writes


def _pooled(records: list[JobRecord], head: str, dataset: str | None = None) -> Pooled:
    """The records' predictions pooled, in fold order (only `dataset`'s clips, if given)."""
    records = sorted(records, key=lambda r: r.job.fold)
    labels = np.concatenate([r.predictions.labels for r in records])
    predicted = np.concatenate([r.predictions.logits[head].argmax(1) for r in records])
    subjects = np.array([s for r in records for s in r.predictions.subjects])
    if dataset is not None:
        keep = np.array([c.split("/")[0] == dataset for r in records for c in r.predictions.clips])
        labels, predicted, subjects = labels[keep], predicted[keep], subjects[keep]
    return Pooled(labels, predicted, tuple(subjects), len(records[0].predictions.classes))


def _scored(pooled: Pooled) -> Scores:
    return score(pooled.labels, pooled.predicted, pooled.num_classes)


def format_cell(run: RunScores, metric: str, interval: bool = False) -> str:
    """Mean (± sd over seeds), with its 95% subject-bootstrap interval if asked and known."""
    if not run.complete:
        return f"incomplete ({run.folds}/{run.folds_expected} folds)"
    mean, std = run.mean_std(metric)
    text = f"{mean:.2f} ± {std:.2f}" if len(run.per_seed) > 1 else f"{mean:.2f}"
    if interval and metric in run.intervals:
        low, high = run.intervals[metric]
        text += f" [{low:.1f}, {high:.1f}]"
    return text


DATA_VERSION_MARK = " (data "  # a row label's suffix where several data versions are stored


def comparison_frame(runs: list[RunScores]) -> pd.DataFrame:
    """Methods x tasks, UF1/UAR in percent, with folds, seeds and the selection rule."""
    labels = {run.task: run.task + (f" ({run.data})" if run.data != "real" else "")
              for run in runs}
    columns = [f"{labels[task]} {metric}" for task in sorted(labels)
               for metric in ("UF1", "UAR", "folds x seeds")]
    table: dict[tuple, dict[str, str]] = defaultdict(dict)
    versions = defaultdict(set)
    for run in runs:
        versions[(run.method, run.task, run.selection, run.budget)].add(run.data_version)
    for run in runs:
        method = run.method
        if len(versions[(run.method, run.task, run.selection, run.budget)]) > 1:
            method += f"{DATA_VERSION_MARK}{run.data_version})"  # several versions stored
        row = table[(method, run.selection, "default" if run.budget is None else run.budget)]
        row[f"{labels[run.task]} UF1"] = format_cell(run, "uf1")
        row[f"{labels[run.task]} UAR"] = format_cell(run, "uar")
        row[f"{labels[run.task]} folds x seeds"] = f"{run.folds} x {len(run.seeds)}"
    frame = pd.DataFrame([{"method": m, "selection": s, "budget": b, **cells}
                          for (m, s, b), cells in table.items()],
                         columns=["method", "selection", "budget", *columns])
    return frame.fillna("missing")


def tidy_frame(runs: list[RunScores]) -> pd.DataFrame:
    """One line per run, numbers unformatted: the CSV that other tools read."""
    lines = []
    for run in runs:
        line = {"method": run.method, "task": run.task, "data": run.data,
                "data_version": run.data_version, "selection": run.selection, "budget": run.budget,
                "folds": run.folds, "folds_expected": run.folds_expected,
                "seeds": " ".join(map(str, run.seeds))}
        for metric in ("uf1", "uar", "accuracy"):
            mean, std = run.mean_std(metric) if run.complete else (np.nan, np.nan)
            line[f"{metric}_mean"], line[f"{metric}_std"] = mean, std
            low, high = run.intervals.get(metric, (np.nan, np.nan))
            line[f"{metric}_ci95_low"], line[f"{metric}_ci95_high"] = low, high
        for metric in ("uf1", "uar"):  # named apart: never MEGC's pooled score
            line[f"{metric}_subject_mean"] = run.subject_mean.get(metric, np.nan)
        lines.append(line)
    return pd.DataFrame(lines)


def synthetic_note(runs: list[RunScores]) -> str:
    synthetic = sorted({run.task for run in runs if run.synthetic})
    if not synthetic:
        return ""
    return (f"Data: {', '.join(synthetic)} = SYNTHETIC clips generated from scikit-image's "
            "astronaut face; not a real micro-expression dataset, so these numbers say nothing "
            "about real MER performance.")


def released_note(runs: list[RunScores]) -> str:
    released = sorted({run.task for run in runs if run.data == "released flows"})
    if not released:
        return ""
    return (f"Data: {', '.join(released)} = real clips read from the flow images their "
            "authors released (HTNet's composite images): the authors' preprocessing, not the "
            "harness's; TASK[dataset] scores one dataset's clips of the composite's predictions.")


def render_markdown(runs: list[RunScores]) -> str:
    if not runs:
        return "No finished runs in the store."
    frame = comparison_frame(runs)
    lines = ["UF1 and UAR (%) pooled over the folds (MEGC 2019; folds leave one subject out, "
             "or one dataset out where a task says @lodo); mean ± sd over seeds.",
             "Selection `last`: the model at the end of a fixed budget (no test labels read); "
             "`weights=NAME`: released per-subject weights, evaluated without training."]
    lines += [note for note in (synthetic_note(runs), released_note(runs)) if note]
    return "\n".join(lines) + "\n\n" + tabulate(frame, headers="keys", tablefmt="github",
                                               showindex=False, disable_numparse=True) + "\n"


def ablation_frame(runs: list[RunScores], switches: dict[str, dict]) -> pd.DataFrame:
    """The paper's Table 5 layout: a check mark per module, then UF1/UAR per task.

    `switches` maps a method label to its module switches (column name -> on), as its method
    declares them (`ablation_switches`); runs of other methods are left out.
    """
    selected = [run for run in runs if run.method in switches]
    frame = comparison_frame(selected)
    if frame.empty:
        return frame
    columns = list(dict.fromkeys(name for run in selected for name in switches[run.method]))
    # a row's label, less what comparison_frame adds where several data versions are stored
    own = [switches[m.split(DATA_VERSION_MARK)[0]] for m in frame.method]
    for position, name in enumerate(columns):
        frame.insert(1 + position, name, ["✓" if row.get(name) else "" for row in own])
    order = sorted(range(len(frame)), key=lambda i: (sum(own[i].values()), frame.method[i]))
    return frame.iloc[order]


def render_ablation(runs: list[RunScores], switches: dict[str, dict],
                    legends: tuple[str, ...] = ()) -> str:
    """`legends`: what the switch columns mean, as their methods say (`ablation_legend`)."""
    frame = ablation_frame(runs, switches)
    if frame.empty:
        return ""
    header = [" ".join(("Ablation: a module on (✓) or off per row.", *legends,
                        "UF1/UAR (%) pooled over the folds."))]
    note = synthetic_note([run for run in runs if run.method in switches])
    if note:
        header.append(note)
    return "\n".join(header) + "\n\n" + tabulate(frame, headers="keys", tablefmt="github",
                                                   showindex=False, disable_numparse=True) + "\n"


def write_tables(runs: list[RunScores], folder: Path, switches: dict[str, dict] | None = None,
                 legends: tuple[str, ...] = ()) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    markdown, csv = folder / "comparison.md", folder / "comparison.csv"
    markdown.write_text(render_markdown(runs))
    tidy_frame(runs).to_csv(csv, index=False)
    written = [markdown, csv]
    ablation = render_ablation(runs, switches or {}, legends)
    if ablation:
        (folder / "ablation.md").write_text(ablation)
        ablation_frame(runs, switches).to_csv(folder / "ablation.csv", index=False)
        written += [folder / "ablation.md", folder / "ablation.csv"]
    return written
