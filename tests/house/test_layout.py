"""The shape of the house, read from the source: the engine's sub-packages stand in layers and
import only their own layer or those below it; no module imports its way back to itself
(imports inside functions count; those only a type checker reads do not); no module is over
400 lines; and the architecture page's tree is the tree on disk."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# The engine's layers, lowest first: what a result means, what is kept, numbers from
# predictions, running jobs, the paper's tables, what users read, tools, the command line.
LAYERS = ("protocol", "storage", "stats", "execution", "paper", "reporting", "tools", "cli")
PACKAGES = {"benchmark": "mer_bench.benchmark", "datasets": "mer_bench.datasets",
            "methods": "mer_bench.methods", "mer_bench": "mer_bench"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    parts[0] = PACKAGES[parts[0]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for top in PACKAGES for p in sorted((REPO / top).rglob("*.py"))}


def type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported(path: Path) -> set[str]:
    """The project's modules `path` imports, at its top or inside functions (a name imported
    from a package counts as its module where it is one); `if TYPE_CHECKING:` left out."""
    found, pending = set(), [ast.parse(path.read_text())]
    while pending:
        node = pending.pop()
        if type_checking_only(node):
            continue
        pending.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES
                      else node.module for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name in MODULES} - {module_name(path)}


GRAPH = {name: imported(path) for name, path in MODULES.items()}


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if parts[:2] == ["mer_bench", "benchmark"] and len(parts) > 2 else None


def test_every_engine_module_is_in_a_layer():
    engine = {name for name in MODULES if name.startswith("mer_bench.benchmark.")}
    assert len(engine) > 40
    assert sorted(n for n in engine if layer(n) not in LAYERS) == []
    assert {layer(n) for n in engine} == set(LAYERS)  # a layer with no module is listed nowhere


def test_no_engine_import_runs_up_a_layer():
    upward = [f"{name} -> {target}" for name, targets in GRAPH.items() for target in targets
              if layer(name) and layer(target)
              and LAYERS.index(layer(target)) > LAYERS.index(layer(name))]
    assert "mer_bench.benchmark.protocol.jobs" in GRAPH["mer_bench.benchmark.storage.store"]
    assert upward == []


def cycle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path of imports from `start` back to itself, or None (depth first)."""
    stack, seen = [(start, [start])], set()
    while stack:
        here, path = stack.pop()
        for following in sorted(graph[here]):
            if following == start:
                return path + [start]
            if following not in seen:
                seen.add(following)
                stack.append((following, path + [following]))
    return None


def test_no_module_imports_its_way_back_to_itself():
    cycles = {name: cycle_through(name, GRAPH) for name in GRAPH}
    assert {name: c for name, c in cycles.items() if c} == {}


def test_the_walk_finds_a_cycle_and_sees_through_lazy_but_not_type_only_imports(tmp_path):
    assert cycle_through("a", {"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_through("a", {"a": {"b"}, "b": set()}) is None
    sample = REPO / "methods" / "fold_parallel.py"
    assert "mer_bench.methods.batches" in GRAPH[module_name(sample)]
    assert "TorchMethod" in sample.read_text()  # imported for the type checker only: not an arrow
    assert "mer_bench.methods.training" not in GRAPH[module_name(sample)]
    lazy = REPO / "methods" / "training.py"
    assert "mer_bench.methods.fold_parallel" in GRAPH[module_name(lazy)]  # inside a method


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_line_limit(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(REPO)}: {lines} lines"


def test_the_architecture_page_lists_every_engine_module_in_its_layer():
    """Its table's rows (layer, `layer/module.py`) are the modules on disk, in LAYERS' order."""
    page = (REPO / "docs" / "architecture.md").read_text()
    rows, current = [], None
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")] if line.startswith("| ") else []
        if len(cells) == 3 and cells[1].startswith("`") and "/" in cells[1]:
            current = cells[0] or current
            rows.append((current, cells[1].strip("`")))
    on_disk = sorted((p.parent.name, f"{p.parent.name}/{p.name}")
                     for p in (REPO / "benchmark").rglob("*.py") if p.name != "__init__.py"
                     and p.parent != REPO / "benchmark")
    assert sorted(rows) == on_disk
    assert list(dict.fromkeys(layer for layer, _ in rows)) == list(LAYERS)
