"""Views are registered and versioned like methods: a plugin registers its own, and a view's
version is in the key of every job that reads it, so a changed view never reuses old results.

tests/golden/views.json records each shipped view's version beside a digest of its source:
a view whose code changed with its version left alone fails here. Bump the version in
datasets/__init__.py (or, where only a comment or docstring changed, UPDATE_GOLDEN=1).
"""

import hashlib
import inspect
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
from mer_bench.benchmark.protocol.registry import RegistryError
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.planning import plan
from mer_bench.benchmark.execution.runner import run_grid
from mer_bench.datasets import VIEWS, register_view
from mer_bench.datasets.views import build_view, view_version
from mer_bench.methods import METHODS, register
from mer_bench.methods.base import Method

GOLDEN = Path(__file__).parents[1] / "golden" / "views.json"
SHIPPED = ("faces", "flows", "flow_strain_28", "ststnet_release_28", "flow_28",
           "htnet_regions_28", "frame_sequence", "skd_tstsan_38")


def source_digest(name: str) -> str:
    return hashlib.sha256(inspect.getsource(VIEWS.entry(name).resolve()).encode()).hexdigest()[:16]


def test_every_shipped_view_is_registered_with_a_version_and_its_code_recorded():
    assert set(SHIPPED) <= set(VIEWS.names())
    current = {name: [view_version(name), source_digest(name)] for name in SHIPPED}
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(GOLDEN.read_text())
    stale = [name for name, (version, digest) in current.items()
             if digest != recorded[name][1] and version == recorded[name][0]]
    assert stale == [], f"views whose code changed but not their version: {stale}"


# A plugin's own view and a method reading it, registered the way a plugin file does.
def mean_motion(bundle: dict) -> np.ndarray:
    return np.asarray([np.abs(flow).mean() for flow in bundle["flows"]], dtype=np.float32)


class ByMotion(Method):
    """Predicts from the plugin view alone: class = rank of the clip's motion."""

    views = ("test_mean_motion",)

    def fit_predict(self, train, test, context):
        motion = test.views["test_mean_motion"][:, 0]
        logits = np.zeros((len(test), context.num_classes))
        logits[np.arange(len(test)), np.argsort(np.argsort(motion)) % context.num_classes] = 1
        return {"final": logits}


@pytest.fixture
def plugin():
    """The plugin's view and method registered for one test, then gone (no other test sees
    them)."""
    register_view("test_mean_motion", mean_motion, version=1)
    register("test_by_motion", ByMotion)
    yield
    del VIEWS._entries["test_mean_motion"], METHODS._entries["test_by_motion"]


def test_a_plugin_view_is_built_like_a_shipped_one(plugin, synthetic_samples):
    bundles = synthetic_samples[0]
    built = build_view("test_mean_motion", bundles)
    assert built.shape == (len(bundles), 2) and built.dtype == np.float32 and (built > 0).all()
    with pytest.raises(RegistryError, match="already registered"):
        register_view("test_mean_motion", mean_motion, version=2)


def test_a_job_key_changes_with_the_version_of_a_view_it_reads(plugin, results, monkeypatch):
    config = RunConfig(results=results, progress=False)
    grid = Grid((MethodSpec.make("test_by_motion"), MethodSpec.make("majority")), ("synthetic-5",))
    summary = run_grid(grid, config)
    assert summary.ran == 20 and not summary.failed
    before = {job.method: job for job in summary.jobs}
    assert dict(before["test_by_motion"].versions)["views"] == "test_mean_motion:1"

    entry = VIEWS.entry("test_mean_motion")
    monkeypatch.setitem(VIEWS._entries, "test_mean_motion", replace(entry, version="2"))
    jobs, _ = plan(grid, config)
    after = {job.method: job for job in jobs if job.fold == before["majority"].fold}
    assert after["test_by_motion"].key != before["test_by_motion"].key
    assert after["majority"].key == before["majority"].key  # reads no such view
    rerun = run_grid(grid, config)
    assert rerun.already_done == 10 and rerun.ran == 10  # only the view's reader runs again


def test_a_method_reading_an_unregistered_view_fails_at_planning(plugin, results, monkeypatch):
    class Misspelt(ByMotion):
        views = ("test_mean_motoin",)

    monkeypatch.setitem(METHODS._entries, "test_misspelt", replace(
        METHODS.entry("test_by_motion"), name="test_misspelt", target=Misspelt))
    grid = Grid((MethodSpec.make("test_misspelt"),), ("synthetic-5",))
    with pytest.raises(RegistryError, match="unknown view 'test_mean_motoin'.*test_mean_motion"):
        plan(grid, RunConfig(results=results, progress=False))
