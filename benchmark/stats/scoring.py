"""Scores per-clip predictions made anywhere (another paper's released predictions, a log)
under a task's clips and labels, so they can be put beside the harness's own rows.

The file is a CSV with a header: `clip` (a full key `dataset/subject/clip`, or the clip name
with `dataset` and `subject` columns, or the clip name alone where it is unique in the task)
and either `predicted` (a class index or name) or one logit column per class, named by
class. A `label` column, if present, is compared with the task's label of each clip. Names
match with numbers compared unpadded (`s01_ne_01` is `s1_ne_01`). Every clip of the file that
is not in the task, and every clip of the task that the file lacks, is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mer_bench.benchmark.stats.metrics import Scores, score
from mer_bench.benchmark.protocol.tasks import TaskData
from mer_bench.datasets.sheets import name_key


@dataclass
class ScoreReport:
    task: str
    scores: Scores | None  # over the matched clips; None if none matched
    parts: dict[str, Scores] = field(default_factory=dict)  # per dataset, if several
    matched: int = 0
    unmatched: list[str] = field(default_factory=list)  # in the file, not in the task
    missing: list[str] = field(default_factory=list)  # in the task, not in the file
    label_disagreements: list[str] = field(default_factory=list)
    folds_complete: int = 0
    folds: int = 0

    def lines(self) -> list[str]:
        total = self.matched + len(self.missing)
        out = [f"{self.task}: {self.matched} of {total} clips scored; {self.folds_complete} of "
               f"{self.folds} folds complete"]
        if self.scores is not None:
            out.append(_scores_line(self.task, self.scores))
        out += [_scores_line(f"  {self.task}[{d}]", s) for d, s in self.parts.items()]
        for what, names in (("not in the task", self.unmatched),
                            ("missing from the file", self.missing),
                            ("label differs from the task's", self.label_disagreements)):
            if names:
                out.append(f"{len(names)} clip(s) {what}: {', '.join(names)}")
        return out


def _scores_line(name: str, scores: Scores) -> str:
    return (f"{name}: UF1 {scores.uf1:.4f}, UAR {scores.uar:.4f}, accuracy "
            f"{scores.accuracy:.4f} ({sum(map(sum, scores.confusion))} clips)")


def _class_index(value: str, classes: tuple[str, ...], where: str) -> int:
    text = str(value).strip()
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    if text.lower() in classes:
        return classes.index(text.lower())
    raise ValueError(f"{where}: class {text!r}; expected 0..{len(classes) - 1} or one of "
                     f"{list(classes)}")


def _logit(text: str, where: str, column: str) -> float:
    """A logit cell as a finite number; a blank, a word, NaN or infinity is refused, named."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(f"{where}, column {column!r}: {text!r} is not a number; every logit "
                         "cell must hold a finite number") from None
    if not np.isfinite(value):
        raise ValueError(f"{where}, column {column!r}: {text!r} is not finite; a prediction "
                         "made from NaN or infinite logits is not scored")
    return value


def read_predictions(path: Path, classes: tuple[str, ...]) -> pd.DataFrame:
    """The file's rows as (name key, predicted index, label index or -1, where)."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"predictions file {path} cannot be read: {error}") from None
    columns = {c.strip().lower(): c for c in table.columns}
    if "clip" not in columns:
        raise ValueError(f"predictions file {path}: no `clip` column; it has "
                         f"{list(table.columns)}")
    logit_columns = [columns[c] for c in classes if c in columns]
    if "predicted" not in columns and len(logit_columns) != len(classes):
        raise ValueError(f"predictions file {path}: expected a `predicted` column or one logit "
                         f"column per class {list(classes)}; it has {list(table.columns)}")
    rows = []
    for index, row in table.iterrows():
        where = f"{path} line {int(index) + 2}"
        parts = [row[columns[c]] for c in ("dataset", "subject") if c in columns]
        name = "/".join([*parts, row[columns["clip"]]])
        if "predicted" in columns:
            predicted = _class_index(row[columns["predicted"]], classes, where)
        else:
            predicted = int(np.argmax([_logit(row[c], where, c) for c in logit_columns]))
        label = (_class_index(row[columns["label"]], classes, where) if "label" in columns
                 else -1)
        rows.append((name_key(name), predicted, label, name))
    return pd.DataFrame(rows, columns=["key", "predicted", "label", "name"])


def score_file(path: Path, data: TaskData) -> ScoreReport:
    classes = data.task.classes
    rows = read_predictions(path, classes)
    by_key = {name_key(s.clip.key): s for s in data.samples}
    by_clip: dict[str, list] = {}
    for sample in data.samples:
        by_clip.setdefault(name_key(sample.clip.clip), []).append(sample)
    found: dict[str, tuple[int, int]] = {}  # clip key -> (predicted, file label)
    report = ScoreReport(data.task.name, None)
    for key, predicted, label, name in rows.itertuples(index=False):
        sample = by_key.get(key)
        if sample is None and len(by_clip.get(key, [])) == 1:
            sample = by_clip[key][0]
        if sample is None or sample.clip.key in found:
            report.unmatched.append(name if sample is None else f"{name} (again)")
            continue
        found[sample.clip.key] = (predicted, label)
    report.missing = [s.clip.key for s in data.samples if s.clip.key not in found]
    kept = [s for s in data.samples if s.clip.key in found]
    report.matched = len(kept)
    report.label_disagreements = [s.clip.key for s in kept
                                  if found[s.clip.key][1] not in (-1, s.label)]
    folds = set(data.folds())
    incomplete = {data.task.fold_key(s.clip) for s in data.samples if s.clip.key not in found}
    report.folds, report.folds_complete = len(folds), len(folds - incomplete)
    if kept:
        labels = np.array([s.label for s in kept])
        predicted = np.array([found[s.clip.key][0] for s in kept])
        report.scores = score(labels, predicted, len(classes))
        datasets = np.array([s.clip.dataset for s in kept])
        if len(set(datasets)) > 1:
            report.parts = {d: score(labels[datasets == d], predicted[datasets == d],
                                     len(classes)) for d in sorted(set(datasets))}
    return report
