"""Preparing a whole task in worker processes: killed and resumed, two runs at once on one
cache, and a frame tree built from the real CASME II coding sheet."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.planning import prepare_task
from mer_bench.datasets.bundle_cache import BundleCache
from mer_bench.datasets.preprocess import PreprocessSettings
from mer_bench.datasets.sheets import ANNOTATIONS_ENV
from mer_bench.datasets.synthetic import Synthetic
from mer_bench.datasets.tasks import CASME2_5
from mer_bench.datasets.views import build_view
from tests import dataset_trees as trees
from tests.conftest import REPO, face_frame, write_clip

PLUGIN = '''
from mer_bench.benchmark.protocol.tasks import TASKS, Source, Task
from mer_bench.datasets.tasks import CASME2_5
from mer_bench.datasets import register

register("tiny", "mer_bench.datasets.synthetic:Synthetic", name="tiny", seed=3, subjects=2,
         clips_per_subject=4)
TASKS.register("tiny-5", Task, name="tiny-5", classes=tuple(CASME2_5),
               sources=(Source("tiny", CASME2_5),))
'''
SUMMARY = re.compile(r"(\d+) prepared, (\d+) cached, (\d+) failed")


@pytest.fixture
def tiny(tmp_path):
    """(results folder, plugin file, clip count): an 8-clip synthetic task, generated here so
    that the processes under test only prepare."""
    plugin = tmp_path / "tiny_plugin.py"
    plugin.write_text(PLUGIN)
    results = tmp_path / "results"
    adapter = Synthetic(results / "data" / "tiny", name="tiny", seed=3, subjects=2,
                        clips_per_subject=4)
    return results, plugin, len(adapter.clips())


def prepare_command(results, plugin, *options) -> list[str]:
    return [sys.executable, str(REPO / "run_benchmark.py"), "prepare", "--task", "tiny-5",
            "--plugin", str(plugin), "--results", str(results), *options]


def bundle_files(results):
    return sorted((results / "cache" / "bundles").glob("*/*/*.npz"))


def counts(stdout: str) -> tuple[int, int, int]:
    found = SUMMARY.search(stdout)
    assert found, stdout
    return tuple(int(v) for v in found.groups())


def assert_whole(files, domains=2):
    for file in files:
        with np.load(file) as bundle:  # a truncated file would fail here
            assert bundle["faces"].shape == (3, 128, 128)
            assert bundle["flows"].shape == (domains, 128, 128, 2)
            assert np.isfinite(bundle["flows"]).all()


@pytest.mark.slow
def test_prepare_killed_midway_resumes_with_every_bundle_whole(tiny):
    results, plugin, total = tiny
    killed = subprocess.Popen(prepare_command(results, plugin, "--prepare-workers", "2"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while len(bundle_files(results)) < 2:
            assert killed.poll() is None, "prepare ended before it could be killed"
            assert time.monotonic() < deadline, "no bundle appeared in 120 s"
            time.sleep(0.02)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # the main process and its workers
        killed.wait()
    made = len(bundle_files(results))
    assert 2 <= made < total
    assert_whole(bundle_files(results))
    # Temp files of killed writers: an old one is swept, a young one (maybe a live writer's) kept.
    folder = bundle_files(results)[0].parent
    stale, young = folder / "stale.tmp", folder / "young.tmp"
    stale.write_bytes(b"PK\x03\x04 half a bundle")
    young.write_bytes(b"PK\x03\x04")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    done = subprocess.run(prepare_command(results, plugin, "--prepare-workers", "2"),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    prepared, cached, failed = counts(done.stdout)
    assert (cached, failed) == (made, 0) and prepared == total - made
    assert "median" in done.stdout and "clips/s" in done.stdout and "2 workers" in done.stdout
    assert "preparing clips" in done.stderr  # the progress bar
    assert not stale.exists() and young.exists()
    young.unlink()
    assert len(bundle_files(results)) == total
    assert_whole(bundle_files(results))


@pytest.mark.slow
def test_two_processes_preparing_one_cache_at_once_both_succeed(tiny):
    results, plugin, total = tiny
    # `--workers` is accepted for prepare, as `--prepare-workers`.
    runs = [subprocess.Popen(prepare_command(results, plugin, option, "1", "--quiet"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for option in ("--workers", "--prepare-workers")]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr
        prepared, cached, failed = counts(stdout)
        assert prepared + cached == total and failed == 0 and "1 worker;" in stdout
    files = bundle_files(results)
    assert len(files) == total
    assert not list((results / "cache" / "bundles").glob("*/*/*.tmp"))
    assert_whole(files)
    # Whichever process wrote a bundle last, it is the bundle this process makes.
    adapter = Synthetic(results / "data" / "tiny", name="tiny", seed=3, subjects=2,
                        clips_per_subject=4)
    cache = BundleCache(results / "cache" / "bundles")
    fresh = BundleCache(results.parent / "fresh")
    for clip in adapter.clips()[:2]:
        key, made = fresh.ensure(clip)
        assert made and cache.path(key).is_file()
        ours, theirs = fresh.load(key), cache.load(key)
        assert set(ours) == set(theirs)
        assert all(np.array_equal(ours[name], theirs[name]) for name in ours)


def shortest_rows(sheet, count: int = 3) -> pd.DataFrame:
    """The sheet's `count` shortest clips (onset..offset) of distinct casme2-5 classes."""
    table = pd.read_excel(sheet, dtype=str)
    columns = ["OnsetFrame", "ApexFrame", "OffsetFrame"]
    table = table[table[columns].apply(lambda c: c.str.strip().str.isdigit()).all(axis=1)].copy()
    table[columns] = table[columns].astype(int)
    table["emotion"] = table["Estimated Emotion"].str.strip().str.lower()
    table = table[table.emotion.isin(CASME2_5) & (table.OnsetFrame < table.ApexFrame)
                  & (table.ApexFrame < table.OffsetFrame)]
    table["span"] = table.OffsetFrame - table.OnsetFrame
    return table.sort_values(["span", "Subject"]).drop_duplicates("emotion").head(count)


