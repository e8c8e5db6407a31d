"""Where the authors' released artefacts are read from at test time: $MER_BENCH_RELEASED,
else <repo>/../shared/released. They are never copied into the repository; a test that
needs them is skipped, naming what it looked for, where they are absent."""

from __future__ import annotations

import re
from pathlib import Path

from tests.dataset_trees import shared_dir, shared_path

FLOWS = "htnet_composite_flows"
WEIGHTS = "ststnet_weights"


def released_dir() -> Path:
    return shared_dir("MER_BENCH_RELEASED", "released")


def released(name: str) -> Path:
    return shared_path("MER_BENCH_RELEASED", "released", name, "released artefact")


def python_log(path: Path) -> tuple[dict[str, list[int]], tuple[float, float]]:
    """The STSTNet release's evaluation log: subject -> predicted classes as logged, and the
    final (UF1, UAR)."""
    predicted, final, subject = {}, None, None
    text = path.read_text()
    for line in text.splitlines():
        if line.startswith("Subject:"):
            subject = line.split(":", 1)[1].strip()
        elif line.startswith("Predicted") and subject:
            predicted[subject] = [int(v) for v in re.findall(r"\d+", line.split(":", 1)[1])]
    match = re.search(r"Final Evaluation:\s*UF1:\s*([\d.]+)\s*\|\s*UAR:\s*([\d.]+)", text)
    if match:
        final = (float(match[1]), float(match[2]))
    return predicted, final


def matlab_log_rows(path: Path) -> list[tuple[str, str, str, int, int]]:
    """The MATLAB run's log: (dataset, subject, clip, true class, predicted class) per clip."""
    rows, dataset, subject = [], None, None
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            dataset, subject = parts
        elif len(parts) == 3:
            rows.append((dataset, subject, parts[0], int(parts[1]), int(parts[2])))
    return rows
