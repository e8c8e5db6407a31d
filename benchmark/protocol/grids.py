"""Grids: which methods (with options, budgets, recipes, preprocessing) run on which tasks
under which seeds and selection rule, read from TOML files whose every value is checked
against its type before any work; profiles map a grid onto other tasks and budgets (e.g.
`quick`: the synthetic stand-in at CPU budgets). The shipped grids live in benchmark/grids/.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mer_bench.benchmark.protocol.jobs import Job, _frozen
from mer_bench.benchmark.protocol.slurm_settings import checked as checked_slurm


@dataclass(frozen=True)
class MethodSpec:
    """A method of a grid: registry name, options for its factory, its budget; optionally
    its own selection rule and temporal domains (else the grid's and the run's), and recipe
    fields per task (`recipes`: task -> fields, e.g. batch 32 on CAS(ME)^3 only)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()
    budget: int | None = None
    pretrain: str | None = None
    pretrain_budget: int | None = None
    selection: str | None = None
    domains: int | None = None
    weights: str | None = None  # a released weights folder's name (RunConfig.weights_dirs)
    recipes: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    only: tuple[str, ...] = ()  # the grid's tasks this method runs on; () means all of them
    start: str | None = None  # an exported model's folder name (RunConfig.weights_dirs)
    preprocess: tuple[tuple[str, Any], ...] = ()  # settings of its bundles (Job.preprocess)

    @classmethod
    def make(cls, name: str, options: dict[str, Any] | None = None, budget: int | None = None,
             pretrain: str | None = None, pretrain_budget: int | None = None,
             selection: str | None = None, domains: int | None = None,
             weights: str | None = None, recipes: dict[str, dict[str, Any]] | None = None,
             only: list[str] | None = None, start: str | None = None,
             preprocess: dict[str, Any] | None = None) -> "MethodSpec":
        return cls(name, _frozen(options), budget, pretrain, pretrain_budget, selection, domains,
                   weights, tuple(sorted((t, _frozen(f)) for t, f in (recipes or {}).items())),
                   tuple(only or ()), start, _frozen(preprocess))

    def runs_on(self, task: str) -> bool:
        return not self.only or task_of(task) in self.only

    def recipe_for(self, task: str) -> tuple[tuple[str, Any], ...]:
        """The recipe fields this spec sets on `task` (a part `TASK[dataset]` is TASK)."""
        return dict(self.recipes).get(task_of(task), ())


