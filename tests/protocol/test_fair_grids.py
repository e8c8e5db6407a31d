"""The paper-scale grids follow the paper where the tables claim it (CK+ transfer, CAS(ME)^3's
batch 32) and give every learned baseline a budget-matched row; recipe fields set per task
reach only that task's jobs."""

from dataclasses import replace

import pytest

from mer_bench.benchmark.protocol.grids import grid_path
from mer_bench.benchmark.execution.one_job import job_method
from mer_bench.benchmark.protocol.grids import load_grid
from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.execution.pretraining import pretraining_job
from mer_bench.methods import FLAGSHIP, METHODS
from mer_bench.methods.training import TorchMethod

RECIPE_GRID = """
tasks = ["casme3-3", "casme2-5"]
[[methods]]
name = "skd_tstsan"
budget = 20
recipe = { casme3-3 = { batch_size = 32 } }
[profiles.quick]
tasks = { casme3-3 = "synthetic-5" }
"""


def test_a_task_recipe_reaches_only_that_tasks_jobs(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(RECIPE_GRID)
    grid = load_grid(path)
    jobs = grid.jobs({"casme3-3": ["casme3/spNO.1"], "casme2-5": ["casme2/sub01"]},
                     {(grid.methods[0], t): {"method": "1"} for t in grid.tasks})
    by_task = {j.task: j for j in jobs}
    assert by_task["casme3-3"].recipe == (("batch_size", 32),)
    assert by_task["casme2-5"].recipe == ()
    assert job_method(by_task["casme3-3"]).recipe.batch_size == 32
    assert job_method(by_task["casme2-5"]).recipe.batch_size == 16
    assert by_task["casme3-3"].run_label == "skd_tstsan[recipe.batch_size=32]"
    assert '"recipe"' not in by_task["casme2-5"].canonical()  # old keys stay as they were
    again = Job.from_canonical(by_task["casme3-3"].canonical())
    assert again == by_task["casme3-3"]
    assert again.key != replace(again, recipe=(("batch_size", 16),)).key


def test_a_profile_leaves_a_tasks_recipe_behind_with_the_task(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(RECIPE_GRID)
    quick = load_grid(path, "quick")
    assert quick.tasks == ("synthetic-5", "casme2-5") and quick.methods[0].recipes == ()


def test_a_recipe_for_a_task_outside_the_grid_is_refused(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(RECIPE_GRID.replace("casme3-3 = { batch", "casme3-7 = { batch"))
    with pytest.raises(ValueError, match=r"recipe for \['casme3-7'\], not tasks of the grid"):
        load_grid(path)


def test_recipe_fields_a_method_cannot_take_are_refused():
    with pytest.raises(ValueError, match="LBPTOPSVM has no training recipe"):
        METHODS.build("lbp_top_svm").with_recipe({"batch_size": 32})
    with pytest.raises(ValueError, match=r"\['epochs'\] cannot be set per task"):
        METHODS.build("skd_tstsan").with_recipe({"epochs": 3})
    assert METHODS.build("lbp_top_svm").with_recipe({}) is not None


def test_the_pretraining_checkpoint_takes_none_of_the_folds_recipe():
    job = Job("skd_tstsan", "casme3-3", "casme3/spNO.1", pretrain="ckplus-7",
              pretrain_budget=10, recipe=(("batch_size", 32),),
              versions=(("method", "1"), ("preprocess", "p")))
    assert pretraining_job(job, "digest").recipe == ()


@pytest.mark.parametrize("name", ["table1", "table2", "table3", "table4"])
def test_comparison_grids_transfer_from_ck_plus_beside_a_row_without(name):
    grid = load_grid(grid_path(name))
    flagship = [s for s in grid.methods if s.name == FLAGSHIP]
    assert grid.methods[0] in flagship  # the reference of the table's p-values
    assert {(s.pretrain, s.pretrain_budget, s.budget) for s in flagship} == {
        ("ckplus-7", 10000, 20000), (None, None, 20000)}


@pytest.mark.parametrize("name", ["table1", "table2", "table3", "table4", "honesty"])
def test_every_learned_baseline_has_a_budget_matched_row(name):
    grid = load_grid(grid_path(name))
    budget = next(s.budget for s in grid.methods if s.name == FLAGSHIP)
    learned = {s.name.split(".")[0] for s in grid.methods
               if isinstance(METHODS.build(s.name, **dict(s.options)), TorchMethod)}
    matched = {s.name.split(".")[0] for s in grid.methods if s.budget == budget}
    assert learned and learned <= matched


def test_cas_me_3_rows_train_at_the_papers_batch_32():
    for name in ("table4", "table7"):
        grid = load_grid(grid_path(name))
        for spec in (s for s in grid.methods if s.name == FLAGSHIP):
            casme3 = [t for t in grid.tasks if t.startswith("casme3")]
            assert casme3 and all(spec.recipe_for(t) == (("batch_size", 32),) for t in casme3)
            assert all(spec.recipe_for(t) == () for t in grid.tasks if t not in casme3)


def test_htnet_release_takes_its_main_py_schedule():
    recipe = METHODS.build("htnet.release").recipe
    assert (recipe.epochs, recipe.batch_size, recipe.lr, recipe.order,
            recipe.class_weighted) == (800, 256, 5e-5, "by_class", False)
    assert METHODS.build("htnet").recipe.epochs is None
    with pytest.raises(ValueError, match="HTNet schedule 'paper'"):
        METHODS.build("htnet", schedule="paper")


def test_the_honesty_grid_runs_each_learned_method_under_every_rule():
    grid = load_grid(grid_path("honesty"))
    rules: dict[str, set[str]] = {}
    for spec in grid.methods:
        rules.setdefault(spec.name, set()).add(spec.selection)
    assert len(rules) >= 5 and all(r == {"last", "val", "oracle"} for r in rules.values())
