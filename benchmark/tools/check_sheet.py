"""Check sheets: one PNG per task (or per subject) to look at before spending GPU hours.

One row per sample clip (by default the first clip of each class, in the task's order; with a
subject, that subject's clips): the clip's first frame (its onset) with the face box the
detector found on it, the onset, apex and offset crops, every flow of the bundle as a colour
image (hue = direction, brightness = magnitude, one scale per row, printed), and a method's
input as it reads it (its `sheet_panel`; the flagship's by default, SKD-TSTSAN's 16 L-stream
blocks of the apex). A clip that fails preprocessing gets a row too: its first frame (if it
can be read) and the reason.

Only the sampled clips are prepared, into the same cache the runs use, so a sheet costs
seconds and the bundles are reused by the run that follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.storage.owned_outputs import PNG_MARK, check_replaceable_file, write_file
from mer_bench.benchmark.protocol.tasks import Sample, TaskData, build_task, load_task
from mer_bench.datasets.bundle_cache import prepare_clips

COLUMN_IN = 1.7  # inches per column
ROW_IN = 2.05  # inches per clip row
HEADER_IN = 1.0  # inches for the sheet's title (up to 4 lines) and the colour key
DPI = 100


@dataclass
class CheckSheet:
    path: Path
    rows: list[str]  # clip keys, top to bottom
    columns: int
    size: tuple[int, int]  # width, height in pixels
    failed: dict[str, str] = field(default_factory=dict)  # clip key -> reason


def sample_clips(data: TaskData, per_class: int | None = 1,
                 subject: str | None = None) -> list[Sample]:
    """`per_class` samples of each class (None: all), in class order; each class takes its
    first sample (in task order) of a subject no class has shown yet, if there is one, so the
    rows show several faces. With `subject` (e.g. `sub01` or `casme2/sub01`) only that
    subject's samples, in task order within each class."""
    samples = data.samples
    if subject is not None:
        samples = [s for s in samples if subject in (s.clip.subject, s.clip.subject_key)]
        if not samples:
            known = sorted({s.clip.subject_key for s in data.samples})
            raise ValueError(f"task {data.task.name} has no samples of subject {subject!r}; "
                             f"its subjects: {', '.join(known[:12])}"
                             + (" ..." if len(known) > 12 else ""))
    chosen: list[Sample] = []
    shown: set[str] = set()
    for label in range(len(data.task.classes)):
        of_class = [s for s in samples if s.label == label]
        if per_class is None:
            chosen += of_class
            continue
        fresh = [s for s in of_class if s.clip.subject_key not in shown]
        picked = (fresh + [s for s in of_class if s not in fresh])[:per_class]
        shown.update(s.clip.subject_key for s in picked)
        chosen += picked
    return chosen