@dataclass(frozen=True)
class Grid:
    """Methods x tasks x seeds; expands to jobs once folds are known."""

    methods: tuple[MethodSpec, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    selection: str = "last"
    description: str = ""
    precision: str = "fp32"  # of every job (torch methods train under it; others ignore it)
    # What a SLURM array of this grid asks for (protocol/slurm_settings.py); in no job's key.
    slurm: tuple[tuple[str, Any], ...] = ()

    @property
    def runnable_tasks(self) -> tuple[str, ...]:
        """The tasks jobs run on: a part `TASK[dataset]` (a table column scoring one dataset's
        clips of TASK's predictions) runs as TASK."""
        return tuple(dict.fromkeys(task_of(t) for t in self.tasks))

    def jobs(self, folds: dict[str, list[str]], versions: dict[tuple[MethodSpec, str], dict],
             ) -> list[Job]:
        """`folds`: task -> held-out subjects; `versions`: (spec, task) -> version strings."""
        return [
            Job(method=spec.name, task=task, fold=fold, seed=seed,
                selection=spec.selection or self.selection, budget=spec.budget,
                options=spec.options, versions=_frozen(versions[(spec, task)]),
                pretrain=spec.pretrain, pretrain_budget=spec.pretrain_budget,
                domains=spec.domains, precision=self.precision, weights=spec.weights,
                recipe=spec.recipe_for(task), start=spec.start, preprocess=spec.preprocess)
            for spec in self.methods
            for task in self.runnable_tasks if spec.runs_on(task)
            for seed in (self.seeds[:1] if spec.weights else self.seeds)  # nothing to seed
            for fold in folds[task]
        ]


def task_of(column: str) -> str:
    """`composite-3-flows[casme2]` -> `composite-3-flows`; a plain task name is itself."""
    return column.split("[", 1)[0]


GRID_KEYS = {"tasks", "seeds", "selection", "methods", "description", "budget", "profiles",
             "table", "precision", "slurm"}
METHOD_KEYS = {"name", "options", "budget", "pretrain", "pretrain_budget", "selection",
               "domains", "weights", "recipe", "tasks", "start", "preprocess"}
PROFILE_KEYS = {"tasks", "budget", "pretrain_budget", "seeds", "methods"}


def load_grid(path: str | Path, profile: str | None = None,
              precision: str | None = None) -> Grid:
    """A grid from TOML: `tasks`, `seeds`, `selection`, `precision`, a default `budget` and
    `[[methods]]` (name, options, budget, pretrain, pretrain_budget, selection, domains,
    weights, `recipe`: task -> recipe fields, e.g. `{ casme3-3 = { batch_size = 32 } }`,
    `tasks`: the grid's tasks it runs on, if not all, `start`: an exported model's
    folder name, given as --weights-dir NAME=DIR, every fold starts from, and `preprocess`:
    settings of its bundles, e.g. `{ crop = "per-frame" }`, a RetinaFace `detector_weights`
    by name, given as --weights-dir NAME=FILE).
    `precision`, if given, replaces the grid's. A `[slurm]` table says what a SLURM array of
    it asks for (partition, time, cpus, gpus, mem, ...; protocol/slurm_settings.py).

    A `[profiles.NAME]` table rescales the grid, e.g. `quick` for CPU: `tasks` maps each task
    (and pretraining task) to a stand-in ("": left out, e.g. a task the profile's source
    cannot feed), `budget` / `pretrain_budget` cap the budgets,
    `seeds` replaces the seeds, `methods` (a list of method tables) replaces the methods (e.g.
    only those a source without frames can feed). A task's recipe fields do not follow it to
    its stand-in (they were set for that dataset), and methods a profile makes identical (its
    budget cap equal to a budget-matched row's) are one.
    """
    raw = grid_toml(path)
    try:
        default_budget = raw.get("budget")
        chosen = raw.get("profiles", {}).get(profile, {}) if profile else {}
        methods = [dict(m) for m in chosen.get("methods", raw["methods"])]
        for m in methods:
            unknown = set(m) - METHOD_KEYS
            if unknown:
                raise ValueError(f"grid {path}: method {m.get('name')!r}: unknown keys "
                                 f"{sorted(unknown)}")
            m.setdefault("budget", default_budget)
            for key, what in (("recipe", "recipe for"), ("tasks", "tasks")):
                stray = set(m.get(key, ())) - {task_of(t) for t in raw["tasks"]}
                if stray:
                    raise ValueError(f"grid {path}: method {m['name']!r}: {what} "
                                     f"{sorted(stray)}, not tasks of the grid {raw['tasks']}")
        tasks, seeds = list(raw["tasks"]), list(raw.get("seeds", [0]))
        if profile is not None:
            tasks, seeds = _apply_profile(path, raw, profile, methods, tasks, seeds)
        specs = tuple(dict.fromkeys(
            MethodSpec.make(m["name"], m.get("options"), m.get("budget"), m.get("pretrain"),
                            m.get("pretrain_budget"), m.get("selection"), m.get("domains"),
                            m.get("weights"), m.get("recipe"), m.get("tasks"), m.get("start"),
                            m.get("preprocess"))
            for m in methods))
        return Grid(specs, tuple(dict.fromkeys(tasks)), tuple(seeds),
                    raw.get("selection", "last"), raw.get("description", ""),
                    precision or raw.get("precision", "fp32"),
                    checked_slurm(raw.get("slurm", {}), f"grid {path}"))
    except KeyError as error:
        raise ValueError(f"grid {path}: missing key {error}") from None


def grid_toml(path: str | Path) -> dict:
    """The grid file's tables, every key and value checked (names and types, budgets of at
    least 1) before anything is prepared."""
    try:
        with open(path, "rb") as file:
            raw = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"grid {path} is not valid TOML: {error}") from None
    unknown = set(raw) - GRID_KEYS
    if unknown:
        raise ValueError(f"grid {path}: unknown keys {sorted(unknown)}")
    _check_values(raw, f"grid {path}", GRID_TYPES)
    checked_slurm(raw.get("slurm", {}), f"grid {path}")
    for index, method in enumerate(raw.get("methods", [])):
        _check_values(method, f"grid {path}: methods[{index}]", METHOD_TYPES)
    for name, profile in raw.get("profiles", {}).items():
        where = f"grid {path}: profile {name!r}"
        _check_values(profile, where, PROFILE_TYPES)
        for index, method in enumerate(profile.get("methods", [])):
            _check_values(method, f"{where}: methods[{index}]", METHOD_TYPES)
    return raw


