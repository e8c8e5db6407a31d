"""Never destroy a user's files, never store a non-number as a result, never call synthetic
data real (issue 29): each case as a careless user would meet it, each failing on the code
before the fix. The rules are promised in the README's "Reliability" section."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.storage.model_files import write_export
from mer_bench.benchmark.storage.owned_outputs import OWNED_MANIFEST
from mer_bench.benchmark.storage.store import Store
from mer_bench.methods import METHODS


def stored_majority(results, capsys) -> list[Path]:
    """The synthetic default run with majority stored; the folders of its 10 jobs."""
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    capsys.readouterr()
    return sorted(p for p in (results / "runs").iterdir() if not p.name.startswith("."))


def user_folder(path: Path) -> dict[str, str]:
    """A user's project folder: config.json, thesis.tex and src/; returns what it holds."""
    (path / "src").mkdir(parents=True)
    files = {"config.json": '{"lr": 0.1}', "thesis.tex": "\\chapter{MER}", "src/a.py": "x=1"}
    for name, text in files.items():
        (path / name).write_text(text)
    return files


def holds(path: Path, files: dict[str, str]) -> bool:
    return all((path / name).read_text() == text for name, text in files.items())


# 1. report --out


def test_report_refuses_a_folder_it_did_not_write_and_never_the_results_folder(results,
                                                                               tmp_path, capsys):
    stored_majority(results, capsys)
    thesis = tmp_path / "thesis"
    files = user_folder(thesis)
    assert main(["report", "--results", str(results), "--out", str(thesis), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is not a report written by mer-bench" in err and "thesis.tex" in err
    assert holds(thesis, files)
    assert main(["report", "--results", str(results), "--out", str(results), "--quiet"]) == 2
    assert f"{results} is not a report" in capsys.readouterr().err
    assert main(["store", "verify", "--results", str(results)]) == 0
    assert "every stored job" in capsys.readouterr().out
    assert main(["tables", "--results", str(results), "--quiet"]) == 0
    assert "majority" in capsys.readouterr().out
    assert main(["report", "--results", str(results), "--out", str(results / "runs" / "x"),
                 "--quiet"]) == 2
    assert "inside the store's runs/ folder" in capsys.readouterr().err


def test_report_replaces_its_own_site_but_not_one_a_user_added_to(results, tmp_path, capsys):
    stored_majority(results, capsys)
    site = tmp_path / "site"
    for _ in range(2):  # the second replaces the first: it carries the manifest
        assert main(["report", "--results", str(results), "--out", str(site), "--quiet"]) == 0
    assert (site / "index.html").is_file() and (site / OWNED_MANIFEST).is_file()
    capsys.readouterr()
    (site / "my_notes.txt").write_text("mine")
    assert main(["report", "--results", str(results), "--out", str(site), "--quiet"]) == 2
    assert "my_notes.txt" in capsys.readouterr().err
    assert (site / "my_notes.txt").read_text() == "mine" and (site / "index.html").is_file()
    (site / "my_notes.txt").unlink()
    (site / "index.html").write_text("edited by hand")
    assert main(["report", "--results", str(results), "--out", str(site), "--quiet"]) == 2
    assert "index.html changed since mer-bench wrote it" in capsys.readouterr().err
    assert (site / "index.html").read_text() == "edited by hand"


def test_a_failing_report_leaves_the_previous_one_whole(results, tmp_path, capsys, monkeypatch):
    from mer_bench.benchmark.reporting import report

    stored_majority(results, capsys)
    site = tmp_path / "site"
    assert main(["report", "--results", str(results), "--out", str(site), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in site.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise ValueError("a run page failed half way")

    monkeypatch.setattr(report, "_run_page", broken)
    assert main(["report", "--results", str(results), "--out", str(site), "--quiet"]) == 2
    assert {p.name: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site")]  # no leftovers


# 2. export DIR


def test_export_refuses_a_project_folder_with_a_config_json_and_a_symlink(results, tmp_path,
                                                                          capsys):
    project = tmp_path / "project"
    files = user_folder(project)
    for argv in (["export", str(project), "--method", "majority"],
                 ["export", str(project), "--method", "majority", "--fold", "synthetic/sub01"]):
        assert main([*argv, "--results", str(results), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "is not a model export written by mer-bench" in err and "thesis.tex" in err
        assert holds(project, files)
    link = tmp_path / "link"
    link.symlink_to(project)
    assert main(["export", str(link), "--method", "majority", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert "is a symbolic link" in err and "Traceback" not in err and "OSError" not in err
    assert holds(project, files)


def test_an_export_replaces_only_itself_unchanged(tmp_path):
    import torch

    folder = tmp_path / "model"
    weights = {"w": torch.zeros(2)}
    write_export(folder, weights, {"format": "x"}, "card")
    write_export(folder, {"w": torch.ones(2)}, {"format": "x"}, "card 2")  # its own: replaced
    assert (folder / "MODEL_CARD.md").read_text() == "card 2"
    (folder / "MODEL_CARD.md").write_text("my edits")
    with pytest.raises(ValueError, match="MODEL_CARD.md changed since mer-bench wrote it"):
        write_export(folder, weights, {"format": "x"}, "card 3")
    assert (folder / "MODEL_CARD.md").read_text() == "my edits"
    report_site = tmp_path / "site"
    report_site.mkdir()
    (report_site / OWNED_MANIFEST).write_text(json.dumps({"kind": "report", "files": {}}))
    with pytest.raises(ValueError, match="holds a mer-bench report, not a model export"):
        write_export(report_site, weights, {}, "")


def test_a_picture_the_user_names_replaces_only_the_harnesss_own(results, tmp_path, capsys):
    from PIL import Image

    mine = tmp_path / "figure.png"
    Image.new("RGB", (4, 4)).save(mine)
    before = mine.read_bytes()
    argv = ["check", "--task", "synthetic-5", "--results", str(results), "--out", str(mine)]
    assert main(argv) == 2
    assert f"{mine} exists and was not written by mer-bench" in capsys.readouterr().err
    assert mine.read_bytes() == before
    sheet = tmp_path / "sheet.png"
    argv[-1] = str(sheet)
    for _ in range(2):  # written, then replaced: it is the harness's own (its PNG mark)
        assert main(argv) == 0
    with Image.open(sheet) as image:
        assert image.info["Software"] == "mer-bench"


# 3. non-finite logits

NAN_PLUGIN = textwrap.dedent('''
    import numpy as np
    from mer_bench.api import Method, register_method

    class Broken(Method):
        views = ("flow_28",)

        def __init__(self, value=float("nan"), rows="all"):
            super().__init__()
            self.value, self.rows = value, rows

        def fit_predict(self, train, test, context):
            train.views["flow_28"], test.views["flow_28"]
            logits = np.zeros((len(test), context.num_classes))
            logits[:, 1] = 1.0
            if self.rows == "all":
                logits[:] = self.value
            else:
                logits[0, 0] = self.value
            return {"final": logits}

    register_method("nan_all", Broken)
    register_method("nan_one_row", Broken, rows="one")
    register_method("plus_inf", Broken, value=float("inf"), rows="one")
''')
NAN_METHODS = ("nan_all", "nan_one_row", "plus_inf")


@pytest.fixture
def nan_plugin(tmp_path):
    plugin = tmp_path / "nan_plugin.py"
    plugin.write_text(NAN_PLUGIN)
    yield plugin
    for name in NAN_METHODS:
        METHODS._entries.pop(name, None)
    for module in [m for m in sys.modules if m.startswith("mer_bench_plugin_nan_plugin")]:
        del sys.modules[module]  # loaded again (and registering again) by the next test


@pytest.mark.parametrize("method", NAN_METHODS)
def test_non_finite_logits_fail_the_job_named_and_are_never_stored(results, nan_plugin, capsys,
                                                                   method):
    argv = ["run", "--methods", method, "--plugin", str(nan_plugin), "--results", str(results),
            "--quiet"]
    assert main(argv) == 1
    assert not (results / "runs").is_dir() or not any((results / "runs").iterdir())
    failures = Store(results).failed()
    assert len(failures) == 10
    rows = r"in (\d+) of \1 rows" if method == "nan_all" else r"in 1 of \d+ rows"
    assert all(f"method {method}" in f["error"] and "NaN or infinite logits" in f["error"]
               and re.search(rows, f["error"]) and f"fold {f['job']['fold']}" in f["error"]
               for f in failures)
    capsys.readouterr()
    assert main(argv) == 1  # retried like any failure, and failing again
    assert "0 jobs run, 0 already done, 10 failed" in capsys.readouterr().out


def test_a_released_weights_file_of_nan_fails_its_fold_alone(tmp_path):
    import torch

    from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
    from mer_bench.benchmark.execution.runner import run_grid
    from mer_bench.benchmark.stats.runs import run_scores
    from mer_bench.methods.ststnet import STSTNetRelease
    from tests.releases.test_released_format import write_release

    root = write_release(tmp_path / "flows")
    folder = tmp_path / "weights"
    folder.mkdir()
    for index, subject in enumerate(("sub01", "sub02", "006", "007", "s01", "s02")):
        torch.manual_seed(index)
        state = STSTNetRelease(3).state_dict()
        if subject == "s02":
            state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                     for k, v in state.items()}
        torch.save(state, folder / f"{subject}.pth")
    config = RunConfig(results=tmp_path / "results", progress=False,
                       data_roots=(("composite_flows", str(root)),),
                       weights_dirs=(("w", str(folder)),))
    summary = run_grid(Grid((MethodSpec.make("ststnet", weights="w"),), ("composite-3-flows",)),
                       config)
    assert summary.ran == 5 and [job.fold for job, _ in summary.failed] == ["smic/s2"]
    assert "NaN or infinite logits in 1 of 1 rows" in summary.failed[0][1]
    (run,) = [r for r in run_scores(list(config.store.records())) if "[" not in r.task]
    assert (run.folds, run.folds_expected) == (5, 6)  # shown incomplete, never scored whole


def test_a_stored_job_with_nan_logits_is_not_a_result(results, capsys):
    folders = stored_majority(results, capsys)
    bad = folders[2]
    text = (bad / "predictions.json").read_text()
    raw = json.loads(text)
    raw["logits"]["final"][0][0] = float("nan")
    (bad / "predictions.json").write_text(json.dumps(raw))
    digests = json.loads((bad / "digests.json").read_text())
    import hashlib

    digests["predictions.json"] = hashlib.sha256((bad / "predictions.json").read_bytes()
                                                 ).hexdigest()
    (bad / "digests.json").write_text(json.dumps(digests))  # digests made to match
    assert main(["store", "verify", "--results", str(results)]) == 1
    assert "non-finite logits" in capsys.readouterr().out


@pytest.mark.parametrize("cell, said", [("nan", "is not finite"), ("inf", "is not finite"),
                                        ("", "is not a number")])
def test_score_refuses_non_finite_or_blank_logits_naming_file_line_and_column(results,
                                                                             tmp_path, capsys,
                                                                             cell, said):
    from mer_bench.benchmark.execution.planning import prepare_task

    data = prepare_task("synthetic-5", RunConfig(results=results, progress=False)).data
    classes = data.task.classes
    path = tmp_path / "predictions.csv"
    lines = ["clip," + ",".join(classes)]
    for index, sample in enumerate(data.samples):
        values = ["0.1"] * len(classes)
        if index == 4:
            values[2] = cell
        lines.append(f"{sample.clip.key}," + ",".join(values))
    path.write_text("\n".join(lines) + "\n")
    assert main(["score", "--task", "synthetic-5", "--predictions", str(path), "--results",
                 str(results)]) == 2
    err = capsys.readouterr().err
    assert f"{path} line 6, column '{classes[2]}'" in err and said in err


def test_check_plugin_names_non_finite_logits_and_no_false_determinism_failure(results,
                                                                               nan_plugin,
                                                                               capsys):
    assert main(["check-plugin", str(nan_plugin), "--methods", "nan_one_row", "--results",
                 str(results)]) == 1
    out = capsys.readouterr().out
    rows = {cells[1]: cells[2] for cells in ([c.strip() for c in line.strip("|").split("|")]
                                              for line in out.splitlines()) if len(cells) == 4}
    assert rows["finite logits"] == "FAILED"
    assert rows["the same seed gives the same logits"] == "ok"
    assert "1 of " in out and "rows of 'final'" in out


# 4. synthetic is what the data is


def test_the_generated_set_read_through_a_real_adapter_is_synthetic(results, capsys):
    synthetic = results / "data" / "synthetic"
    data = ["--data", f"casme2={synthetic}", "--results", str(results)]
    assert main(["list", "tasks", *data]) == 0
    out = capsys.readouterr().out
    line = out[out.index("casme2-5:"):].splitlines()[1]
    assert "SYNTHETIC" in line and "(real)" not in line
    assert main(["run", "--methods", "majority", "--tasks", "casme2-5", *data, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "casme2-5 (synthetic)" in out and "SYNTHETIC" in out
    info = json.loads(next((results / "runs").glob("*/info.json")).read_text())
    assert info["task"]["synthetic"] is True and info["task"]["data"] == "synthetic"


def test_a_data_root_that_does_not_exist_is_an_error_and_never_created(results, tmp_path,
                                                                       capsys):
    missing = tmp_path / "typo"
    for option in (["--data-root", str(missing)], ["--data", f"synthetic={missing}"]):
        assert main(["run", "--methods", "majority", *option, "--results", str(results),
                     "--quiet"]) == 2
        assert f"{missing} does not exist" in capsys.readouterr().err
        assert not missing.exists()


# 5. the store's integrity


def test_a_job_folder_without_digests_is_not_a_stored_job(results, capsys):
    folders = stored_majority(results, capsys)
    bad = folders[4]
    raw = json.loads((bad / "predictions.json").read_text())
    raw["logits"]["final"] = [[0.0, 0.0, 1.0, 0.0, 0.0] for _ in raw["logits"]["final"]]
    (bad / "predictions.json").write_text(json.dumps(raw))  # edited, and its digests removed
    (bad / "digests.json").unlink()
    assert main(["store", "verify", "--results", str(results)]) == 1
    assert "has no digests.json: not a stored job" in capsys.readouterr().out
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"quarantined {bad.name}" in captured.err and "1 jobs run, 9 already done" in \
        captured.out


def test_a_file_its_digests_do_not_cover_makes_a_job_damaged(results, capsys):
    folders = stored_majority(results, capsys)
    (folders[1] / "weights.safetensors").write_bytes(b"another fold's weights")
    assert main(["store", "verify", "--results", str(results)]) == 1
    assert "holds weights.safetensors, which its digests.json does not cover" in \
        capsys.readouterr().out


def test_verify_repair_says_only_what_it_moved(results, capsys, monkeypatch):
    folders = stored_majority(results, capsys)
    (folders[0] / "info.json").write_text("{")

    def refused(source, target):
        raise PermissionError(errno.EACCES, "Permission denied", str(source))

    monkeypatch.setattr(os, "rename", refused)
    assert main(["store", "verify", "--repair", "--results", str(results)]) == 1
    out = capsys.readouterr().out
    assert "0 of 1 damaged stored jobs quarantined" in out and "NOT moved" in out
    assert "1 stored jobs quarantined" not in out
    monkeypatch.undo()
    assert main(["store", "verify", "--repair", "--results", str(results)]) == 0
    assert "1 of 1 damaged stored jobs quarantined" in capsys.readouterr().out
    assert not folders[0].exists()


# 6. interrupts


def test_ctrl_c_during_a_run_is_one_line_and_exit_130(results, capsys, monkeypatch):
    from mer_bench.benchmark.execution import runner

    real = runner.execute_group
    calls = []

    def interrupted_at_the_fourth(jobs, config):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(jobs, config)

    monkeypatch.setattr(runner, "execute_group", interrupted_at_the_fourth)
    assert main(["run", "--methods", "majority", "--results", str(results)]) == 130
    err = capsys.readouterr().err
    assert ("interrupted: 3 jobs stored this run, 7 to go; run the same command to resume"
            in err)
    assert "Traceback" not in err
    monkeypatch.undo()
    assert main(["run", "--methods", "majority", "--results", str(results), "--quiet"]) == 0
    assert "7 jobs run, 3 already done" in capsys.readouterr().out


SLOW_PLUGIN = textwrap.dedent('''
    import os, time
    from pathlib import Path
    import numpy as np
    from mer_bench.api import Method, register_method

    class Slow(Method):
        """Notes when each job starts, then takes a while."""
        views = ("flow_28",)

        def fit_predict(self, train, test, context):
            train.views["flow_28"], test.views["flow_28"]
            folder = Path(os.environ["SLOW_STARTS"])
            (folder / f"{time.time():.3f}-{os.getpid()}").write_text(test.clip_keys[0])
            time.sleep(1.5)
            return {"final": np.zeros((len(test), context.num_classes))}

    register_method("slow_plugin", Slow)
''')


@pytest.mark.slow  # worker processes: the slow stage
def test_ctrl_c_with_workers_starts_no_job_after_the_signal(results, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    plugin = tmp_path / "slow_plugin.py"
    plugin.write_text(SLOW_PLUGIN)
    starts = tmp_path / "starts"
    starts.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "mer_bench", "run", "--methods", "slow_plugin", "--plugin",
         str(plugin), "--workers", "2", "--threads", "1", "--results", str(results), "--quiet"],
        env={**os.environ, "SLOW_STARTS": str(starts)}, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own group, to signal as a terminal does; Ctrl-C heard
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even from a `&` job
    deadline = time.time() + 120
    while len(list(starts.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert len(list(starts.iterdir())) >= 2, "the workers never started a job"
    signalled = time.time()
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole group
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    started_after = [p.name for p in starts.iterdir() if float(p.name.split("-")[0]) > signalled]
    assert started_after == []
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: ") and "to go" in lines[0]
    stored = [p for p in (results / "runs").iterdir()] if (results / "runs").is_dir() else []
    assert len(stored) < 10


# 7. messages and permissions


@pytest.mark.parametrize("command", [["run", "--methods", "majority"], ["tables"], ["report"],
                                     ["store", "verify"]])
def test_results_that_is_a_file_is_named_not_a_traceback(tmp_path, capsys, command):
    path = tmp_path / "results.txt"
    path.write_text("not a folder")
    assert main([*command, "--results", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--results {path} is a file" in err and "Traceback" not in err


def test_verify_of_a_results_folder_that_does_not_exist_says_so(tmp_path, capsys):
    assert main(["store", "verify", "--results", str(tmp_path / "nowhere")]) == 2
    assert "does not exist: no store to verify" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_a_read_only_store_with_a_damaged_job_is_read_never_written(results, tmp_path, capsys,
                                                                    monkeypatch):
    from mer_bench.benchmark.cli import results as results_commands

    folders = stored_majority(results, capsys)
    (folders[5] / "predictions.json").write_text("[")
    monkeypatch.setattr(Store, "writable", lambda self: False)  # as a read-only mount is

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", str(results / "tables"))

    monkeypatch.setattr(results_commands, "write_tables", read_only)
    assert main(["tables", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert "incomplete (9/10 folds)" in captured.out
    assert f"damaged, not shown: {folders[5]}" in captured.err
    assert "tables shown, not written" in captured.err
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "site"),
                 "--quiet"]) == 0
    assert f"damaged, not shown: {folders[5]}" in capsys.readouterr().err
    assert folders[5].is_dir() and not (results / "quarantine").exists()


def test_stored_jobs_and_exports_follow_the_users_umask(results, tmp_path, capsys):
    import torch

    old = os.umask(0o022)
    try:
        folders = stored_majority(results, capsys)
        export = write_export(tmp_path / "model", {"w": torch.zeros(1)}, {}, "card")
    finally:
        os.umask(old)
    assert stat.S_IMODE(folders[0].stat().st_mode) == 0o755
    assert stat.S_IMODE((folders[0] / "predictions.json").stat().st_mode) == 0o644
    assert stat.S_IMODE(export.stat().st_mode) == 0o755
    assert stat.S_IMODE((export / "model.safetensors").stat().st_mode) == 0o644


def test_non_finite_logits_never_reach_the_store_through_its_own_write(tmp_path):
    from mer_bench.benchmark.protocol.jobs import Job
    from mer_bench.benchmark.storage.store import NonFiniteResult, Predictions

    predictions = Predictions(("a/b/c",), ("a/b",), np.array([0]),
                              {"final": np.array([[np.inf, 0.0]])}, ("x", "y"))
    with pytest.raises(NonFiniteResult, match="1 of 1 rows non-finite"):
        Store(tmp_path).write(Job("m", "t", "a/b"), predictions, {})
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_file_of_the_users_at_a_manifests_path_is_never_overwritten(results, capsys):
    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.execution.manifests import manifest_path
    from mer_bench.benchmark.execution.planning import prepare_task

    config = RunConfig(results=results, progress=False)
    path = manifest_path("synthetic-5", config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("my notes\n")
    prepare_task("synthetic-5", config)
    assert path.read_text() == "my notes\n"
    assert f"not overwritten: {path}" in capsys.readouterr().err
    path.unlink()
    prepare_task("synthetic-5", config)  # a manifest it wrote itself is replaced in place
    assert json.loads(path.read_text())["task"] == "synthetic-5"
    prepare_task("synthetic-5", config)
    assert json.loads(path.read_text())["task"] == "synthetic-5"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
