"""Fault injection: a fault of the machine stops the run with its reason, a fault of one
input names its file, and nothing corrupt is reused (issue "nothing wrong is ever reused")."""

import errno
import shutil

import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.planning import prepare_task
from mer_bench.datasets import bundle_cache
from mer_bench.datasets.bundle_cache import CacheUnwritable


def uncached(results, tmp_path):
    """The prepared results folder without its bundle cache: every clip must be made."""
    copy = tmp_path / "fresh"
    shutil.copytree(results, copy)
    shutil.rmtree(copy / "cache", ignore_errors=True)
    return copy


@pytest.mark.parametrize("fault", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EROFS, "Read-only file system"),
])
def test_a_cache_that_cannot_be_written_stops_preparing_and_drops_no_clip(results, tmp_path,
                                                                         monkeypatch, fault):
    folder = uncached(results, tmp_path)
    calls = []

    def full_disk(*args, **kwargs):
        calls.append(1)
        raise fault

    monkeypatch.setattr(bundle_cache.np, "savez", full_disk)
    with pytest.raises(CacheUnwritable, match=rf"cannot write the bundle cache .*"
                                              rf"{fault.strerror}.*no clip dropped"):
        prepare_task("synthetic-5", RunConfig(results=folder, progress=False))
    assert len(calls) == 1  # stopped at the first clip, not once per clip


def test_no_permission_under_the_cache_is_the_machines_fault_elsewhere_the_clips(results,
                                                                                tmp_path,
                                                                                monkeypatch):
    folder = uncached(results, tmp_path)
    config = RunConfig(results=folder, progress=False)

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(bundle_cache.Path, "mkdir", denied)
    with pytest.raises(CacheUnwritable, match="Permission denied"):
        prepare_task("synthetic-5", config)
    monkeypatch.undo()
    config = RunConfig(results=results, progress=False)  # bundles cached; one frame denied
    frames = sorted((results / "data" / "synthetic" / "sub01").glob("*/img*.jpg"))
    original = bundle_cache.read_frames

    def read(clip, settings):
        if clip.key.endswith("sub01/EP01_01"):
            raise PermissionError(errno.EACCES, "Permission denied", str(frames[0]))
        return original(clip, settings)

    monkeypatch.setattr(bundle_cache, "read_frames", read)
    prepared = prepare_task("synthetic-5", config)
    assert list(prepared.report.failed) == ["synthetic/sub01/EP01_01"]
    assert str(frames[0]) in prepared.report.failed["synthetic/sub01/EP01_01"]


