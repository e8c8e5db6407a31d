"""What the registries and grid files hold, described for a person choosing what to run
(`list methods --details`, `list grids`): a method's views with their shapes, default budget
and recipe, parameter count and paper name; a grid's profiles and how many runs each holds.
Nothing here prepares data: view shapes come from a blank bundle of the default settings.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np

from mer_bench.benchmark.protocol.grids import Grid, grid_toml, load_grid

SHAPE_UNKNOWN = "shape known once a task is prepared"


def _blank_bundles() -> list[dict]:
    """Bundles of zeros in each layout a source makes: frames (the default crop size), and a
    released image with every companion image (datasets/views.py)."""
    from mer_bench.datasets.preprocess import PreprocessSettings
    from mer_bench.datasets.views import COMPANION_VIEWS

    size = PreprocessSettings().crop_size
    frames = {"faces": np.zeros((3, size, size), np.uint8),
              "flows": np.zeros((2, size, size, 2), np.float32)}
    image = np.zeros((28, 28, 3), np.uint8)
    released = {"flow_image": image, **{name: image for name in COMPANION_VIEWS.values()}}
    return [frames, released]


def view_shape(view: str) -> str:
    """The shape of one sample of `view`, as `C x H x W`, from the first bundle layout that
    serves it; a view that needs more than a blank bundle says so."""
    from mer_bench.datasets import VIEWS
    from mer_bench.datasets.views import build_view

    if view not in VIEWS:
        return "NOT A REGISTERED VIEW (a run of this method is refused)"
    for bundle in _blank_bundles():
        try:
            return " x ".join(map(str, build_view(view, [bundle]).shape[1:]))
        except (ValueError, KeyError, IndexError):
            continue
    return SHAPE_UNKNOWN


def method_details(name: str, task: str | None = None) -> list[str]:
    """Lines describing the registered method `name`, built with its registered options; its
    parameters counted for the classes of `task` (default: the default task's), since the
    final layer's size follows them."""
    from mer_bench.benchmark.protocol.tasks import build_task
    from mer_bench.datasets.tasks import DEFAULT_TASK
    from mer_bench.methods import METHODS

    method = METHODS.build(name)
    doc = (type(method).__doc__ or "").strip().splitlines()
    lines = [f"{name}: {method.paper_name or name} ({type(method).__name__})"
             + (f": {doc[0]}" if doc else "")]
    lines += [f"  view {view}: {view_shape(view)}" for view in method.views]
    recipe = getattr(method, "recipe", None)
    if is_dataclass(recipe):
        lines.append(f"  default budget: {method.budget_text(None)}")
        if getattr(recipe, "epochs", None) is not None:  # its default counts epochs, a budget not
            lines.append(f"  a budget N (--budget, a grid's `budget`): N iterations of batch "
                         f"{recipe.batch_size} in order, not N epochs")
        fields = ", ".join(f"{k}={v}" for k, v in asdict(recipe).items())
        lines.append(f"  recipe: {fields}")
    build = getattr(method, "build_model", None)
    if build is not None:
        task = task or DEFAULT_TASK
        classes = len(build_task(task).classes)
        count = sum(p.numel() for p in build(classes).parameters())
        lines.append(f"  parameters: {count:,} (for {classes} classes, as {task} has)")
    return lines


def _runs(grid: Grid) -> int:
    """Method x task x seed combinations of `grid`: its jobs with one fold a task."""
    return len(grid.jobs(dict.fromkeys(grid.runnable_tasks, ["one fold"]), defaultdict(dict)))


def _count(runs: int) -> str:
    return f"{runs} run" + ("" if runs == 1 else "s")


def grid_details(path: Path) -> list[str]:
    """A grid's name, table, description's first sentence, then each profile's run count."""
    raw = grid_toml(path)
    text = " ".join(raw.get("description", "").split())
    description = re.split(r"(?<!Fig)\. (?=[A-Z(])", text)[0].rstrip(".")
    table = f" (table {raw['table']})" if "table" in raw else ""
    lines = [f"{path.stem}{table}: {description}",
             f"  as written: {_count(_runs(load_grid(path)))} on {', '.join(raw['tasks'])}"]
    for profile in raw.get("profiles", {}):
        grid = load_grid(path, profile)
        lines.append(f"  --profile {profile}: {_count(_runs(grid))} on {', '.join(grid.tasks)}")
    return lines
