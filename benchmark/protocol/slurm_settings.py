"""What a SLURM job array asks the cluster for: a grid's `[slurm]` table, or `--slurm KEY=VALUE`
on the command line (which wins), every key and value checked before anything is submitted.
They say where jobs run, never what they compute: no job key holds them."""

from __future__ import annotations

import re
from typing import Any

_MEMORY = re.compile(r"^\d+[KMGT]?$")


def _positive(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# key -> (check, what it must be, how a command-line value is read)
SLURM_KEYS = {
    "partition": (lambda v: isinstance(v, str) and bool(v), "a partition's name", str),
    "time": (_positive, "minutes an element may run, at least 1", int),
    "cpus": (_positive, "CPUs of each element, at least 1", int),
    "gpus": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
             "GPUs of each element (gres gpu:N), 0 or more", int),
    "mem": (lambda v: isinstance(v, str) and bool(_MEMORY.match(v)),
            "memory of each element as SLURM writes it, e.g. 16G or 4000M", str),
    "parallel": (_positive, "elements running at once (the array's %N), at least 1", int),
    "account": (lambda v: isinstance(v, str) and bool(v), "an account's name", str),
    "qos": (lambda v: isinstance(v, str) and bool(v), "a quality of service's name", str),
}
DEFAULTS = {"time": 60, "cpus": 1, "gpus": 0}


def checked(table: dict, where: str) -> tuple[tuple[str, Any], ...]:
    """`table` as sorted (key, value) pairs, or a ValueError naming `where`, the key and what
    it must be."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: [slurm] must be a table of settings ({', '.join(SLURM_KEYS)})")
    for key, value in table.items():
        if key not in SLURM_KEYS:
            raise ValueError(f"{where}: unknown SLURM setting {key!r}; known: "
                             f"{', '.join(SLURM_KEYS)}")
        check, what, _ = SLURM_KEYS[key]
        if not check(value):
            raise ValueError(f"{where}: slurm {key} = {value!r}; expected {what}")
    return tuple(sorted(table.items()))


def parse_option(text: str) -> tuple[str, Any]:
    """`--slurm KEY=VALUE`: the pair, its value read as the key's type."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or key not in SLURM_KEYS:
        raise ValueError(f"--slurm takes KEY=VALUE with KEY one of {', '.join(SLURM_KEYS)}; "
                         f"got {text!r}")
    try:
        value = SLURM_KEYS[key][2](raw.strip())
    except ValueError:
        raise ValueError(f"--slurm {text}: expected {SLURM_KEYS[key][1]}") from None
    return checked({key: value}, "--slurm")[0]


def merged(*layers: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The defaults, then each layer in turn (grid, then command line) over them."""
    settings = dict(DEFAULTS)
    for layer in layers:
        settings.update(layer)
    return settings