def test_the_command_line_says_why_and_exits_2(results, tmp_path, monkeypatch, capsys):
    folder = uncached(results, tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle_cache.np, "savez", full_disk)
    assert main(["run", "--methods", "majority", "--results", str(folder), "--quiet",
                 "--prepare-workers", "1"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not (folder / "runs").exists() or not any((folder / "runs").iterdir())


COMMON_VALUES = {"--results": "/tmp/r", "--plugin": "my_plugin.py", "--data-root": "/d",
                 "--data": "casme2=/c", "--annotations": "/a", "--workers": "3",
                 "--prepare-workers": "5", "--domains": "5", "--detector": "retinaface",
                 "--detector-weights": "/w.pth", "--device": "cpu", "--precision": "bf16",
                 "--detector-preset": "release", "--key-frames": "middle",
                 "--key-frame-shift": "2", "--key-frame-seed": "7", "--crop": "per-frame",
                 "--flow-encoding": "8bit", "--quiet": None}


def test_every_common_option_is_honoured_before_or_after_the_subcommand():
    from mer_bench.benchmark.cli import parse
    from mer_bench.benchmark.cli.options import common_options as _common

    options = [a.option_strings[0] for a in _common()._actions]
    assert sorted(options) == sorted(COMMON_VALUES)  # a new option needs a value here
    for option, value in COMMON_VALUES.items():
        given = [option] + ([value] if value is not None else [])
        before, after = parse([*given, "prepare", "--task", "t"]), parse(
            ["prepare", "--task", "t", *given])
        default = parse(["prepare", "--task", "t"])
        dest = option.lstrip("-").replace("-", "_")
        assert getattr(before, dest) == getattr(after, dest) != getattr(default, dest), option
    both = parse(["--plugin", "a.py", "run", "--plugin", "b.py"])
    assert both.plugin == ["a.py", "b.py"]


@pytest.mark.parametrize("argv", [["run", "--budget", "0"], ["run", "--budget", "-5"],
                                  ["run", "--workers", "0"], ["run", "--pretrain-budget", "0"],
                                  ["run", "--domains", "1"], ["prepare", "--task", "t",
                                                              "--prepare-workers", "0"]])
def test_a_budget_or_count_below_one_is_refused_before_any_work(argv, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main(argv)
    error = capsys.readouterr().err
    assert exit_code.value.code == 2
    assert "at least 1" in error or "temporal domains are 2 or more" in error


@pytest.mark.parametrize("text,named", [
    ('tasks = ["synthetic-5"]\nseeds = ["a"]\n[[methods]]\nname = "majority"', "seeds = ['a']"),
    ('tasks = ["synthetic-5"]\nbudget = "abc"\n[[methods]]\nname = "majority"', "budget = 'abc'"),
    ('tasks = ["synthetic-5"]\n[[methods]]\nname = "majority"\nbudget = 0', "budget = 0"),
    ('tasks = "synthetic-5"\n[[methods]]\nname = "majority"', "tasks = 'synthetic-5'"),
    ('tasks = ["synthetic-5"]\nmethods = 3', "methods = 3"),
    ('tasks = ["synthetic-5"]\n[[methods]]\nbudget = 3', "a method needs a name"),
    ('tasks = ["synthetic-5"]\n[[methods]]\nname = "majority"\n[profiles.quick]\nseeds = [-1]',
     "profile 'quick': seeds = [-1]"),
    ('tasks = ["synthetic-5"\n', "is not valid TOML"),
])
def test_a_grid_value_of_the_wrong_kind_is_refused_naming_it(tmp_path, text, named):
    from mer_bench.benchmark.protocol.grids import load_grid

    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_grid(path, "quick" if "profiles" in text else None)
    assert str(path) in str(error.value) and named in str(error.value)


def test_unknown_options_and_a_missing_gpu_fail_before_anything_is_prepared(tmp_path,
                                                                            monkeypatch):
    from mer_bench.benchmark.execution import planning
    from mer_bench.benchmark.protocol.grids import Grid, MethodSpec

    def no_preparing(*args, **kwargs):
        raise AssertionError("a task was prepared")

    monkeypatch.setattr(planning, "prepare_task", no_preparing)
    config = RunConfig(results=tmp_path, progress=False)
    grid = Grid((MethodSpec.make("majority"), MethodSpec.make("ststnet", {"depth": 3})),
                ("synthetic-5",))
    with pytest.raises(ValueError, match=r"method ststnet with options \{'depth': 3\}.*depth"):
        planning.plan(grid, config)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda: no such CUDA device"):
            planning.plan(Grid((MethodSpec.make("majority"),), ("synthetic-5",)),
                          RunConfig(results=tmp_path, device="cuda"))


def stored_run(results, capsys):
    """The synthetic default run with majority stored; the folders of its jobs."""
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    capsys.readouterr()
    return sorted(p for p in (results / "runs").iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("damage", ["spec", "predictions", "info", "digests", "empty"])
def test_a_damaged_stored_job_is_quarantined_named_and_recomputed(results, capsys, damage):
    folders = stored_run(results, capsys)
    bad = folders[3]
    if damage == "spec":
        (bad / "job.json").write_text((bad / "job.json").read_text()[:-20])  # cut short
    elif damage == "predictions":
        text = (bad / "predictions.json").read_text()
        (bad / "predictions.json").write_text(text.replace("0", "1", 1))  # parses, wrong bits
    elif damage == "info":
        (bad / "info.json").write_text("{")
    elif damage == "digests":
        (bad / "digests.json").write_text("not json")
    else:
        (bad / "predictions.json").write_bytes(b"")
    assert main(["store", "verify", "--results", str(results)]) == 1
    assert str(bad) in capsys.readouterr().out
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"quarantined {bad.name}" in captured.err
    assert "1 jobs run, 9 already done" in captured.out and "10 x 1" in captured.out
    assert (bad / "digests.json").exists()  # recomputed whole
    moved = list((results / "quarantine").iterdir())
    assert len(moved) == 1 and (moved[0] / "QUARANTINED.txt").read_text()
    assert main(["store", "verify", "--results", str(results)]) == 0


def test_tables_never_render_a_damaged_job_and_say_which_it_was(results, capsys):
    folders = stored_run(results, capsys)
    (folders[0] / "predictions.json").write_text("[")
    assert main(["tables", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert "incomplete (9/10 folds)" in captured.out and f"quarantined {folders[0].name}" in \
        captured.err


def test_a_sweep_spares_a_live_writers_temporary_folder(tmp_path):
    import os

    from mer_bench.benchmark.storage.store import Store

    store = Store(tmp_path)
    store.runs.mkdir(parents=True)
    live = store.runs / f".tmp-{'a' * 20}-{tagged(os.getpid())}abcd1234"
    dead = store.runs / f".tmp-{'b' * 20}-{tagged(ended_pid())}abcd1234"
    legacy_young = store.runs / f".tmp-{'c' * 20}-xyz"
    legacy_old = store.runs / f".tmp-{'d' * 20}-xyz"
    for folder in (live, dead, legacy_young, legacy_old):
        folder.mkdir()
    os.utime(legacy_old, (0, 0))
    assert store.sweep_temporary() == 2
    assert live.exists() and legacy_young.exists()
    assert not dead.exists() and not legacy_old.exists()


def tagged(pid: int) -> str:
    import socket

    return f"~{socket.gethostname()}~{pid}~"


def ended_pid() -> int:
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_a_killed_generations_partial_folder_is_removed_by_the_next(tmp_path):
    import os

    from mer_bench.datasets.synthetic_frames import SyntheticSpec, generate

    killed = tmp_path / f".synthetic.partial-{tagged(ended_pid())}abcd1234"
    running = tmp_path / f".synthetic.partial-{tagged(os.getpid())}abcd1234"
    killed.mkdir()
    running.mkdir()
    generate(tmp_path / "synthetic", SyntheticSpec(subjects=1, clips_per_subject=5))
    assert not killed.exists() and running.exists()
    assert (tmp_path / "synthetic" / "CASME2-coding-synthetic.xlsx").is_file()


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not a zip at all", "truncated"])
def test_a_damaged_cached_bundle_is_remade_once_and_named(results, damage):
    config = RunConfig(results=results, progress=False)
    first = prepare_task("synthetic-5", config)
    clip, key = next(iter(first.report.keys.items()))
    path = config.cache.path(key)
    path.write_bytes(path.read_bytes()[:200] if damage == "truncated" else damage)
    again = prepare_task("synthetic-5", config)
    assert list(again.report.remade) == [clip] and not again.report.failed
    assert f"remade {clip}: its cached bundle could not be loaded" in again.report.summary()
    assert again.report.keys[clip] == key and config.cache.damage(key) is None
    assert prepare_task("synthetic-5", config).report.remade == {}  # healed for good


def test_a_bundle_that_fails_again_drops_only_its_clip(results, monkeypatch):
    config = RunConfig(results=results, progress=False)
    first = prepare_task("synthetic-5", config)
    clip, key = next(iter(first.report.keys.items()))
    monkeypatch.setattr(bundle_cache.BundleCache, "damage",
                        lambda self, k: "BadZipFile: broken disk" if k == key else None)
    again = prepare_task("synthetic-5", config)
    assert list(again.report.failed) == [clip] and "nor once remade" in again.report.failed[clip]
    assert len(again.report.keys) == len(first.report.keys) - 1


@pytest.mark.parametrize("content,said", [(b"", "is empty (0 bytes)"),
                                          (b"garbage bytes", "is not a readable image (13 bytes)"),
                                          ("truncated", "is not a readable image")])
def test_an_unreadable_frame_drops_its_clip_and_names_the_file(results, tmp_path, content, said):
    folder = uncached(results, tmp_path)
    config = RunConfig(results=folder, progress=False)
    frames = sorted((folder / "data" / "synthetic" / "sub01" / "EP01_01").glob("img*.jpg"),
                    key=lambda p: int(p.stem[3:]))
    for frame in frames:  # whichever of them is the onset, apex or offset
        frame.write_bytes(frame.read_bytes()[:60] if content == "truncated" else content)
    from mer_bench.benchmark.protocol.tasks import build_task, load_task
    from mer_bench.datasets.bundle_cache import prepare_clips

    data = load_task(build_task("synthetic-5"), {"synthetic": folder / "data" / "synthetic"})
    one = [s.clip for s in data.samples if s.clip.key == "synthetic/sub01/EP01_01"]
    report = prepare_clips(one, config.cache, progress=False)
    reason = report.failed["synthetic/sub01/EP01_01"]
    assert said in reason and str(folder / "data" / "synthetic" / "sub01" / "EP01_01") in reason


def test_a_truncated_sheet_is_named(tmp_path):
    from openpyxl import Workbook

    from mer_bench.datasets.errors import DatasetError
    from mer_bench.datasets.sheets import read_sheet

    book = Workbook()
    book.active.append(["Subject", "Filename"])
    path = tmp_path / "CASME2-coding-20140508.xlsx"
    book.save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError, match=rf"annotation sheet {path} cannot be read: "
                                           r"BadZipFile"):
        read_sheet(path, ("Subject",))


def test_empty_or_wrong_detector_weights_fail_once_before_any_clip(results, tmp_path,
                                                                  monkeypatch, capsys):
    from mer_bench.datasets import faces
    from mer_bench.datasets.retinaface import WeightsError, load_retinaface

    empty = tmp_path / "mobilenet0.25_Final.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match=r"cannot be read as a PyTorch checkpoint .*0 bytes"):
        load_retinaface(empty)
    loads = []
    real = faces._cached_retinaface.__wrapped__

    def counted(*args):
        loads.append(args)
        return real(*args)

    monkeypatch.setattr(faces, "_cached_retinaface", counted)
    folder = uncached(results, tmp_path)
    code = main(["run", "--methods", "majority", "--results", str(folder), "--quiet",
                 "--prepare-workers", "1", "--detector", "retinaface",
                 "--detector-weights", str(empty)])
    error = capsys.readouterr().err
    assert code == 2 and f"RetinaFace weights {empty.resolve()} cannot be read" in error
    assert len(loads) == 1  # once, before the first clip
    assert not (folder / "cache" / "bundles").exists() or not any(
        (folder / "cache" / "bundles").rglob("*.npz"))


def children_of(pid: int) -> set[int]:
    from pathlib import Path

    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    from pathlib import Path

    state = Path(f"/proc/{pid}/stat")
    return state.exists() and state.read_text().split()[2] != "Z"


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="Linux /proc")
def test_killing_the_driver_while_preparing_leaves_no_worker_behind(results, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    folder = uncached(results, tmp_path)
    driver = subprocess.Popen([sys.executable, str(REPO / "run_benchmark.py"), "prepare",
                               "--task", "synthetic-5", "--prepare-workers", "2", "--quiet",
                               "--results", str(folder)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 120, set()
    while time.time() < deadline and not any((folder / "cache").rglob("*.npz")):
        workers |= children_of(driver.pid)
        time.sleep(0.2)
    workers |= children_of(driver.pid)
    assert workers, "the driver started no worker"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if alive(p)]  # prepare workers and the resource tracker


@pytest.mark.slow  # worker processes: the slow stage
def test_the_same_threads_give_the_same_bits_serial_or_in_workers(results, tmp_path):
    import json

    other = tmp_path / "other"
    shutil.copytree(results, other)
    common = ["--methods", "ststnet.shared", "--budget", "3", "--threads", "1", "--quiet"]
    assert main(["run", *common, "--results", str(results)]) == 0
    assert main(["run", *common, "--results", str(other), "--workers", "2"]) == 0

    def stored(folder):
        return {p.name: (json.loads((p / "predictions.json").read_text())["logits"],
                         json.loads((p / "info.json").read_text())["environment"]["cpu_threads"])
                for p in (folder / "runs").iterdir()}

    serial, workers = stored(results), stored(other)
    assert serial.keys() == workers.keys() and len(serial) == 10
    assert all(serial[k] == workers[k] for k in serial)  # every logit, bit for bit
    assert {threads for _, threads in serial.values()} == {1}


def test_bf16_on_a_cpu_without_bf16_instructions_is_said_to_be_slow(monkeypatch):
    from mer_bench.benchmark.execution import environment
    from mer_bench.benchmark.execution.environment import bf16_note

    avx2_only = {"fpu", "sse2", "avx", "avx2", "fma"}
    assert "no native bf16 instructions" in bf16_note("bf16", "cpu", avx2_only)
    assert bf16_note("bf16", "cpu", avx2_only | {"avx512_bf16"}) == ""
    assert bf16_note("bf16", "cuda", avx2_only) == "" == bf16_note("fp32", "cpu", avx2_only)
    monkeypatch.setattr(environment, "cpu_flags", lambda: None)  # not Linux, say
    assert "cannot be read here" in bf16_note("bf16", "cpu")


@pytest.mark.parametrize("fault", [(errno.ENOSPC, "No space left on device"),
                                   (errno.EROFS, "Read-only file system")])
def test_a_full_disk_while_storing_stops_the_run_and_keeps_what_was_stored(results,
                                                                           monkeypatch,
                                                                           capsys, fault):
    from mer_bench.benchmark.storage.store import Store

    real, calls = Store.write, []

    def fills_up(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise OSError(*fault, str(self.runs / "x"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "write", fills_up)
    code = main(["run", "--methods", "majority", "--results", str(results), "--quiet"])
    error = capsys.readouterr().err
    assert code == 2 and f"cannot write the results folder {results}" in error
    assert fault[1] in error and len(calls) == 4  # stopped at once
    monkeypatch.undo()
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    assert "7 jobs run, 3 already done" in capsys.readouterr().out


@pytest.mark.slow  # worker processes: the slow stage
def test_two_runs_on_one_store_at_once_both_complete_and_leave_it_whole(results):
    import subprocess
    import sys

    from tests.conftest import REPO

    def start(methods):
        return subprocess.Popen([sys.executable, str(REPO / "run_benchmark.py"), "run",
                                 "--methods", methods, "--budget", "2", "--quiet",
                                 "--results", str(results)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # both plan the same majority jobs, and each its own method: they write side by side
    first, second = start("majority,stratified"), start("majority,ststnet.shared")
    outs = [run.communicate(timeout=600) for run in (first, second)]
    assert [run.returncode for run in (first, second)] == [0, 0], outs
    assert main(["store", "verify", "--results", str(results)]) == 0
    stored = [p for p in (results / "runs").iterdir()]
    assert len(stored) == 30 and not [p for p in stored if p.name.startswith(".tmp")]
    assert not (results / "failures").exists() or not any((results / "failures").iterdir())


def test_an_ordinary_os_error_of_folds_trained_together_is_recorded_for_each(results,
                                                                            monkeypatch):
    from mer_bench.benchmark.execution import one_job as execution
    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.protocol.jobs import Job

    def broken(jobs, config, store):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/gone")

    monkeypatch.setattr(execution, "_run_together", broken)
    jobs = [Job("ststnet.shared", "synthetic-5", f"synthetic/sub0{i}") for i in (1, 2)]
    outcomes = execution.execute_group(jobs, RunConfig(results=results, progress=False))
    assert [job for job, _ in outcomes] == jobs and all("/gone" in e for _, e in outcomes)
    assert len(list((results / "failures").glob("*.json"))) == 2
