"""Explicit, lazy registries: a name maps to "module:attr" plus keyword arguments.

Entries are listed one per line (see methods/__init__.py, datasets/__init__.py); nothing is
imported until an entry is used, so listing methods never pulls in torch. Plugins from outside
the repository register through the same `register` call, from a module named on the command
line or from a Python entry point.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class RegistryError(LookupError):
    """A registry name that is unknown or registered twice."""


@dataclass(frozen=True)
class Entry:
    """One registered name: where its factory lives and the keyword arguments it is bound to."""

    name: str
    target: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    # What the entry computes, as its job keys see it (views: bumped whenever its output
    # changes); None where the target carries its own (a method class's `version`).
    version: str | None = None

    def resolve(self) -> Callable[..., Any]:
        if callable(self.target):
            return self.target
        module_name, _, attr = self.target.partition(":")
        if not attr:
            raise RegistryError(f"entry {self.name!r}: target {self.target!r} is not 'module:attr'")
        module = importlib.import_module(module_name)
        try:
            return getattr(module, attr)
        except AttributeError as error:
            raise RegistryError(
                f"entry {self.name!r}: module {module_name!r} has no attribute {attr!r}"
            ) from error


class Registry:
    """Name -> Entry, with errors that help: duplicates refused, unknown names get suggestions."""

    def __init__(self, kind: str, entry_point_group: str | None = None,
                 modules: tuple[str, ...] = ()):
        """`modules`: modules whose import registers built-in entries, imported on first use
        (so that the module defining the registry need not import what it lists)."""
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.modules = modules
        self._entries: dict[str, Entry] = {}
        self._entry_points_loaded = False

    def register(self, name: str, target: str | Callable[..., Any], /, *,
                 version: str | int | None = None, **kwargs: Any) -> None:
        if name in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, target, dict(kwargs),
                                    None if version is None else str(version))

    def entry(self, name: str) -> Entry:
        self._load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._entries))}"
            ) from None

    def build(self, name: str, /, **overrides: Any) -> Any:
        """Calls the entry's factory with its registered kwargs, updated by `overrides`."""
        entry = self.entry(name)
        return entry.resolve()(**{**entry.kwargs, **overrides})

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def _load_entry_points(self) -> None:
        """Entry points name a module (registered on import) or a callable taking the registry."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for module in self.modules:
            importlib.import_module(module)
        if self.entry_point_group is None:
            return
        for point in importlib.metadata.entry_points(group=self.entry_point_group):
            loaded = point.load()
            if callable(loaded):
                loaded(self)


def load_plugin(spec: str) -> None:
    """Imports a plugin: a path to a .py file, or an importable module name.

    Importing is all it takes: the plugin calls `register` on the registries it extends.
    """
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise RegistryError(f"plugin file {spec!r} does not exist")
        # named after its name and content: two plugins called plugin.py in two folders both
        # load, and one plugin given twice (or by a worker that already has it, or a copy of
        # it elsewhere) loads once
        resolved = str(path.resolve())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        module_name = f"mer_bench_plugin_{path.stem}_{digest}"
        if module_name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(module_name, resolved)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
        return
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as error:
        raise RegistryError(
            f"plugin module {spec!r} cannot be imported ({error}); give a .py path or add its "
            "folder to PYTHONPATH"
        ) from error
