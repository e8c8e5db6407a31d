"""The README's and the documentation's promises, followed literally: the two commands
first, a short front door whose commands the tests run, the plugin example as written, the
reliability page's tests, the command-line reference as the parser has it, and a site that
builds without a warning."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_readme_starts_with_the_two_commands_and_ci_runs_both_as_written():
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    run, test = blocks[0].strip(), blocks[1].strip()
    assert run.endswith(".venv/bin/mer-bench") and "pip install" in run
    assert test.endswith("-m pytest -n 2") and "'.[dev]'" in test  # 2 workers (pytest-xdist)
    assert README.index(run) < README.index("## ")  # before any section
    ci = (REPO / ".ci" / "run").read_text()
    assert f"\n{test}\n" in ci
    # the main command as written, what it printed then checked against the docs
    assert f"\n{run} 2>&1 | tee \"$main_log\"" in ci
    assert "tests.house.main_command_output \"$main_log\"" in ci
    # both install the pinned versions the docs' numbers were made with
    assert all("-c constraints.txt" in command for command in (run, test))


def readme_plugin(tmp_path) -> tuple[str, str]:
    """The README's plugin file, written where a user would, and the run command it gives."""
    section = README.split("## Add a method", 1)[1].split("\n## ", 1)[0]
    (tmp_path / "my_method.py").write_text(re.search(r"```python\n(.*?)```", section,
                                                     re.S).group(1))
    run = re.search(r"then `(mer-bench run .*?)` runs it", section, re.S).group(1)
    return " ".join(run.split()), section


def forget_plugin(name: str, stem: str) -> None:
    """Lets a later test load the same plugin file again."""
    from mer_bench.methods import METHODS

    METHODS._entries.pop(name, None)
    for module in [m for m in sys.modules if m.startswith(f"mer_bench_plugin_{stem}")]:
        del sys.modules[module]


def test_the_readme_plugin_is_short_and_passes_check_plugin(results, tmp_path, capsys,
                                                            monkeypatch):
    from mer_bench.benchmark.cli import main

    _, section = readme_plugin(tmp_path)
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 18  # what a reader takes in at a glance
    assert "mer-bench check-plugin my_method.py" in section
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["check-plugin", "my_method.py", "--results", str(results)]) == 0
    finally:
        forget_plugin("nearest_mean", "my_method")
    out = capsys.readouterr().out
    assert "6 of 6 checks passed" in out and "nearest_mean" in out


@pytest.mark.slow
def test_the_readme_plugin_runs_beside_the_others_as_written(results, tmp_path):
    command, _ = readme_plugin(tmp_path)
    argv = shlex.split(command)
    assert argv[:2] == ["mer-bench", "run"]
    done = subprocess.run([sys.executable, "-m", "mer_bench", *argv[1:],
                           "--results", str(results), "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| nearest_mean"))
    uf1 = float(row.split("|")[5])  # method, task, selection, budget, UF1
    assert "10 x 1" in row and 0 <= uf1 <= 100


def test_every_reliability_promise_names_tests_that_exist():
    """Each test the reliability page cites is a test of its file, so no promise points
    at a test that was renamed or removed."""
    section = (REPO / "docs" / "reliability.md").read_text()
    cited = re.findall(r"`(?:tests/(\w+/test_\w+)\.py::)?(test_\w+)`", section)
    assert len(cited) >= 15
    for file, name in cited:
        source = (REPO / "tests" / f"{file or 'runs/test_never_destroy'}.py").read_text()
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


def test_the_readme_is_a_short_front_door_whose_links_resolve():
    assert len(README.splitlines()) < 250
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert len(links) > 15
    assert [link for link in links if not link.startswith("http")
            and not (REPO / link).exists()] == []


def test_every_command_the_readme_names_is_run_by_a_test():
    """A README command is a promise: some test calls it (in process through `main`, or as
    `python -m mer_bench` / run_benchmark.py), or CI runs it."""
    named = set(re.findall(r"`mer-bench ([a-z][a-z-]*)", README))
    named |= {word.strip("` ") for line in README.splitlines() if line.startswith("| `mer-bench")
              for word in re.findall(r"/ `?([a-z][a-z-]+)`? ", line)}
    assert {"run", "tables", "check-plugin", "report", "export", "predict"} <= named
    sources = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    called = set(re.findall(r'main\(\[\s*"([a-z-]+)"', sources))
    called |= set(re.findall(r'(?:"mer_bench"|"run_benchmark\.py"\)),\s*"([a-z-]+)"', sources))
    called |= set(re.findall(r'main\(\["--results", [^,]+, "([a-z-]+)"', sources))
    assert sorted(named - called) == []
    bare = "tests/tables/test_tables_prepare_nothing.py"  # the main command, in process, then tables
    assert 'main(["--results", str(results), "--quiet"])' in (REPO / bare).read_text()


def test_the_set_up_puts_the_bare_command_on_the_venvs_path():
    """The first README command ends in `.venv/bin/mer-bench`: the installed console script."""
    script = Path(sys.executable).parent / "mer-bench"
    if not script.exists():
        pytest.skip(f"{script} is absent: not installed with pip install -e . in this Python")
    listed = subprocess.run([str(script), "list", "methods"], capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0 and "skd_tstsan" in listed.stdout


def test_the_command_line_reference_is_what_the_parser_says():
    from mer_bench.benchmark.cli import build_parser
    from mer_bench.benchmark.cli.reference import reference_markdown

    page = (REPO / "docs" / "cli.md").read_text()
    assert page == reference_markdown(), ("docs/cli.md is stale: rewrite it with `python -m "
                                          "mer_bench.benchmark.cli.reference docs/cli.md`")
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert all(f"## `mer-bench {name}`" in page for name in commands)
    assert "`--fold-parallel K`" in page and "`--repair`" in page


def test_the_documentation_site_builds_without_a_warning(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the dev extra")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "cli" / "index.html").is_file()
    pages = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    nav = (REPO / "mkdocs.yml").read_text()
    assert sorted(page for page in pages if page not in nav) == []
