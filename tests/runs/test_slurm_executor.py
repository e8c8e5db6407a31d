"""The SLURM executor against a real SLURM cluster (`.ci/slurm up` starts a single-node one;
these tests skip, saying why, where none answers): the same bits as a local run, an element
cancelled mid-run, an element stopped by its time limit, `status` and `cancel`."""

import os
import re
import shutil
import subprocess
import textwrap
import threading
import time
from dataclasses import replace

import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.runner import run_grid
from mer_bench.benchmark.execution.slurm import SlurmExecutor, in_flight, queue_states
from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
from mer_bench.benchmark.storage.store import Store
from tests.runs.test_runner import predictions_by_job

pytest.importorskip("submitit", reason="submitit is not installed (pip install '.[slurm]')")
pytestmark = pytest.mark.slow


def _cluster_problem() -> str | None:
    if not shutil.which("sbatch"):
        return "no SLURM client here (sbatch); `.ci/slurm up` installs and starts one (root)"
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 20 s"
    if answer.returncode != 0 or not re.search(r"idle|mixed|allocated", answer.stdout):
        return (f"no SLURM node is up (sinfo: {answer.stdout.strip() or answer.stderr.strip()}); "
                "`.ci/slurm up` starts one (root)")
    return None


@pytest.fixture(scope="module")
def slurm():
    problem = _cluster_problem()
    if problem:
        pytest.skip(problem)


# One element claims the hold (the first to run), says which element it is, and waits while
# the hold file exists (cancelled or timed out meanwhile); every other element answers at once.
HOLDS_ONE = textwrap.dedent('''
    import os, time, numpy as np
    from mer_bench.methods import register
    from mer_bench.methods.base import Method

    HOLD = HOLD_PATH

    class HoldsOneElement(Method):
        views = ()
        def fit_predict(self, train, test, context):
            if os.path.exists(HOLD):
                try:
                    claim = os.open(HOLD + ".claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    claim = None
                if claim is not None:
                    element = os.environ["SLURM_ARRAY_JOB_ID"] + "_" + os.environ["SLURM_ARRAY_TASK_ID"]
                    os.write(claim, f"{element} {os.getpid()}".encode())
                    os.close(claim)
                    while os.path.exists(HOLD):
                        time.sleep(0.5)
            return {"final": np.zeros((len(test), context.num_classes))}

    register(NAME, HoldsOneElement)
''')


def holding_plugin(tmp_path, name: str):
    hold = tmp_path / "hold"
    plugin = tmp_path / f"{name}_plugin.py"
    plugin.write_text(HOLDS_ONE.replace("HOLD_PATH", repr(str(hold))).replace("NAME", repr(name)))
    hold.touch()
    return plugin, hold


def slurm_config(results, **kwargs) -> RunConfig:
    return RunConfig(results=results, progress=False, executor="slurm", threads=1, **kwargs)


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"waited {timeout_s} s for {what}")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_job_array_stores_the_bits_a_local_run_stores(slurm, results, tmp_path):
    local = tmp_path / "local"
    shutil.copytree(results, local)
    grid = Grid((MethodSpec.make("ststnet", budget=40),), ("synthetic-5",))
    run_grid(grid, RunConfig(results=local, progress=False, threads=1), folds=("4",))
    summary = run_grid(grid, slurm_config(results, slurm=(("time", 10),)), folds=("4",))
    assert summary.ran == 4 and not summary.failed
    expected = predictions_by_job(local)
    assert len(expected) == 4
    assert predictions_by_job(results) == expected  # bit for bit, on another process tree
    (folder,) = (results / "slurm").iterdir()  # its submission record and element logs
    assert (folder / "submission.json").is_file() and list(folder.glob("*_log.err"))