def flow_colour(flow: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, 2) flow as RGB floats: hue = direction (angle of (u, v), image axes: v down),
    saturation 1, value = magnitude / scale, clipped to 1."""
    from matplotlib.colors import hsv_to_rgb

    u, v = flow[..., 0], flow[..., 1]
    hue = (np.arctan2(v, u) % (2 * np.pi)) / (2 * np.pi)
    value = np.clip(np.hypot(u, v) / scale, 0, 1)
    return hsv_to_rgb(np.dstack([hue, np.ones_like(hue), value]))


def flow_scale(flows: np.ndarray) -> float:
    """One brightness scale for a row's flows: the 99th percentile of their magnitudes (so one
    wild pixel does not darken the rest), at least 0.1 px."""
    return max(float(np.percentile(np.hypot(flows[..., 0], flows[..., 1]), 99)), 0.1)


def colour_wheel(size: int = 96) -> np.ndarray:
    """The key of flow_colour: RGBA, direction around, magnitude outwards, clear outside."""
    ys, xs = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    rgb = flow_colour(np.dstack([xs, ys]), 1.0)
    return np.dstack([rgb, (np.hypot(xs, ys) <= 1).astype(float)])


def _flow_titles(domains: int) -> list[str]:
    if domains == 2:
        return ["flow onset→apex", "flow apex→offset"]
    return [f"flow t{d}→t{d + 1}" for d in range(domains)]


def _first_frame(sample: Sample) -> np.ndarray | None:
    image = cv2.imread(str(sample.clip.frame_path(sample.clip.onset)), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def render(rows: list[tuple[Sample, dict | None, str | None]], classes: tuple[str, ...],
           domains: int, title: str, path: Path, method=None, guard: bool = False) -> CheckSheet:
    """Draws the sheet: rows of (sample, bundle or None, failure reason or None); the last
    column is `method`'s sheet panel, if it has one. `guard`: `path` was named by the user
    (only a PNG the harness wrote is replaced there)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, any backend
    from matplotlib.patches import Rectangle

    panels = [method.sheet_panel(bundle) if method is not None and bundle is not None else None
              for _, bundle, _ in rows]
    columns = 4 + domains + any(p is not None for p in panels)
    header_in = max(HEADER_IN, 0.35 + 0.19 * (title.count("\n") + 1))
    width_in, height_in = columns * COLUMN_IN, header_in + len(rows) * ROW_IN
    figure = Figure(figsize=(width_in, height_in), dpi=DPI)
    figure.text(0.01, 1 - 0.12 / height_in, title, va="top", ha="left", fontsize=10,
                family="monospace")
    key = figure.add_axes([1 - 0.95 / width_in, 1 - 0.95 / height_in, 0.8 / width_in,
                           0.8 / height_in])
    key.imshow(colour_wheel(), extent=(-1, 1, 1, -1))
    key.set_title("flow key", fontsize=7, pad=2)
    key.set_axis_off()
    grid = figure.add_gridspec(len(rows), columns, left=0.01, right=0.99, bottom=0.1 / height_in,
                               top=1 - (header_in + 0.35) / height_in, hspace=0.62, wspace=0.06)
    failed = {}
    for r, ((sample, bundle, reason), shown) in enumerate(zip(rows, panels)):
        clip = sample.clip
        axes = [figure.add_subplot(grid[r, c]) for c in range(columns)]
        for ax in axes:
            ax.set_axis_off()
        label = f"{classes[sample.label]}" + (
            f" (as written: {clip.emotion})" if clip.emotion.strip().lower() != classes[
                sample.label] else "")
        heading = (f"{clip.key}   label: {label}   frames: onset {clip.onset}, apex {clip.apex}, "
                   f"offset {clip.offset}")
        top = axes[0].get_position().y1
        figure.text(0.01, top + 0.33 / height_in, heading, fontsize=9, weight="bold", va="bottom")
        frame = _first_frame(sample)
        if frame is not None:
            axes[0].imshow(frame)
        axes[0].set_title("first frame + box", fontsize=7)
        if bundle is None:
            failed[clip.key] = reason or "not prepared"
            axes[1].text(0, 0.5, f"FAILED: {reason}", fontsize=8, color="red", wrap=True,
                         va="center", transform=axes[1].transAxes)
            continue
        left, top_, right, bottom = (int(v) for v in bundle["box"])
        axes[0].add_patch(Rectangle((left, top_), right - left, bottom - top_, fill=False,
                                    edgecolor="red", linewidth=1.2))
        for c, (name, face) in enumerate(zip(("onset", "apex", "offset"), bundle["faces"]), 1):
            axes[c].imshow(face, cmap="gray", vmin=0, vmax=255)
            axes[c].set_title(f"{name} crop", fontsize=7)
        flows = bundle["flows"]
        scale = flow_scale(flows)
        for d, (flow, name) in enumerate(zip(flows, _flow_titles(len(flows)))):
            axes[4 + d].imshow(flow_colour(flow, scale))
            peak = float(np.hypot(flow[..., 0], flow[..., 1]).max())
            axes[4 + d].set_title(f"{name}\nscale {scale:.2f} px, max {peak:.2f}", fontsize=6.5)
        if shown is not None:
            name, image = shown
            axes[-1].imshow(image, cmap="gray", vmin=0, vmax=1)
            axes[-1].set_title(name, fontsize=7)
    write_file(path, "check sheet", lambda temp: figure.savefig(  # Agg, as for every PNG
        temp, dpi=DPI, format="png", metadata=PNG_MARK), guard=guard)
    size = (round(width_in * DPI), round(height_in * DPI))
    return CheckSheet(path, [sample.clip.key for sample, _, _ in rows], columns, size, failed)


def sheet_path(config: RunConfig, task: str, subject: str | None = None) -> Path:
    """results/check/<task>.png, or results/check/<task>-<subject>.png."""
    name = task if subject is None else f"{task}-{subject}"
    return Path(config.results) / "check" / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}.png"


def make_check_sheet(task: str, config: RunConfig, per_class: int | None = None,
                     subject: str | None = None, path: Path | None = None,
                     method: str | None = None) -> CheckSheet:
    """Prepares the sampled clips of `task` (cached bundles are reused) and draws their sheet.

    per_class: clips per class, 0 for all; None (default): 1 for a task, all for a subject.
    method: whose input the last column shows (default: the flagship)."""
    from mer_bench.methods import FLAGSHIP, METHODS

    if path is not None:
        check_replaceable_file(Path(path), "check sheet")  # before preparing anything
    shown_method = METHODS.build(method or FLAGSHIP)
    spec = build_task(task)
    data = load_task(spec, {d: config.root_of(d) for d in spec.datasets})
    if per_class is None:
        per_class = 1 if subject is None else 0
    samples = sample_clips(data, per_class or None, subject)
    if not samples:
        raise ValueError(f"task {task} has no samples to show")
    cache = config.cache
    report = prepare_clips([s.clip for s in samples], cache,
                           workers=min(config.prepare_workers, len(samples)), progress=False)
    rows = []
    for sample in samples:
        key = report.keys.get(sample.clip.key)
        rows.append((sample, cache.load(key) if key else None, report.failed.get(sample.clip.key)))
    settings = config.preprocess
    kind = "SYNTHETIC data" if data.synthetic else "real data"
    where = f", subject {subject}" if subject else ""
    title = (f"MER-Bench check sheet: task {task}{where} ({kind}), {len(rows)} clips\n"
             f"preprocessing {settings.digest()}: detector {settings.detector}, crop "
             f"{settings.crop_size}, flow {settings.flow}, domains {settings.domains}\n"
             "flows: hue = direction (see the key), brightness = magnitude up to the row's "
             "scale; box: found on the first frame, crops every frame"
             + (f"\nflows t0..t{settings.domains}: between the clip's onset..offset crops "
                f"interpolated to {settings.domains + 1} frames (t0 = onset, "
                f"t{settings.domains} = offset)" if settings.domains > 2 else ""))
    return render(rows, spec.classes, settings.domains, title,
                  path or sheet_path(config, task, subject), shown_method,
                  guard=path is not None)