def _budget(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _words(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _tables(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _text_map(value) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _seeds(value) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


# key -> (check, what it must be)
GRID_TYPES = {
    "tasks": (_words, "a list of task names"), "seeds": (_seeds, "a list of whole numbers >= 0"),
    "selection": (lambda v: isinstance(v, str), "a selection rule's name"),
    "methods": (_tables, "a list of method tables ([[methods]])"),
    "description": (lambda v: isinstance(v, str), "text"),
    "budget": (_budget, "a whole number of iterations, at least 1"),
    "profiles": (lambda v: isinstance(v, dict) and all(isinstance(p, dict) for p in v.values()),
                 "tables of profiles ([profiles.NAME])"),
    "table": (lambda v: isinstance(v, (str, int)), "a table's number or name"),
    "precision": (lambda v: isinstance(v, str), "fp32 or bf16"),
}
METHOD_TYPES = {
    "name": (lambda v: isinstance(v, str), "a method's registry name"),
    "options": (lambda v: isinstance(v, dict), "a table of the method's options"),
    "budget": GRID_TYPES["budget"], "pretrain_budget": GRID_TYPES["budget"],
    "pretrain": (lambda v: isinstance(v, str), "a task name"),
    "selection": GRID_TYPES["selection"],
    "domains": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2,
                "a whole number of temporal domains, 2 or more"),
    "weights": (lambda v: isinstance(v, str), "a released weights folder's name"),
    "recipe": (lambda v: isinstance(v, dict) and all(isinstance(f, dict) for f in v.values()),
               "a table of tasks, each a table of recipe fields"),
    "tasks": (_words, "a list of the grid's task names"),
    "start": (lambda v: isinstance(v, str), "an exported model's folder name"),
    "preprocess": (lambda v: _preprocess_table(v) is None,
                   "a table of preprocessing settings (e.g. { crop = \"per-frame\" })"),
}


def _preprocess_table(value) -> str | None:
    """Why `value` is not a table of preprocessing settings, or None."""
    from dataclasses import fields

    from mer_bench.datasets.preprocess import PreprocessSettings

    if not isinstance(value, dict):
        return "not a table"
    settable = {f.name for f in fields(PreprocessSettings)} - {"version", "domains"}
    if set(value) - settable:
        return f"unknown settings {sorted(set(value) - settable)}"
    named = {k: v for k, v in value.items() if k != "detector_weights"}
    try:  # a weights file is given by name at run time; any name stands in for it here
        PreprocessSettings(**named, detector_weights=value.get("detector_weights", "-"))
    except (TypeError, ValueError) as error:
        return str(error)
    return None
PROFILE_TYPES = {
    "tasks": (_text_map, "a table of task -> stand-in task"), "seeds": GRID_TYPES["seeds"],
    "budget": GRID_TYPES["budget"], "pretrain_budget": GRID_TYPES["budget"],
    "methods": GRID_TYPES["methods"],
}


def _check_values(table: dict, where: str, types: dict) -> None:
    for key, value in table.items():
        if key in types and not types[key][0](value):
            why = _preprocess_table(value) if key == "preprocess" else None
            raise ValueError(f"{where}: {key} = {value!r}; expected {types[key][1]}"
                             + (f" ({why})" if why else ""))
    if types is METHOD_TYPES and "name" not in table:
        raise ValueError(f"{where}: a method needs a name")


def _apply_profile(path, raw: dict, profile: str, methods: list[dict], tasks: list[str],
                   seeds: list[int]) -> tuple[list[str], list[int]]:
    profiles = raw.get("profiles", {})
    if profile not in profiles:
        raise ValueError(f"grid {path} has no profile {profile!r}; it has {sorted(profiles)}")
    settings = profiles[profile]
    unknown = set(settings) - PROFILE_KEYS
    if unknown:
        raise ValueError(f"grid {path}: profile {profile!r}: unknown keys {sorted(unknown)}")
    stand_in = settings.get("tasks", {})
    kept = [t for t in (stand_in.get(t, t) for t in tasks) if t]  # "": a task left out
    runnable = {task_of(t) for t in kept}
    left_out = []  # methods whose every task is left out: so are they
    for m in methods:
        for key in ("budget", "pretrain_budget") if m.get("pretrain") else ("budget",):
            cap = settings.get(key)
            if cap is not None:
                m[key] = cap if m.get(key) is None else min(m[key], cap)
        if m.get("pretrain"):
            m["pretrain"] = stand_in.get(m["pretrain"], m["pretrain"])
        m["recipe"] = {t: f for t, f in m.get("recipe", {}).items() if stand_in.get(t, t) == t}
        if m.get("tasks"):
            m["tasks"] = [t for t in dict.fromkeys(stand_in.get(t, t) for t in m["tasks"])
                          if t in runnable]
            if not m["tasks"]:
                left_out.append(id(m))
    methods[:] = [m for m in methods if id(m) not in left_out]
    return kept, list(settings.get("seeds", seeds))


def grid_path(name: str) -> Path:
    """A grid file's path, or the name of a grid shipped in benchmark/grids (e.g. `ablation`)."""
    if Path(name).is_file():
        return Path(name)
    shipped = resources.files("mer_bench.benchmark") / "grids" / f"{Path(name).stem}.toml"
    if shipped.is_file():
        return Path(str(shipped))
    known = [path.stem for path in shipped_grids()]
    raise ValueError(f"no grid file {name!r}; shipped grids: {', '.join(known)}")


def shipped_grids() -> list[Path]:
    """The grid files shipped in benchmark/grids, by name."""
    folder = resources.files("mer_bench.benchmark") / "grids"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))
