"""Named evaluations: which datasets, which emotion -> class mapping, which clips are excluded.

A task turns adapter clips into labelled samples. Every clip it leaves out is counted under a
reason and listed, never dropped silently; every rule an adapter applied to a clip it keeps
(a repaired frame number, a fallback apex) is carried along as a `Note` and listed too.

The engine's part is here: what a task is and how it labels clips. The tasks themselves (the
paper's and MEGC 2019's, which name datasets) are listed in datasets/tasks.py, registered into
TASKS on its first use.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from mer_bench.benchmark.protocol.registry import Registry
from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.sheets import annotation_folders, file_digest, find_annotation, name_key


@dataclass(frozen=True)
class Source:
    """One dataset of a task: its adapter (registry name), the options the adapter is built
    with, and the mapping from an emotion as the dataset writes it (compared lower-cased) to
    a class of the task."""

    dataset: str
    mapping: Mapping[str, str]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameRules:
    """Which frame annotations exclude a clip. A clip without an apex is always excluded."""

    exclude_apex_at_onset: bool = True  # if False: kept, and noted ("kept")
    require_apex_within: bool = True  # onset <= apex <= offset (CK+: offset = onset, by rule)


@dataclass(frozen=True)
class MemberList:
    """A published list of exactly the task's clips (e.g. MEGC 2019's combined_3class_gt.csv:
    no header; dataset, subject, clip, label code). Rows of other datasets are ignored; clips
    are matched by (dataset, subject, clip) with numbers compared unpadded; the list's label
    is the sample's label."""

    title: str
    filename: str
    labels: Mapping[str, str]  # label code as the list writes it -> class name


# How a task's clips become folds; what its tables and protocol cards say of it.
PROTOCOLS = {
    "loso": "leave one subject out over (dataset, subject): each subject tested once, trained "
            "on all the others",
    "lodo": "leave one dataset out: each dataset tested once, trained on the task's other "
            "datasets (no subject on both sides); on two datasets, both directions",
}


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    sources: tuple[Source, ...]
    description: str = ""
    frames: FrameRules = FrameRules()
    members: MemberList | None = None
    # Asked for by the name suffix DROP_EMPTY: a class the data read lacks is dropped (and
    # said so) instead of refusing the task.
    drop_empty: bool = False
    # How its samples are split into folds (PROTOCOLS); `NAME@lodo` asks for "lodo".
    protocol: str = "loso"

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"task {self.name}: protocol {self.protocol!r}; expected one of "
                             f"{sorted(PROTOCOLS)}")
        for source in self.sources:
            unknown = set(source.mapping.values()) - set(self.classes)
            if unknown:
                raise ValueError(f"task {self.name}: {source.dataset} maps to {sorted(unknown)}, "
                                 f"which are not among its classes {self.classes}")
        if self.members:
            unknown = set(self.members.labels.values()) - set(self.classes)
            if unknown:
                raise ValueError(f"task {self.name}: list labels {sorted(unknown)} not classes")

    def fold_key(self, clip: Clip) -> str:
        """The fold a clip is tested in: its (dataset, subject) under LOSO, its dataset under
        leave one dataset out (a released-flow source's clips keep their own datasets)."""
        return clip.dataset if self.protocol == "lodo" else clip.subject_key

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(source.dataset for source in self.sources)

    def source(self, dataset: str) -> Source:
        return next(source for source in self.sources if source.dataset == dataset)

    def class_of(self, clip: Clip, source: Source | None = None) -> str | None:
        """The class of a clip read by `source` (default: the source named like its dataset;
        a released-flow source serves clips of several datasets)."""
        source = source or self.source(clip.dataset)
        return source.mapping.get(clip.emotion.strip().lower())

    def label_of(self, clip: Clip, source: Source | None = None) -> int | None:
        name = self.class_of(clip, source)
        return None if name is None else self.classes.index(name)


@dataclass(frozen=True)
class Sample:
    clip: Clip
    label: int