def test_an_element_cancelled_mid_run_then_a_resubmission_stores_the_rest_once(
        slurm, results, tmp_path, capsys, monkeypatch):
    plugin, hold = holding_plugin(tmp_path, "holds_on_slurm")
    config = slurm_config(results, plugins=(str(plugin),), slurm=(("time", 10),), detach=True)
    grid = Grid((MethodSpec.make("holds_on_slurm"),), ("synthetic-5",))
    submitted = run_grid(grid, config, folds=("4",)).submitted
    assert submitted is not None and len(submitted.elements) == 4
    claimed = tmp_path / "hold.claimed"
    element = wait_for(lambda: claimed.exists() and claimed.read_text(), 300,
                       "an element to start and hold").split()[0]
    store = Store(results)
    wait_for(lambda: len(list(store.records())) == 3, 300, "the 3 other elements to store")

    again = run_grid(grid, config, folds=("4",))  # the held element is still running
    assert again.submitted is None and again.already_done == 3 and again.left_in_flight == 1
    waiting, entered = {}, threading.Event()  # the same command, not detached, waits for
    original = SlurmExecutor.wait_for  # the earlier array's element: cancelled meanwhile
    monkeypatch.setattr(SlurmExecutor, "wait_for",
                        lambda self, keys: (entered.set(), original(self, keys))[1])
    waiter = threading.Thread(target=lambda: waiting.update(summary=run_grid(
        grid, replace(config, detach=False, progress=True), folds=("4",))))
    waiter.start()
    assert entered.wait(300)

    subprocess.run(["scancel", element], check=True)
    waiter.join(timeout=300)
    summary = waiting["summary"]
    assert summary.ran == 0 and summary.already_done == 3 and len(summary.failed) == 1
    assert "an earlier SLURM array ended without storing it" in summary.failed[0][1]
    assert queue_states([element.split("_")[0]])[element] == "CANCELLED"
    printed = capsys.readouterr().out
    assert "4 jobs: 3 already done, 1 queued or running in earlier SLURM arrays (left to " \
        "them), 0 to run" in printed and "waiting for the 1 jobs earlier SLURM arrays" in printed
    assert main(["status", "--results", str(results)]) == 0
    said = capsys.readouterr().out
    assert f"SLURM array {submitted.array} (4 elements" in said
    assert "3 stored, 0 queued, 0 running, 1 failed" in said
    assert f"SLURM element {element} ended CANCELLED" in said
    (failure,) = store.failed()  # recorded, naming the element and its log
    assert element in failure["error"] and f"{element}_0_log.err" in failure["error"]

    hold.unlink()
    resumed = run_grid(grid, slurm_config(results, plugins=(str(plugin),),
                                          slurm=(("time", 10),)), folds=("4",))
    assert resumed.ran == 1 and resumed.already_done == 3 and not resumed.failed
    runs = [p for p in (results / "runs").iterdir() if not p.name.startswith(".")]
    assert len(runs) == 4 and store.failed() == []


def test_cancel_stops_the_arrays_of_a_results_folder_and_status_says_so(slurm, results,
                                                                        tmp_path, capsys):
    plugin, hold = holding_plugin(tmp_path, "holds_until_cancelled")
    config = slurm_config(results, plugins=(str(plugin),), slurm=(("time", 10),), detach=True)
    grid = Grid((MethodSpec.make("holds_until_cancelled"),), ("synthetic-5",))
    array = run_grid(grid, config, folds=("2",)).submitted.array
    wait_for((tmp_path / "hold.claimed").exists, 300, "an element to start and hold")
    assert main(["cancel", "--results", str(results)]) == 0
    assert f"cancelled SLURM arrays {array};" in capsys.readouterr().out
    wait_for(lambda: not in_flight(results), 120, "sacct to say the array has ended")
    assert main(["status", "--results", str(results)]) == 0
    said = capsys.readouterr().out
    assert "0 queued, 0 running" in said and re.search(r"[01] stored, .* [12] failed", said)
    assert main(["cancel", "--results", str(results)]) == 0
    assert "no SLURM array" in capsys.readouterr().out  # nothing left to cancel
    hold.unlink()


def test_an_element_out_of_time_is_recorded_then_runs_again(slurm, results, tmp_path):
    plugin, hold = holding_plugin(tmp_path, "holds_past_its_time")
    config = slurm_config(results, plugins=(str(plugin),), slurm=(("time", 1),))
    grid = Grid((MethodSpec.make("holds_past_its_time"),), ("synthetic-5",))
    first = run_grid(grid, config, folds=("2",))
    element, pid = (tmp_path / "hold.claimed").read_text().split()
    wait_for(lambda: not process_alive(int(pid)), 30, "the element's process to end")  # killed,
    assert first.ran == 1 and len(first.failed) == 1  # not left to finish its job unseen
    (job, reason), = first.failed
    # submitit stops it at SLURM's warning signal before the limit, or SLURM kills it there
    assert re.search(r"TIMEOUT|timed-out", reason) and f"SLURM element {element}" in reason
    assert Store(results).failed()[0]["error"] == reason

    hold.unlink()
    second = run_grid(grid, config, folds=("2",))
    assert second.ran == 1 and second.already_done == 1, (second.failed, second.left_in_flight)
    assert Store(results).failed() == []
