"""MER-Bench's one import namespace: `mer_bench.benchmark` (the engine), `mer_bench.methods`,
`mer_bench.datasets`, and `mer_bench.api` (what a plugin author imports).

The user's layout keeps benchmark/, methods/ and datasets/ at the top of the repository; an
installed wheel holds them inside this package (pyproject.toml maps them), so nothing
top-level but `mer_bench` is installed beside other libraries (Hugging Face has a `datasets`,
PyPI a `benchmark`). In a source checkout those folders sit beside this one, and the namespace
reaches them through its search path: the same imports work from a clone, an editable install
and a wheel.
"""

from pathlib import Path

_here = Path(__file__).resolve().parent
if not (_here / "benchmark").is_dir() and (_here.parent / "benchmark" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # a source checkout  # noqa: F821

__version__ = "0.1.0"


def resource(*parts: str) -> Path:
    """A file shipped with the project (e.g. `resource("results", "reference", "x.csv")`),
    found in a checkout and in an installed copy alike."""
    for folder in __path__:  # noqa: F821
        candidate = Path(folder).joinpath(*parts)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{'/'.join(parts)} is not in this MER-Bench installation "
                            f"(looked in {', '.join(__path__)})")  # noqa: F821
