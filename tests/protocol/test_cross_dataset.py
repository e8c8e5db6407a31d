"""Cross-dataset folds (`NAME@lodo`): one dataset left out a fold, no subject on both sides,
every clip tested exactly once; the CDMER pair and the holdout-database folds on real sheets
are in tests/datasets/test_datasets_real.py."""

import json

import numpy as np
import pytest

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.folds import fold_of
from mer_bench.benchmark.protocol.cards import task_definition
from mer_bench.benchmark.protocol.tasks import PROTOCOLS, Task, build_task, load_task
from mer_bench.datasets.errors import DatasetError


def _load(name, results):
    config = RunConfig(results=results, progress=False)
    task = build_task(name)
    return load_task(task, {d: config.root_of(d) for d in task.datasets})


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tmp_path_factory.mktemp("lodo") / "results"


@pytest.fixture(scope="module")
def three(results):
    return _load("synthetic-3db-5@lodo", results)


def assert_folds_partition(data):
    """Every fold tests exactly its key's clips and trains on no clip of a tested subject."""
    keys = data.fold_keys()
    subjects = np.array([s.clip.subject_key for s in data.samples])
    tested = np.zeros(len(keys), int)
    for key in data.folds():
        fold = fold_of(keys, key)
        tested[fold.test] += 1
        assert not set(subjects[fold.train]) & set(subjects[fold.test])
        assert len(fold.train) + len(fold.test) == len(keys)
    assert (tested == 1).all()


def test_lodo_folds_are_the_datasets_each_tested_once(three, results):
    assert three.folds() == ["synthetic", "synthetic_b", "synthetic_c"]
    assert_folds_partition(three)
    for dataset in three.folds():
        fold = fold_of(three.fold_keys(), dataset)
        assert {three.samples[i].clip.dataset for i in fold.test} == {dataset}
        assert dataset not in {three.samples[i].clip.dataset for i in fold.train}
    # The same clips as the LOSO task of the same name, folded otherwise.
    loso = _load("synthetic-3db-5", results)
    assert [s.clip.key for s in three.samples] == [s.clip.key for s in loso.samples]
    assert len(loso.folds()) == 18 and loso.folds() == loso.subjects()


def test_loso_is_unchanged_by_the_protocol_field(three):
    loso = build_task("synthetic-3db-5")
    assert loso.protocol == "loso"
    assert {loso.fold_key(s.clip) for s in three.samples} == \
        {s.clip.subject_key for s in three.samples}


def test_one_dataset_cannot_be_left_out(_prepared_synthetic):
    with pytest.raises(DatasetError, match=r"synthetic-5@lodo: leaving one dataset out needs "
                                           r"clips of two datasets.*\['synthetic'\]"):
        _load("synthetic-5@lodo", _prepared_synthetic)  # its generated set, read


def test_suffixes_compose_and_name_their_task():
    task = build_task("cdmer-3@lodo+drop-empty")
    assert (task.name, task.protocol, task.drop_empty) == ("cdmer-3@lodo+drop-empty", "lodo",
                                                           True)
    assert build_task("cdmer-3").protocol == "loso"
    assert task_definition("cdmer-3@lodo[smic]")["folds"] == PROTOCOLS["lodo"]
    assert task_definition("cdmer-3")["folds"] == PROTOCOLS["loso"]
    with pytest.raises(ValueError, match="protocol 'kfold'"):
        Task("x", ("a",), (), protocol="kfold")


@pytest.mark.slow
def test_a_lodo_run_stores_one_job_a_dataset_with_its_clips(results):
    """(On a copy of the prepared default: only the two smaller datasets are prepared here.)"""
    from mer_bench.benchmark.cli import main

    assert main(["--results", str(results), "run", "--methods", "off_apexnet", "--tasks",
                 "synthetic-3db-5@lodo", "--budget", "3", "--quiet"]) == 0
    config = RunConfig(results=results)
    records = list(config.store.records())
    assert sorted(r.job.fold for r in records) == ["synthetic", "synthetic_b", "synthetic_c"]
    for record in records:
        keys = record.predictions.clips
        assert {k.split("/")[0] for k in keys} == {record.job.fold}
    tested = [k for r in records for k in r.predictions.clips]
    assert len(tested) == len(set(tested)) == 174
    card = json.loads(json.dumps(task_definition(records[0].job.task)))
    assert card["folds"].startswith("leave one dataset out")
