"""Where the authors' released artefacts are read from at test time: $MER_BENCH_RELEASED,
else <repo>/../shared/released. They are never copied into the repository; a test that
needs them is skipped, naming what it looked for, where they are absent."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np

from tests.dataset_trees import shared_dir, shared_path

FLOWS = "htnet_composite_flows"
CAUSALNET = "causalnet_composite_flows"
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


# (dataset, sub, clip, label) as HTNet's combined_3_class2_for_optical_flow.csv writes them
ROWS = [("casme2", "sub01", "EP02_01f", "1"), ("casme2", "sub01", "EP19_05f", "0"),
        ("casme2", "sub02", "EP01_11f", "2"), ("samm", "006", "006_1_2", "0"),
        ("samm", "007", "007_3_1", "1"), ("smic", "s01", "s01_ne_01", "0"),
        ("smic", "s01", "s01_po_02", "1"), ("smic", "s02", "s02_sur_01", "2")]


def write_release(root, rows=ROWS, seed=0, suffixes=()):
    """A folder in the released layout: the label CSV and one 28x28 PNG per clip, named
    `<sub>_<clip> .png` (with the space) and written with OpenCV; and one more per clip for
    each of `suffixes` (`<sub>_<clip>_1 .png` for "_1", as CausalNet's release names them)."""
    images = root / "STSNet_whole_norm_u_v_os"
    images.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    with open(root / "combined_3_class2_for_optical_flow.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["dataset", "sub", "filename_o", "label", "apex", "imagename",
                         "sub_filename"])
        for dataset, sub, clip, label in rows:
            writer.writerow([dataset, sub, clip, label, "", f"{sub}_{clip}.jpg", ""])
            for suffix in ("", *suffixes):
                cv2.imwrite(str(images / f"{sub}_{clip}{suffix} .png"),
                            rng.integers(0, 256, (28, 28, 3), dtype=np.uint8))
    return root