@dataclass
class TaskData:
    """A task's samples and everything it excluded, with the reason for each exclusion, and
    the rules applied to the clips it kept."""

    task: Task
    samples: list[Sample]
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (clip key, reason)
    synthetic: bool = False
    annotation_versions: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)  # every rule applied, rows dropped too
    # Where the samples' inputs come from when not the datasets' own frames (an adapter's
    # `source`, e.g. released flow images), and the only views such a source can serve.
    source: str = ""
    served_views: tuple[str, ...] | None = None  # None: every view (frames are there)
    # Which folder an adapter read where it was not the root given (found one level down).
    root_notes: tuple[str, ...] = ()
    dropped_classes: tuple[str, ...] = ()  # classes without samples, dropped on request

    @property
    def run_notes(self) -> tuple[str, ...]:
        """What a run and `list tasks` print of how the data were read."""
        dropped = (f"class {', '.join(self.dropped_classes)} has no samples: dropped on "
                   f"request ({DROP_EMPTY}); scores are over {len(self.task.classes)} classes",)
        return self.root_notes + (dropped if self.dropped_classes else ())

    @property
    def data_label(self) -> str:
        """What a table says the numbers came from."""
        return "synthetic" if self.synthetic else ("released flows" if self.source else "real")

    def exclusion_counts(self) -> Counter:
        return Counter(reason for _, reason in self.excluded)

    def note_counts(self) -> Counter:
        """(action, rule) -> samples it was applied to (repaired, fell back, kept, relabelled).
        Rules applied to clips the task excludes stay in `notes`, uncounted here."""
        keys = {sample.clip.key for sample in self.samples}
        return Counter((note.action, note.rule) for note in self.notes
                       if note.action != "dropped" and note.clip_key in keys)

    def empty_classes(self) -> list[str]:
        return [name for name, count in self.class_counts().items() if count == 0]

    def class_counts(self) -> dict[str, int]:
        counts = Counter(sample.label for sample in self.samples)
        return {name: counts.get(index, 0) for index, name in enumerate(self.task.classes)}

    def subjects(self) -> list[str]:
        return sorted({sample.clip.subject_key for sample in self.samples})

    def fold_keys(self) -> list[str]:
        """Each sample's fold (Task.fold_key), in sample order."""
        return [self.task.fold_key(sample.clip) for sample in self.samples]

    def folds(self) -> list[str]:
        """The task's folds, sorted: its subjects under LOSO, its datasets under LODO."""
        return sorted(set(self.fold_keys()))

    def without(self, failed: Mapping[str, str]) -> "TaskData":
        """The same task less the clips that could not be preprocessed, each listed with why."""
        kept = [s for s in self.samples if s.clip.key not in failed]
        dropped = [(s.clip.key, f"preprocessing: {failed[s.clip.key]}") for s in self.samples
                   if s.clip.key in failed]
        return replace(self, samples=kept, excluded=self.excluded + dropped)


APEX_MISSING = "apex missing"
APEX_AT_ONSET = "apex equals onset"
APEX_AT_ONSET_KEPT = "apex equals onset (kept: the onset->apex flow is zero)"
APEX_OUTSIDE = "apex outside onset..offset"


def exclusion_reason(task: Task, clip: Clip, source: Source | None = None) -> str | None:
    """Why a clip cannot be a sample of this task (its emotion, its frames), or None."""
    if task.label_of(clip, source) is None:
        return f"emotion {clip.emotion.strip().lower()!r} not in {task.name}"
    return frame_reason(task, clip)


def frame_reason(task: Task, clip: Clip) -> str | None:
    if clip.image is not None:  # a released image: no frames to judge
        return None
    if clip.apex is None:
        return APEX_MISSING
    if clip.apex == clip.onset and task.frames.exclude_apex_at_onset:
        return APEX_AT_ONSET
    if task.frames.require_apex_within and not clip.onset <= clip.apex <= clip.offset:
        return APEX_OUTSIDE
    return None


def label_clips(task: Task, clips: list[Clip], members: "Members | None" = None,
                source: Source | None = None
                ) -> tuple[list[Sample], list[tuple[str, str]], list[Note]]:
    """Samples, exclusions (clip key, reason) and task-level notes for one source's clips."""
    samples, excluded, notes = [], [], []
    for clip in clips:
        if members is None:
            reason, label = exclusion_reason(task, clip, source), task.label_of(clip, source)
        else:
            label, reason = members.label(clip, notes), None
            if label is None:
                reason = f"not in the {members.spec.title}"
            else:
                reason = frame_reason(task, clip)
        if reason is not None:
            excluded.append((clip.key, reason))
            continue
        if clip.apex == clip.onset and clip.image is None:
            notes.append(Note(clip.key, "kept", APEX_AT_ONSET_KEPT, f"frame {clip.onset}"))
        samples.append(Sample(clip, label))
    return samples, excluded, notes


