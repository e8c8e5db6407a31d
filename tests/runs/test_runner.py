"""The runner end to end: CLI, plugins, resume after SIGKILL, failures retried."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.runner import run_grid
from mer_bench.benchmark.storage.store import Store
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_benchmark.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=600, **kwargs)


def predictions_by_job(results) -> dict:
    return {record.job.key: record.predictions.logits["final"].tolist()
            for record in Store(results).records()}


PLUGIN = textwrap.dedent('''
    """A plugin from outside the repository: always predicts the last class."""
    import numpy as np
    from mer_bench.methods import register
    from mer_bench.methods.base import Method

    class LastClass(Method):
        views = ("flows",)
        def fit_predict(self, train, test, context):
            assert test.labels is None  # the test side's labels are hidden
            logits = np.zeros((len(test), context.num_classes))
            logits[:, -1] = 1.0
            return {"final": logits}

    register("last_class", LastClass)
''')


def test_external_plugin_runs_through_the_cli_like_a_builtin(results, tmp_path):
    plugin = tmp_path / "outside" / "my_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN)
    listed = cli("list", "methods", "--plugin", str(plugin))
    assert "last_class" in listed.stdout
    run = cli("run", "--methods", "last_class,majority", "--plugin", str(plugin),
              "--results", str(results), "--workers", "2", "--quiet")
    assert run.returncode == 0, run.stderr
    row = next(line for line in run.stdout.splitlines() if line.startswith("| last_class"))
    # Always "others" (the last class): recall 1 for it, 0 elsewhere, so UAR = 20%.
    assert "| 20.00 " in row and "10 x 1" in row
    assert "SYNTHETIC" in run.stdout


def test_plugin_from_an_entry_point(tmp_path, monkeypatch):
    from mer_bench.benchmark.protocol.registry import Registry

    (tmp_path / "ep_plugin_mod.py").write_text(
        "def register_all(registry):\n    registry.register('from_entry_point', 'json:dumps')\n")
    info = tmp_path / "ep_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[mer_bench.test_methods]\nmine = ep_plugin_mod:register_all\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("method", entry_point_group="mer_bench.test_methods")
    assert registry.names() == ["from_entry_point"]


def test_unknown_method_on_the_cli_suggests_the_right_name(results):
    run = cli("run", "--methods", "ststnte", "--results", str(results), "--quiet")
    assert run.returncode == 2
    assert "Did you mean ststnet" in run.stderr


def test_list_tasks_counts_samples_classes_and_subjects(results):
    listed = cli("list", "tasks", "--results", str(results))
    lines = listed.stdout.splitlines()
    line = lines[next(i for i, text in enumerate(lines) if text.startswith("synthetic-5:")) + 1]
    assert "SYNTHETIC" in line
    samples = int(line.split()[0])
    counts = [int(part.split()[-1]) for part in line.split(":", 1)[1].split(",")]
    assert samples == sum(counts) and len(counts) == 5
    assert "10 subjects" in line


GRID = ["run", "--methods", "ststnet", "--budget", "40", "--threads", "1", "--quiet"]


def uninterrupted(results, folder, *options) -> dict:
    """The predictions of a run of `options` left alone, in a copy of `results` (in process:
    one thread per job, as every run it is compared with has)."""
    import shutil

    from mer_bench.benchmark.cli import main

    shutil.copytree(results, folder)
    assert main([*options, "--results", str(folder)]) == 0
    return predictions_by_job(folder)


@pytest.fixture(scope="module")
def reference(_prepared_synthetic, tmp_path_factory) -> dict:
    """GRID's predictions, run once for every test that kills and resumes it."""
    return uninterrupted(_prepared_synthetic, tmp_path_factory.mktemp("reference") / "results",
                         *GRID)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigkill_then_resume_gives_the_uninterrupted_predictions(results, reference, workers):
    """Serial and worker processes alike (the Ray executor: tests/runs/test_ray_executor.py),
    against one uninterrupted serial run: every run has one torch thread per job (`--threads
    1`), so the bits are the same whatever runs the jobs."""
    expected = reference
    assert len(expected) == 10

    process = subprocess.Popen([sys.executable, str(REPO / "run_benchmark.py"), *GRID,
                                "--results", str(results), "--workers", workers], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = results / "runs"
    deadline = time.time() + 300
    while time.time() < deadline:
        done = [p for p in runs.glob("*") if not p.name.startswith(".tmp")] if runs.exists() else []
        if len(done) >= 3:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = {p.name: p.stat().st_mtime_ns for p in runs.iterdir() if not p.name.startswith(".")}
    assert 3 <= len(before) < 10, "the kill should land in the middle of the grid"

    resumed = cli(*GRID[:-1], "--results", str(results), "--workers", workers)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} already done, {10 - len(before)} to run" in resumed.stdout
    assert predictions_by_job(results) == expected
    after = {p.name: p.stat().st_mtime_ns for p in runs.iterdir()}
    assert all(after[name] == stamp for name, stamp in before.items())  # nothing redone
    assert not list(runs.glob(".tmp-*"))


