"""Named evaluations: which datasets, which emotion -> class mapping, which clips are excluded.

A task turns adapter clips into labelled samples. Every clip it leaves out is counted under a
reason and listed, never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from benchmark.registry import Registry
from datasets.clip import Clip


@dataclass(frozen=True)
class Task:
    """`mapping` takes a lower-cased emotion as the sheet writes it to a class name."""

    name: str
    datasets: tuple[str, ...]
    classes: tuple[str, ...]
    mapping: Mapping[str, str]
    description: str = ""

    def label_of(self, clip: Clip) -> int | None:
        name = self.mapping.get(clip.emotion.strip().lower())
        return None if name is None else self.classes.index(name)


@dataclass(frozen=True)
class Sample:
    clip: Clip
    label: int


@dataclass
class TaskData:
    """A task's samples and everything it excluded, with the reason for each exclusion."""

    task: Task
    samples: list[Sample]
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (clip key, reason)
    synthetic: bool = False
    annotation_versions: dict[str, str] = field(default_factory=dict)

    def exclusion_counts(self) -> Counter:
        return Counter(reason for _, reason in self.excluded)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(sample.label for sample in self.samples)
        return {name: counts.get(index, 0) for index, name in enumerate(self.task.classes)}

    def subjects(self) -> list[str]:
        return sorted({sample.clip.subject_key for sample in self.samples})

    def without(self, failed: Mapping[str, str]) -> "TaskData":
        """The same task less the clips that could not be preprocessed, each listed with why."""
        kept = [s for s in self.samples if s.clip.key not in failed]
        dropped = [(s.clip.key, f"preprocessing: {failed[s.clip.key]}") for s in self.samples
                   if s.clip.key in failed]
        return TaskData(self.task, kept, self.excluded + dropped, self.synthetic,
                        self.annotation_versions)


def exclusion_reason(task: Task, clip: Clip) -> str | None:
    """Why a clip cannot be a sample of this task, or None if it can."""
    if task.label_of(clip) is None:
        return f"emotion {clip.emotion.strip().lower()!r} not in {task.name}"
    if clip.apex is None:
        return "apex missing"
    if clip.apex == clip.onset:
        return "apex equals onset"
    if not clip.onset <= clip.apex <= clip.offset:
        return "apex outside onset..offset"
    return None


def label_clips(task: Task, clips: list[Clip]) -> tuple[list[Sample], list[tuple[str, str]]]:
    samples, excluded = [], []
    for clip in clips:
        reason = exclusion_reason(task, clip)
        if reason is None:
            samples.append(Sample(clip, task.label_of(clip)))
        else:
            excluded.append((clip.key, reason))
    return samples, excluded


def load_task(task: Task, data_roots: Mapping[str, Path]) -> TaskData:
    """Reads every dataset of the task through its adapter (roots by dataset name)."""
    from datasets import DATASETS

    samples, excluded, versions, synthetic = [], [], {}, False
    for dataset_name in task.datasets:
        adapter = DATASETS.build(dataset_name, root=data_roots[dataset_name])
        kept, dropped = label_clips(task, adapter.clips())
        samples += kept
        excluded += dropped
        versions[dataset_name] = adapter.annotation_version()
        synthetic = synthetic or adapter.synthetic
    return TaskData(task, samples, excluded, synthetic, versions)


CASME2_5 = {"happiness": "happiness", "surprise": "surprise", "disgust": "disgust",
            "repression": "repression", "others": "others"}

TASKS = Registry("task", entry_point_group="mer_bench.tasks")
TASKS.register("synthetic-5", Task, name="synthetic-5", datasets=("synthetic",),
               classes=tuple(CASME2_5), mapping=CASME2_5,
               description="synthetic CASME II-layout clips, CASME II's five classes")
TASKS.register("casme2-5", Task, name="casme2-5", datasets=("casme2",),
               classes=tuple(CASME2_5), mapping=CASME2_5,
               description="CASME II, five classes (fear and sadness excluded)")
