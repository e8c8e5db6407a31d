"""The README's promises, followed literally."""

import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    run, test = blocks[0].strip(), blocks[1].strip()
    assert run.endswith(".venv/bin/mer-bench") and "pip install" in run
    assert test.endswith("-m pytest") and "'.[dev]'" in test
    assert README.index(run) < README.index("## ")  # before any section
    assert test in (REPO / ".ci" / "run").read_text()


@pytest.mark.slow
def test_register_a_new_method_section_works_as_written(results, tmp_path):
    section = README.split("## Register a new method", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "my_method.py").write_text(code)
    command = re.search(r"and run it beside the others: `(.*?)`", section, re.S).group(1)
    argv = shlex.split(command)
    assert argv[0] == "mer-bench"
    done = subprocess.run([sys.executable, "-m", "mer_bench", *argv[1:],
                           "--results", str(results), "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| nearest_mean"))
    uf1 = float(row.split("|")[4])
    assert "10 x 1" in row and 0 <= uf1 <= 100


def test_every_reliability_promise_names_tests_that_exist():
    """Each test the "Reliability" section cites is a test of its file, so no promise points
    at a test that was renamed or removed."""
    section = README[README.index("## Reliability"):]
    section = section[:section.index("\n## ", 1)]
    cited = re.findall(r"`(?:tests/(test_\w+)\.py::)?(test_\w+)`", section)
    assert len(cited) >= 15
    for file, name in cited:
        source = (REPO / "tests" / f"{file or 'test_never_destroy'}.py").read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"{name} is not in {file}"


def test_nothing_outside_the_tests_points_into_the_shared_folder():
    """A clone or a wheel has no ../shared: the design is docs/architecture.md, and code and
    docs cite their sources, never that folder (tests read data from it, skipping without)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    pointing = [name for name in tracked.stdout.split()
                if not name.startswith("tests/") and name.endswith((".py", ".md", ".toml"))
                and "../shared" in (REPO / name).read_text()]
    assert pointing == []
    assert "docs/architecture.md" in README and (REPO / "docs" / "architecture.md").is_file()