FLAKY = textwrap.dedent('''
    import os, numpy as np
    from mer_bench.methods import register
    from mer_bench.methods.base import Method

    class FailsUntilAllowed(Method):
        views = ()
        def fit_predict(self, train, test, context):
            if not os.path.exists(os.environ["FLAKY_ALLOW"]):
                raise RuntimeError("not allowed yet")
            return {"final": np.zeros((len(test), context.num_classes))}

    register("flaky", FailsUntilAllowed)
''')


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_jobs_are_recorded_not_stored_and_retried(results, tmp_path, monkeypatch,
                                                         workers):
    plugin = tmp_path / "flaky_plugin.py"  # a method of its own per run: two files may not
    plugin.write_text(FLAKY.replace('"flaky"', f'"flaky{workers}"'))  # register one name
    allow = tmp_path / "allow"
    monkeypatch.setenv("FLAKY_ALLOW", str(allow))  # worker processes inherit it
    config = RunConfig(results=results, plugins=(str(plugin),), progress=False, workers=workers)
    grid = Grid((MethodSpec.make(f"flaky{workers}"),), ("synthetic-5",))
    first = run_grid(grid, config)
    store = Store(results)
    assert len(first.failed) == 10 and first.ran == 0
    assert not list(store.records())
    failures = store.failed()
    assert len(failures) == 10 and "not allowed yet" in failures[0]["error"]
    assert failures[0]["job"]["method"] == f"flaky{workers}"

    allow.touch()
    second = run_grid(grid, config)
    assert second.ran == 10 and not second.failed
    assert store.failed() == [] and len(list(store.records())) == 10


KILLS_ITSELF_ONCE = textwrap.dedent('''
    """Kills its own worker process (SIGKILL) the first time it runs, then works; on the
    subject named in the file "always-dies", it kills its worker every time."""
    import os, signal, numpy as np
    from pathlib import Path
    from mer_bench.methods import register
    from mer_bench.methods.base import Method

    MARK = Path(__file__).with_name("killed-once")
    ALWAYS = Path(__file__).with_name("always-dies")

    class KillsItsWorkerOnce(Method):
        views = ()
        def fit_predict(self, train, test, context):
            doomed = ALWAYS.exists() and ALWAYS.read_text() in test.subjects
            if not MARK.exists() or doomed:
                MARK.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return {"final": np.zeros((len(test), context.num_classes))}

    register("kills_its_worker_once", KillsItsWorkerOnce)
''')


def test_a_worker_process_killed_in_the_middle_is_retried_and_nothing_is_lost(results,
                                                                              tmp_path):
    plugin = tmp_path / "killer_plugin.py"
    plugin.write_text(KILLS_ITSELF_ONCE)
    config = RunConfig(results=results, plugins=(str(plugin),), progress=False, workers=2)
    summary = run_grid(Grid((MethodSpec.make("kills_its_worker_once"),), ("synthetic-5",)),
                       config)
    assert (tmp_path / "killed-once").exists()  # a worker did die
    assert summary.ran == 10 and not summary.failed
    assert len(list(Store(results).records())) == 10


def test_a_job_that_always_kills_its_worker_is_recorded_and_the_rest_go_on(results, tmp_path):
    plugin = tmp_path / "killer_plugin.py"
    plugin.write_text(KILLS_ITSELF_ONCE)
    (tmp_path / "always-dies").write_text("synthetic/sub03")
    config = RunConfig(results=results, plugins=(str(plugin),), progress=False, workers=2)
    summary = run_grid(Grid((MethodSpec.make("kills_its_worker_once"),), ("synthetic-5",)),
                       config)
    assert [job.fold for job, _ in summary.failed] == ["synthetic/sub03"]
    assert "worker process died 3 times" in summary.failed[0][1]
    assert summary.ran == 9 and len(list(Store(results).records())) == 9
    assert Store(results).failed()[0]["job"]["fold"] == "synthetic/sub03"


def test_stored_job_holds_spec_predictions_and_environment(results):
    config = RunConfig(results=results, progress=False)
    run_grid(Grid((MethodSpec.make("majority"),), ("synthetic-5",)), config)
    folder = next((results / "runs").iterdir())
    job = json.loads((folder / "job.json").read_text())
    info = json.loads((folder / "info.json").read_text())
    predictions = json.loads((folder / "predictions.json").read_text())
    assert job["method"] == "majority" and job["versions"]["preprocess"]
    assert len(predictions["clips"]) == len(predictions["logits"]["final"])
    assert set(predictions["subjects"]) == {job["fold"]}
    assert info["environment"]["packages"]["torch"]
    assert info["task"]["synthetic"] is True and len(info["task"]["folds"]) == 10
