"""Job keys and grids."""

import pytest

from mer_bench.benchmark.protocol.grids import Grid, MethodSpec, load_grid

from mer_bench.benchmark.protocol.jobs import Job


def test_key_is_stable_and_changes_with_anything_that_changes_a_result():
    job = Job("ststnet", "synthetic-5", "synthetic/sub01", options=(("width", 8),),
              versions=(("method", "1"), ("data", "abc")))
    same = Job.from_canonical(job.canonical())
    assert same == job and same.key == job.key
    variants = [
        Job("ststnet", "synthetic-5", "synthetic/sub02", options=job.options, versions=job.versions),
        Job("ststnet", "synthetic-5", "synthetic/sub01", seed=1, options=job.options,
            versions=job.versions),
        Job("ststnet", "synthetic-5", "synthetic/sub01", budget=10, options=job.options,
            versions=job.versions),
        Job("ststnet", "synthetic-5", "synthetic/sub01", options=(("width", 9),),
            versions=job.versions),
        Job("ststnet", "synthetic-5", "synthetic/sub01", options=job.options,
            versions=(("method", "2"), ("data", "abc"))),
    ]
    assert len({job.key, *(v.key for v in variants)}) == 6
    assert len({job.rng_seed, *(v.rng_seed for v in variants)}) == 6


def test_the_selection_rule_changes_the_key_but_not_the_seed():
    jobs = [Job("skd_tstsan", "casme2-5", "casme2/sub01", selection=rule, versions=(("m", "1"),))
            for rule in ("last", "val", "oracle")]
    assert len({j.key for j in jobs}) == 3 and len({j.rng_seed for j in jobs}) == 1


def test_grid_file_expands_to_one_job_per_method_task_seed_fold(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('tasks = ["t"]\nseeds = [0, 1]\n[[methods]]\nname = "a"\nbudget = 5\n'
                    '[[methods]]\nname = "b"\noptions = {depth = 2}\n')
    grid = load_grid(path)
    assert grid.methods == (MethodSpec("a", (), 5), MethodSpec("b", (("depth", 2),), None))
    jobs = grid.jobs({"t": ["s1", "s2", "s3"]},
                     {(spec, "t"): {"method": "1"} for spec in grid.methods})
    assert len(jobs) == 2 * 2 * 3 and len({j.key for j in jobs}) == 12


def test_a_job_without_domains_keeps_the_key_it_had_before_domains_existed():
    job = Job("ststnet", "synthetic-5", "synthetic/sub01", versions=(("method", "1"),))
    assert '"domains"' not in job.canonical()
    five = Job("ststnet", "synthetic-5", "synthetic/sub01", versions=(("method", "1"),), domains=5)
    assert five.key != job.key and Job.from_canonical(five.canonical()) == five
    assert five.run_label == "ststnet[domains=5]"


GRID = """
tasks = ["casme2-5", "mmew-6"]
budget = 20000
[[methods]]
name = "skd_tstsan"
selection = "oracle"
[[methods]]
name = "skd_tstsan"
options = { segments = 5 }
domains = 5
pretrain = "ckplus-7"
pretrain_budget = 10000
[[methods]]
name = "ststnet"
budget = 400
[profiles.quick]
tasks = { casme2-5 = "synthetic-5", mmew-6 = "synthetic-5", ckplus-7 = "synthetic_macro-5" }
budget = 30
pretrain_budget = 50
"""


def test_a_grid_profile_maps_tasks_and_caps_budgets(tmp_path):
    path = tmp_path / "table.toml"
    path.write_text(GRID)
    paper, quick = load_grid(path), load_grid(path, profile="quick")
    assert paper.tasks == ("casme2-5", "mmew-6") and quick.tasks == ("synthetic-5",)
    assert [m.budget for m in paper.methods] == [20000, 20000, 400]
    assert [m.budget for m in quick.methods] == [30, 30, 30]
    assert quick.methods[1].pretrain == "synthetic_macro-5"
    assert quick.methods[1].pretrain_budget == 50 and quick.methods[1].domains == 5
    assert quick.methods[0].pretrain_budget is None  # no pretraining: its job key unchanged
    jobs = quick.jobs({"synthetic-5": ["s1"]}, {(m, "synthetic-5"): {} for m in quick.methods})
    assert [j.selection for j in jobs] == ["oracle", "last", "last"]
    assert jobs[1].domains == 5 and jobs[0].domains is None
    with pytest.raises(ValueError, match="no profile 'gpu'"):
        load_grid(path, profile="gpu")


def test_a_profile_leaves_out_a_task_mapped_to_nothing_and_a_method_only_it_ran(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('tasks = ["a-3", "b-3[x]"]\n[[methods]]\nname = "m"\n'
                    '[[methods]]\nname = "n"\ntasks = ["b-3"]\n'
                    '[profiles.flows]\ntasks = { "a-3" = "f-3", "b-3[x]" = "" }\n')
    full, flows = load_grid(path), load_grid(path, profile="flows")
    assert full.tasks == ("a-3", "b-3[x]") and [m.name for m in full.methods] == ["m", "n"]
    assert flows.tasks == ("f-3",) and flows.runnable_tasks == ("f-3",)
    assert [m.name for m in flows.methods] == ["m"]  # n ran on b-3 only: not on a stand-in


def test_a_method_key_typo_in_a_grid_is_refused(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('tasks = ["t"]\n[[methods]]\nname = "a"\nbudgett = 5\n')
    with pytest.raises(ValueError, match="unknown keys \\['budgett'\\]"):
        load_grid(path)


def test_grid_file_with_an_unknown_key_is_refused(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('tasks = ["t"]\nmethod = "typo"\n[[methods]]\nname = "a"\n')
    with pytest.raises(ValueError, match="unknown keys \\['method'\\]"):
        load_grid(path)


def test_the_quick_grid_ships_with_the_package():
    from importlib import resources

    grid = load_grid(resources.files("benchmark") / "grids" / "quick.toml")
    assert isinstance(grid, Grid) and grid.tasks == ("synthetic-5",)
    assert [m.name for m in grid.methods] == ["majority", "stratified", "ststnet", "off_apexnet",
                                              "lbp_top_svm"]


def test_the_comparison_grid_runs_every_registered_method_but_the_ablation_rows():
    from mer_bench.benchmark.protocol.grids import grid_path
    from mer_bench.methods import METHODS

    def built_in(name: str) -> bool:  # not a plugin another test of this process registered
        target = METHODS.entry(name).target
        return (target if isinstance(target, str) else target.__module__).startswith("mer_bench.")

    grid = load_grid(grid_path("comparison"))
    plugins = {n for n in METHODS.names() if not n.startswith("skd_tstsan.") and built_in(n)}
    assert len(plugins) >= 8 and {m.name for m in grid.methods} == plugins


def test_the_ablation_grid_holds_every_row_of_table5():
    from mer_bench.benchmark.protocol.grids import grid_path
    from tests.methods.test_skd_tstsan import TABLE5

    grid = load_grid(grid_path("ablation"))
    assert sorted(m.name for m in grid.methods) == sorted(TABLE5)
    assert len({m.budget for m in grid.methods}) == 1  # one budget: a fair comparison


def test_an_unknown_grid_name_lists_the_shipped_ones():
    from mer_bench.benchmark.protocol.grids import grid_path

    shipped = ("shipped grids: ablation, comparison, cross_dataset, fig9, gpu_scale, honesty, "
               "key_frames, preprocessing, quick, table1")
    with pytest.raises(ValueError, match=shipped):
        grid_path("ablaton")