class Members:
    """The rows of a MemberList that belong to a task's datasets, matched to clips once each."""

    def __init__(self, task: Task, path: Path):
        self.task, self.spec, self.path = task, task.members, path
        try:
            table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
        except (ValueError, OSError) as error:
            raise DatasetError(f"{task.name}: {self.spec.title} {path} cannot be read: {error}")
        if table.shape[1] < 4:
            raise DatasetError(f"{task.name}: {self.spec.title} {path} has {table.shape[1]} "
                               "column(s); expected dataset, subject, clip, label (no header)")
        self.rows: dict[tuple[str, str, str], tuple[str, str, int]] = {}
        for index, row in table.iterrows():
            line = int(index) + 1
            dataset, subject, clip, code = (str(v).strip() for v in row.iloc[:4])
            if dataset.lower() not in task.datasets:
                continue
            if code not in self.spec.labels:
                raise DatasetError(f"{task.name}: {path} line {line}: label {code!r}; expected "
                                   f"one of {sorted(self.spec.labels)}")
            key = (dataset.lower(), name_key(subject), name_key(clip))
            if key in self.rows:
                raise DatasetError(f"{task.name}: {path} line {line} repeats line "
                                   f"{self.rows[key][2]} ({dataset} {subject} {clip})")
            self.rows[key] = (self.spec.labels[code], f"{dataset}/{subject}/{clip}", line)
        self.matched: set[tuple[str, str, str]] = set()

    def label(self, clip: Clip, notes: list[Note]) -> int | None:
        key = (clip.dataset, name_key(clip.subject), name_key(clip.clip))
        if key not in self.rows:
            return None
        if key in self.matched:
            raise DatasetError(f"{self.task.name}: two clips match {self.path} line "
                               f"{self.rows[key][2]} ({self.rows[key][1]}), e.g. {clip.key}")
        self.matched.add(key)
        listed = self.rows[key][0]
        mapped = self.task.class_of(clip)
        if mapped != listed:
            notes.append(Note(clip.key, "relabelled", f"label from the {self.spec.title}, not "
                              "the emotion's class", f"emotion {clip.emotion!r} ({mapped}); "
                              f"list line {self.rows[key][2]}: {listed}"))
        return self.task.classes.index(listed)

    def unmatched(self) -> list[tuple[str, str]]:
        return [(written, f"in the {self.spec.title} but not in the dataset")
                for key, (_, written, _) in sorted(self.rows.items()) if key not in self.matched]


def find_member_list(task: Task, data_roots: Mapping[str, Path]) -> Path:
    roots = [Path(data_roots[d]) for d in task.datasets]
    return find_annotation(task.name, task.members.title, (task.members.filename,),
                           annotation_folders(*roots))[0]


def _generated(clips) -> bool:
    """Whether any clip's files lie in a generated synthetic set, whatever adapter read it."""
    from mer_bench.datasets.synthetic_frames import generated_tree

    folders = {Path(clip.image or clip.frame_template).parent for clip in clips}
    return any(generated_tree(folder) is not None for folder in folders)


