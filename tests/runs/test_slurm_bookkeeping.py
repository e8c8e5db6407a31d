"""The SLURM executor's bookkeeping, without a cluster: settings checked before anything is
submitted, sacct's answers read (ranges of pending elements included), and `status` charging
the jobs of an element that ended without storing them (the real cluster's tests are in
test_slurm_executor.py)."""

import subprocess
import time

import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.execution import slurm
from mer_bench.benchmark.execution.slurm import Element, Submission, follow, is_live, queue_states
from mer_bench.benchmark.protocol.grids import load_grid
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.protocol.slurm_settings import merged, parse_option
from mer_bench.benchmark.storage.store import Store


def test_a_grids_slurm_table_is_checked_and_the_command_line_wins(tmp_path):
    grid = tmp_path / "grid.toml"
    body = 'tasks = ["synthetic-5"]\n[[methods]]\nname = "majority"\n'
    grid.write_text(body + '[slurm]\npartition = "gpu"\ngpus = 1\ntime = 120\n')
    loaded = load_grid(grid)
    assert dict(loaded.slurm) == {"partition": "gpu", "gpus": 1, "time": 120}
    assert merged(loaded.slurm, (parse_option("time=30"),)) == {
        "partition": "gpu", "gpus": 1, "time": 30, "cpus": 1}
    grid.write_text(body + '[slurm]\ngpu = 1\n')
    with pytest.raises(ValueError, match=r"grid .*grid.toml: unknown SLURM setting 'gpu'"):
        load_grid(grid)
    grid.write_text(body + '[slurm]\nmem = "lots"\n')
    with pytest.raises(ValueError, match=r"slurm mem = 'lots'; expected memory .* e.g. 16G"):
        load_grid(grid)


def test_bad_slurm_options_are_refused_before_anything_runs(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["run", "--executor", "slurm", "--slurm", "time=soon", "--results", str(tmp_path)])
    assert "--slurm time=soon: expected minutes an element may run" in capsys.readouterr().err
    with pytest.raises(ValueError, match="KEY one of partition, time"):
        parse_option("nodes=4")


def test_slurm_options_need_the_slurm_executor(tmp_path, capsys):
    for option in (["--detach"], ["--slurm", "time=10"]):
        assert main(["run", "--methods", "majority", *option, "--results", str(tmp_path)]) == 2
        assert f"{option[0]} is for a SLURM job array: use it with --executor slurm" in \
            capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before anything was generated


def test_slurm_without_slurms_commands_says_so_in_a_line_and_leaves_nothing(
        monkeypatch, tmp_path, capsys):
    bare = tmp_path / "bin"  # a PATH that holds no SLURM command, as on a laptop
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    results = tmp_path / "results"
    assert main(["run", "--methods", "majority", "--executor", "slurm", "--results",
                 str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "SLURM's commands were not found on PATH (sbatch, srun, sacct, scancel missing)" \
        in err and "use --executor local" in err
    assert not (results / "slurm").exists() and not (results / "data").exists()


def test_a_failed_submission_removes_the_folder_it_made_and_only_that(monkeypatch, tmp_path):
    class Refusing:
        def map_array(self, function, items):
            raise RuntimeError("sbatch: error: invalid partition specified: gpu")

    monkeypatch.setattr(slurm, "missing_slurm_commands", lambda: [])
    monkeypatch.setattr(slurm.SlurmExecutor, "_submitit", lambda self, folder: Refusing())
    executor = slurm.SlurmExecutor(tmp_path / "fresh", {"cpus": 1}, jobs_of=list)
    with pytest.raises(RuntimeError, match="invalid partition"):
        executor.submit(print, [[]])
    assert not (tmp_path / "fresh" / "slurm").exists()  # made for the submission: gone
    earlier = tmp_path / "kept" / "slurm" / "20261206-000000-1"
    earlier.mkdir(parents=True)  # an earlier submission's folder is not this one's to remove
    executor = slurm.SlurmExecutor(tmp_path / "kept", {"cpus": 1}, jobs_of=list)
    with pytest.raises(RuntimeError):
        executor.submit(print, [[]])
    assert [p.name for p in (tmp_path / "kept" / "slurm").iterdir()] == [earlier.name]


def test_status_without_sacct_says_so(monkeypatch, tmp_path, capsys):
    folder = tmp_path / "slurm" / "20261206-000000-1"
    folder.mkdir(parents=True)
    Submission(folder, "12", [], time.time()).save()

    def no_sacct(command, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "sacct")

    monkeypatch.setattr(slurm.subprocess, "run", no_sacct)
    assert main(["status", "--results", str(tmp_path)]) == 2
    assert "error: sacct could not be asked about SLURM arrays ['12']" in capsys.readouterr().err


def fake_sacct(monkeypatch, lines: list[str]):
    def run(command, **kwargs):
        assert command[:2] == ["sacct", "-X"]
        return subprocess.CompletedProcess(command, 0, "\n".join(lines) + "\n", "")

    monkeypatch.setattr(slurm.subprocess, "run", run)


def test_sacct_lines_become_element_states(monkeypatch):
    fake_sacct(monkeypatch, ["12_0|COMPLETED", "12_1|CANCELLED by 0", "12_[2-4,7%2]|PENDING"])
    assert queue_states(["12"]) == {"12_0": "COMPLETED", "12_1": "CANCELLED", "12_2": "PENDING",
                                    "12_3": "PENDING", "12_4": "PENDING", "12_7": "PENDING"}
    assert not is_live("TIMEOUT", time.time()) and is_live("COMPLETING", 0)
    # not listed yet: queued just after submission, gone once accounting has had its time
    assert is_live(None, time.time()) and not is_live(None, time.time() - slurm.UNLISTED_S - 1)


def test_status_charges_an_ended_elements_jobs_and_leaves_completed_ones_their_errors(
        monkeypatch, tmp_path, capsys):
    results = tmp_path / "results"
    jobs = [Job(method="majority", task="synthetic-5", fold=f"sub{i}", seed=0, selection="last",
                budget=None) for i in range(4)]
    folder = results / "slurm" / "20261206-000000-1"
    folder.mkdir(parents=True)
    log = str(folder / "12_{}_0_log.err")
    Submission(folder, "12", [Element(f"12_{i}", [jobs[i].canonical()], log.format(i))
                              for i in range(4)], time.time()).save()
    fake_sacct(monkeypatch, ["12_0|RUNNING", "12_1|TIMEOUT", "12_2|COMPLETED", "12_3|PENDING"])
    store = Store(results)
    (status,) = follow(results, store)
    assert status.counts == {"stored": 0, "queued": 1, "running": 1, "failed": 2,
                             "resubmitted": 0}
    recorded = {f["job"]["fold"]: f["error"] for f in store.failed()}
    assert list(recorded) == ["sub1"]  # the completed element recorded its own error
    assert recorded["sub1"].startswith("SLURM element 12_1 ended TIMEOUT") and \
        "12_1_0_log.err" in recorded["sub1"]
    assert main(["status", "--results", str(results)]) == 0
    said = capsys.readouterr().out
    assert "SLURM array 12 (4 elements" in said and "0 stored, 1 queued, 1 running, 2 failed" \
        in said
    assert main(["status", "--results", str(tmp_path / "elsewhere")]) == 0
    assert "no SLURM submissions" in capsys.readouterr().out