def rise(n: int, onset: int, apex: int, offset: int) -> float:
    """0 at onset, 1 at the apex (a quarter sine), linearly back to 0 at offset. A Python
    float: face_frame's remap needs float32 maps, which a NumPy float64 shift would spoil."""
    if n <= apex:
        return float(np.sin(np.pi / 2 * (n - onset) / (apex - onset)))
    return float((offset - n) / (offset - apex))


@pytest.mark.slow  # worker processes: the slow stage
def test_real_casme2_sheet_tree_prepares_in_workers_with_two_and_five_domains(tmp_path,
                                                                               monkeypatch):
    sheet = trees.real(trees.CASME2_2014)
    monkeypatch.setenv(ANNOTATIONS_ENV, str(trees.annotations_dir()))
    root = tmp_path / "casme2"
    chosen = []
    for index, (_, row) in enumerate(shortest_rows(sheet).iterrows()):
        subject, onset, apex, offset = (f"sub{int(row.Subject):02d}", row.OnsetFrame,
                                        row.ApexFrame, row.OffsetFrame)
        amplitude = 2.0 + 0.25 * index  # distinct frames: bundles are keyed by content
        write_clip(root, subject, row.Filename.strip(),
                   {n: face_frame(amplitude * rise(n, onset, apex, offset))
                    for n in range(onset, offset + 1)})
        chosen.append(f"casme2/{subject}/{row.Filename.strip()}")
    results = tmp_path / "results"
    bundles = {}
    for domains in (5, 2):
        config = RunConfig(results=results, data_roots=(("casme2", str(root)),),
                           preprocess=PreprocessSettings(domains=domains), progress=False)
        prepared = prepare_task("casme2-5", config, workers=2)
        report = prepared.report
        # Only the chosen clips have frames; every other clip of the sheet fails, by name.
        assert report.prepared == 3 and sorted(report.keys) == sorted(chosen)
        assert len(report.failed) > 200
        assert all("does not exist" in reason for reason in report.failed.values())
        assert [s.clip.key for s in prepared.data.samples] == [k for k in report.keys]
        bundles[domains] = [config.cache.load(report.keys[k]) for k in chosen]
        view = build_view("skd_tstsan_38", bundles[domains])
        assert view.shape == (3, 34 + 2 * domains, 48, 48)
        again = prepare_task("casme2-5", config, workers=1).report
        assert again.cached == 3 and again.prepared == 0 and again.keys == report.keys
    for five, two in zip(bundles[5], bundles[2]):
        assert five["frames"].shape == (6, 128, 128)
        assert np.array_equal(five["faces"], two["faces"])
        # Lower face moves up to the apex and back: the first flows up, the last ones down.
        lower = [flow[90:120, :, 1].mean() for flow in five["flows"]]
        assert lower[0] < -0.05 and lower[-1] > 0.02 and two["flows"][0][90:120, :, 1].mean() < -0.3
