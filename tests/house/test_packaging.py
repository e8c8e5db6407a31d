"""One import namespace: the project installs `mer_bench` and nothing else top-level, so it sits
beside Hugging Face `datasets` (or PyPI's `benchmark`) without touching them, and an installed
(non-editable) copy has what it needs (grids, the paper's reference numbers)."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

PROJECT_FOLDERS = ("benchmark", "methods", "datasets", "mer_bench", "tests")
BARE_IMPORT = re.compile(r"^\s*(from|import)\s+(benchmark|methods|datasets)\b", re.M)


def python(*args: str, cwd: Path, pythonpath: str | None = None, timeout: int = 600):
    env = dict(os.environ)
    if pythonpath is None:
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_no_source_imports_a_bare_top_level_benchmark_methods_or_datasets():
    """Every import goes through `mer_bench.`: a bare `import datasets` would be Hugging
    Face's in an installed copy."""
    sources = [p for folder in PROJECT_FOLDERS for p in (REPO / folder).rglob("*.py")]
    sources.append(REPO / "run_benchmark.py")
    bare = [f"{p.relative_to(REPO)}: {m.group(0).strip()}" for p in sources
            for m in BARE_IMPORT.finditer(p.read_text())]
    assert len(sources) > 60 and bare == []


def test_a_top_level_datasets_package_stays_the_one_imported(tmp_path):
    """A stand-in for Hugging Face `datasets` on the path, the project imported and its CLI
    listing its datasets: `import datasets` is still the stand-in, its file untouched."""
    other = tmp_path / "site" / "datasets"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("load_dataset = 'the other datasets library'\n")
    check = ("import datasets, mer_bench.datasets, mer_bench.benchmark.cli as cli\n"
             "assert cli.main(['list', 'datasets']) == 0\n"
             "print(datasets.load_dataset, datasets.__file__)\n")
    done = python("-c", check, cwd=tmp_path, pythonpath=str(tmp_path / "site"))
    assert done.returncode == 0, done.stderr
    assert "the other datasets library" in done.stdout and str(other) in done.stdout
    assert "casme2" in done.stdout and "synthetic" in done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the sources (setuptools leaves a build/ folder where it builds,
    whose stale files would go into later wheels)."""
    folder, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source") / "s"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", "results", "tests"))
    shutil.copytree(REPO / "results" / "reference", source / "results" / "reference")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(folder), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (built,) = folder.glob("mer_bench-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_only_the_mer_bench_namespace_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"mer_bench", wheel.name.split("-py")[0]
                                                + ".dist-info"}
    for expected in ("mer_bench/api.py", "mer_bench/benchmark/cli/__init__.py",
                     "mer_bench/benchmark/protocol/jobs.py",
                     "mer_bench/methods/skd_tstsan.py", "mer_bench/datasets/casme2.py",
                     "mer_bench/benchmark/grids/table1.toml",
                     "mer_bench/results/reference/paper_results.csv"):
        assert expected in names


@pytest.mark.slow
def test_an_installed_copy_lists_runs_and_renders_every_paper_table(wheel, tmp_path):
    """Installed with pip (not editable) into a folder of its own and run from elsewhere: the
    copy imported is the installed one, and it lists, runs and renders tables from its store."""
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                           str(site), str(wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    where = python("-c", "import mer_bench; print(mer_bench.__path__)", cwd=tmp_path,
                   pythonpath=str(site))
    assert where.stdout.strip() == str([str(site / "mer_bench")])
    listed = python("-m", "mer_bench", "list", "methods", cwd=tmp_path, pythonpath=str(site))
    assert listed.returncode == 0 and "skd_tstsan" in listed.stdout, listed.stderr
    store = tmp_path / "store"
    ran = python("-m", "mer_bench", "run", "--methods", "majority", "--results", str(store),
                 "--quiet", cwd=tmp_path, pythonpath=str(site))
    assert ran.returncode == 0, ran.stderr
    assert "| majority" in ran.stdout and len(list((store / "runs").glob("*/job.json"))) == 10
    tables = python("-m", "mer_bench", "tables", "--grid", "paper", "--profile", "quick",
                    "--results", str(store), cwd=tmp_path, pythonpath=str(site))
    assert tables.returncode == 0, tables.stderr
    folder = store / "tables" / "paper-quick"
    for name in [f"table{k}" for k in range(1, 8)] + ["honesty"]:
        assert (folder / f"{name}.md").read_text().count("reported") >= 1


def test_an_opencv_without_optflow_is_refused_at_import_with_what_to_install(tmp_path):
    """A cv2 without its contrib modules (what pip leaves when opencv-python is installed
    beside the contrib build): importing the flow module says what to install."""
    fake = tmp_path / "cv2"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '4.10.0'\n")
    done = python("-c", "import mer_bench.datasets.flow", cwd=REPO, pythonpath=str(tmp_path))
    assert done.returncode == 1 and "ImportError" in done.stderr
    assert "has no cv2.optflow" in done.stderr and "4.10.0" in done.stderr
    assert "pip install 'opencv-contrib-python-headless>=4.8,<5.1'" in done.stderr
    with open(REPO / "pyproject.toml", "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    assert any(d.startswith("opencv-contrib-python-headless>=4.8,<5.1") for d in dependencies)
