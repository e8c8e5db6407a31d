"""Fault injection: a fault of the machine stops the run with its reason, a fault of one
input names its file, and nothing corrupt is reused (issue "nothing wrong is ever reused")."""

import errno
import shutil

import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.config import RunConfig
from mer_bench.benchmark.planning import prepare_task
from mer_bench.datasets import preprocess
from mer_bench.datasets.preprocess import CacheUnwritable


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

    monkeypatch.setattr(preprocess.np, "savez", full_disk)
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

    monkeypatch.setattr(preprocess.Path, "mkdir", denied)
    with pytest.raises(CacheUnwritable, match="Permission denied"):
        prepare_task("synthetic-5", config)
    monkeypatch.undo()
    config = RunConfig(results=results, progress=False)  # bundles cached; one frame denied
    frames = sorted((results / "data" / "synthetic" / "sub01").glob("*/img*.jpg"))
    original = preprocess.read_frames

    def read(clip, settings):
        if clip.key.endswith("sub01/EP01_01"):
            raise PermissionError(errno.EACCES, "Permission denied", str(frames[0]))
        return original(clip, settings)

    monkeypatch.setattr(preprocess, "read_frames", read)
    prepared = prepare_task("synthetic-5", config)
    assert list(prepared.report.failed) == ["synthetic/sub01/EP01_01"]
    assert str(frames[0]) in prepared.report.failed["synthetic/sub01/EP01_01"]


def test_the_command_line_says_why_and_exits_2(results, tmp_path, monkeypatch, capsys):
    folder = uncached(results, tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(preprocess.np, "savez", full_disk)
    assert main(["run", "--methods", "majority", "--results", str(folder), "--quiet",
                 "--prepare-workers", "1"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert not (folder / "runs").exists() or not any((folder / "runs").iterdir())


COMMON_VALUES = {"--results": "/tmp/r", "--plugin": "my_plugin.py", "--data-root": "/d",
                 "--data": "casme2=/c", "--annotations": "/a", "--workers": "3",
                 "--prepare-workers": "5", "--domains": "5", "--detector": "retinaface",
                 "--detector-weights": "/w.pth", "--device": "cpu", "--precision": "bf16",
                 "--quiet": None}


def test_every_common_option_is_honoured_before_or_after_the_subcommand():
    from mer_bench.benchmark.cli import _common, parse

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
    from mer_bench.benchmark.jobs import load_grid

    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_grid(path, "quick" if "profiles" in text else None)
    assert str(path) in str(error.value) and named in str(error.value)


def test_unknown_options_and_a_missing_gpu_fail_before_anything_is_prepared(tmp_path,
                                                                            monkeypatch):
    from mer_bench.benchmark import planning
    from mer_bench.benchmark.jobs import Grid, MethodSpec

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
    import socket
    import subprocess
    import sys

    from mer_bench.benchmark.store import Store

    store = Store(tmp_path)
    store.runs.mkdir(parents=True)
    host = socket.gethostname()
    live = store.runs / f".tmp-{'a' * 20}-{os.getpid()}@{host}-abcd1234"
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = store.runs / f".tmp-{'b' * 20}-{child.stdout.strip()}@{host}-abcd1234"
    legacy_young = store.runs / f".tmp-{'c' * 20}-xyz"
    legacy_old = store.runs / f".tmp-{'d' * 20}-xyz"
    for folder in (live, dead, legacy_young, legacy_old):
        folder.mkdir()
    os.utime(legacy_old, (0, 0))
    assert store.sweep_temporary() == 2
    assert live.exists() and legacy_young.exists()
    assert not dead.exists() and not legacy_old.exists()