def load_task(task: Task, data_roots: Mapping[str, Path],
              empty_classes: str = "refuse", planned: bool = False) -> TaskData:
    """Reads every dataset of the task through its adapter (roots by dataset name). A class
    with no samples scores 0 and caps UF1 and UAR at (K - 1) / K, so by default such a task
    refuses (`empty_classes="refuse"`); "keep" reads it anyway, for listing. `planned`: a set
    generated on first use is read from what it will hold (its adapter class's `planned`),
    nothing generated: what a plan counts before a first run."""
    from mer_bench.datasets import DATASETS

    samples, excluded, notes, versions, synthetic = [], [], [], {}, False
    origins, served, root_notes = [], None, []
    members = None
    if task.members is not None:
        path = find_member_list(task, data_roots)
        members = Members(task, path)
        versions[f"list:{path.name}"] = file_digest(path)
    for source in task.sources:
        entry = DATASETS.entry(source.dataset)
        factory = entry.resolve() if not planned else getattr(entry.resolve(), "planned",
                                                                entry.resolve())
        adapter = factory(**entry.kwargs | {"root": data_roots[source.dataset]}
                          | dict(source.options))
        kept, dropped, task_notes = label_clips(task, adapter.clips(), members, source)
        adapter_notes = adapter.notes() if hasattr(adapter, "notes") else []
        excluded += [(note.clip_key, note.rule) for note in adapter_notes
                     if note.action == "dropped"]
        notes += adapter_notes
        samples += kept
        excluded += dropped
        notes += task_notes
        versions[source.dataset] = adapter.annotation_version()
        synthetic = synthetic or adapter.synthetic or _generated(adapter.clips())
        origins += [adapter.source] if getattr(adapter, "source", "") else []
        root_notes += [adapter.root_note] if getattr(adapter, "root_note", "") else []
        if getattr(adapter, "views", None) is not None:
            served = tuple(adapter.views) if served is None else \
                tuple(v for v in served if v in adapter.views)
    if members is not None:
        excluded += members.unmatched()
    if task.protocol == "lodo" and len({s.clip.dataset for s in samples}) < 2:
        raise DatasetError(f"task {task.name}: leaving one dataset out needs clips of two "
                           f"datasets at least; the data read have "
                           f"{sorted({s.clip.dataset for s in samples}) or 'none'}")
    data = TaskData(task, samples, excluded, synthetic, versions, notes, "; ".join(origins),
                    served, tuple(root_notes))
    empty = data.empty_classes()
    if empty and task.drop_empty:
        return _without_classes(data, empty)
    if empty and empty_classes == "refuse":
        counts = ", ".join(f"{name} {count}" for name, count in data.class_counts().items())
        classes = len(task.classes)
        raise DatasetError(
            f"task {task.name}: class {', '.join(empty)} has no samples in the data read "
            f"({counts}); a class without samples scores 0 and caps UF1 and UAR at "
            f"{classes - len(empty)}/{classes}, so the task refuses to run. Give data with "
            f"such clips (e.g. an annotation sheet that has them), choose a task without "
            f"the class, or run {task.name}{DROP_EMPTY} to drop it (its rows say so)")
    return data


DROP_EMPTY = "+drop-empty"
LODO = "@lodo"


def generated_on_first_use(dataset: str) -> bool:
    """A set its adapter writes on first use (synthetic): a listing or a plan leaves it unmade."""
    from mer_bench.datasets import DATASETS

    return bool(getattr(DATASETS.entry(dataset).resolve(), "synthetic", False))


def build_task(name: str) -> Task:
    """The registered task `name`. Suffixes ask for variants, each a task of its own name (so
    its rows and stored jobs never pass for NAME's): `NAME+drop-empty` drops a class the data
    read lack; `NAME@lodo` folds by dataset instead of subject (cross-dataset evaluation);
    both may be given, in that order (`NAME@lodo+drop-empty`)."""
    if name.endswith(DROP_EMPTY):
        return replace(build_task(name[: -len(DROP_EMPTY)]), name=name, drop_empty=True)
    if name.endswith(LODO):
        task = TASKS.build(name[: -len(LODO)])
        return replace(task, name=name, protocol="lodo",
                       description=f"{task.description}; {PROTOCOLS['lodo']}")
    return TASKS.build(name)


def _without_classes(data: TaskData, empty: list[str]) -> TaskData:
    """The data with the empty classes taken out of the task and the labels renumbered."""
    task = data.task
    kept = tuple(c for c in task.classes if c not in empty)
    sources = tuple(replace(s, mapping={k: v for k, v in s.mapping.items() if v in kept})
                    for s in task.sources)
    members = task.members and replace(
        task.members, labels={k: v for k, v in task.members.labels.items() if v in kept})
    reduced = replace(task, classes=kept, sources=sources, members=members)
    samples = [Sample(s.clip, kept.index(task.classes[s.label])) for s in data.samples]
    return replace(data, task=reduced, samples=samples, dropped_classes=tuple(empty))


TASKS = Registry("task", entry_point_group="mer_bench.tasks", modules=("mer_bench.datasets.tasks",))
