"""Scores per-clip predictions made anywhere (another paper's released predictions, a log)
under a task's clips and labels, so they can be put beside the harness's own rows.

The file is a published per-clip log (stats/prediction_logs.py: STSTNet's, CapsuleNet's),
read as shipped, or a CSV with a header: `clip` (a full key `dataset/subject/clip`, or the clip name
with `dataset` and `subject` columns, or the clip name alone where it is unique in the task)
and either `predicted` (a class index or name) or one logit column per class, named by
class. A `label` column, if present, is compared with the task's label of each clip. Names
match with numbers compared unpadded (`s01_ne_01` is `s1_ne_01`); a `dataset/subject/clip`
the task does not hold as written matches the task's clip of that name in that dataset where
there is one (CapsuleNet's log names SMIC's subject `s20` as `20`). Every clip of the file
that is not in the task, and every clip of the task that the file lacks, is named; clips a
file is declared to lack (`declared`) are named apart and do not make it incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mer_bench.benchmark.stats.metrics import Scores, score
from mer_bench.benchmark.stats.prediction_logs import looks_like_log, read_log
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
    declared: list[str] = field(default_factory=list)  # missing, and declared so
    declared_present: list[str] = field(default_factory=list)  # declared, yet in the file
    # Where the file's own true classes differ from the task's on some clip: the scores under
    # the file's (what its authors computed and published), beside the task's.
    predicted: dict[str, int] = field(default_factory=dict)  # clip key -> class, as matched
    own_labels: Scores | None = None
    own_label_parts: dict[str, Scores] = field(default_factory=dict)
    label_disagreements: list[str] = field(default_factory=list)
    folds_complete: int = 0  # folds with every clip of the task in the file, declared or not
    folds: int = 0

    @property
    def whole(self) -> bool:
        """Scored, with no clip missing that was not declared, and no declaration wrong."""
        return self.scores is not None and not self.missing and not self.declared_present

    def lines(self) -> list[str]:
        total = self.matched + len(self.missing) + len(self.declared)
        out = [f"{self.task}: {self.matched} of {total} clips scored"
               + (f" ({len(self.declared)} declared missing)" if self.declared else "")
               + f"; {self.folds_complete} of {self.folds} folds have every clip"]
        if self.scores is not None:
            out.append(_scores_line(self.task, self.scores))
        out += [_scores_line(f"  {self.task}[{d}]", s) for d, s in self.parts.items()]
        if self.own_labels is not None:
            count = len(self.label_disagreements)
            out.append(f"under the file's own true classes ({count} clip"
                       f"{' differs' if count == 1 else 's differ'} from the task's):")
            out.append(_scores_line(f"  {self.task}", self.own_labels))
            out += [_scores_line(f"  {self.task}[{d}]", s)
                    for d, s in self.own_label_parts.items()]
        for what, names in (("not in the task", self.unmatched),
                            ("declared missing, not scored", self.declared),
                            ("declared missing, yet in the file", self.declared_present),
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
    if looks_like_log(path):
        log = read_log(path)
        return pd.DataFrame(
            [(name_key(name), _class_index(row.predicted, classes, where),
              _class_index(row.label, classes, where), name)
             for row in log.itertuples()
             for name, where in [(f"{row.dataset}/{row.subject}/{row.clip}",
                                  f"{path} clip {row.clip} of {row.dataset} {row.subject}")]],
            columns=["key", "predicted", "label", "name"])
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


def score_file(path: Path, data: TaskData, declared: list[str] | None = None,
               allow_missing: bool = False) -> ScoreReport:
    """Scores the file on the task's clips it covers. `declared`: clips (keys or names) the
    file is known to lack, e.g. as its authors' README names them; `allow_missing`: every
    clip it lacks is declared. A declared clip is scored on neither side and named."""
    classes = data.task.classes
    rows = read_predictions(path, classes)
    index = _Index.of(data)
    found: dict[str, tuple[int, int]] = {}  # clip key -> (predicted, file label)
    report = ScoreReport(data.task.name, None)
    for key, predicted, label, name in rows.itertuples(index=False):
        sample = index.match(key)
        if sample is None or sample.clip.key in found:
            report.unmatched.append(name if sample is None else f"{name} (again)")
            continue
        found[sample.clip.key] = (predicted, label)
    lacking = [s.clip.key for s in data.samples if s.clip.key not in found]
    if allow_missing:
        report.declared = lacking
    elif declared:
        named = {}
        for name in declared:
            sample = index.match(name_key(name))
            if sample is None:
                raise ValueError(f"declared missing clip {name!r} is not a clip of task "
                                 f"{data.task.name}")
            named[sample.clip.key] = name
        report.declared = [k for k in lacking if k in named]
        report.declared_present = sorted(v for k, v in named.items() if k in found)
    report.missing = [k for k in lacking if k not in report.declared]
    kept = [s for s in data.samples if s.clip.key in found]
    report.matched = len(kept)
    report.predicted = {s.clip.key: int(found[s.clip.key][0]) for s in kept}
    report.label_disagreements = [s.clip.key for s in kept
                                  if found[s.clip.key][1] not in (-1, s.label)]
    folds = set(data.folds())
    absent = set(lacking)
    incomplete = {data.task.fold_key(s.clip) for s in data.samples if s.clip.key in absent}
    report.folds, report.folds_complete = len(folds), len(folds - incomplete)
    if kept:
        labels = np.array([s.label for s in kept])
        predicted = np.array([found[s.clip.key][0] for s in kept])
        datasets = np.array([s.clip.dataset for s in kept])
        report.scores, report.parts = _scores_and_parts(labels, predicted, datasets, classes)
        own = np.array([found[s.clip.key][1] for s in kept])
        if report.label_disagreements and (own >= 0).all():
            report.own_labels, report.own_label_parts = _scores_and_parts(own, predicted,
                                                                          datasets, classes)
    return report


def _scores_and_parts(labels, predicted, datasets, classes) -> tuple[Scores, dict]:
    """Pooled scores, and each dataset's where the clips come from several."""
    parts = {d: score(labels[datasets == d], predicted[datasets == d], len(classes))
             for d in sorted(set(datasets))} if len(set(datasets)) > 1 else {}
    return score(labels, predicted, len(classes)), parts


@dataclass
class _Index:
    """A task's samples by name key, and by clip name (numbers unpadded)."""

    by_key: dict
    by_clip: dict

    @classmethod
    def of(cls, data: TaskData) -> "_Index":
        by_clip: dict[str, list] = {}
        for sample in data.samples:
            by_clip.setdefault(name_key(sample.clip.clip), []).append(sample)
        return cls({name_key(s.clip.key): s for s in data.samples}, by_clip)

    def match(self, key: str):
        """The sample a file's name key names: the full key, else the clip name where it is
        unique in the task (in the named dataset, if a dataset is named); None if none."""
        if key in self.by_key:
            return self.by_key[key]
        parts = key.split("/")
        candidates = self.by_clip.get(parts[-1], [])
        if len(parts) == 3:  # dataset/subject/clip: the clip of that name in that dataset
            candidates = [s for s in candidates if name_key(s.clip.dataset) == parts[0]]
        return candidates[0] if len(candidates) == 1 else None
