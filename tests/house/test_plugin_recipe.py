"""The torch plugin of docs/plugins.md, as written: its recipe is its default budget and
training settings, and --budget / --recipe change them for a run of its own."""

from __future__ import annotations

import re

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.storage.store import Store
from tests.conftest import REPO

PAGE = REPO / "docs" / "plugins.md"


def _example() -> str:
    section = PAGE.read_text().split("## A torch method and its recipe", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_the_documented_torch_plugin_trains_by_its_recipe_and_takes_run_settings(
        results, tmp_path, capsys):
    plugin = tmp_path / "tiny_flow_plugin.py"
    plugin.write_text(_example())
    common = ["--plugin", str(plugin), "--methods", "tiny_flow", "--results", str(results)]
    assert main(["run", "--plan", *common]) == 0
    plan = capsys.readouterr().out
    assert re.search(r"^tiny_flow on synthetic-5 seed 0 +10 +0 +10 .*measured step x 300$",
                     plan, flags=re.M), plan  # the recipe's iterations are its budget

    assert main(["list", "methods", "--details", "--plugin", str(plugin)]) == 0, \
        capsys.readouterr().err
    details = capsys.readouterr().out.split("\n\n")
    block = next(b for b in details if b.startswith("tiny_flow"))
    assert "view flow_strain_28: 3 x 28 x 28" in block
    assert "default budget: 300 iterations, batch 16, lr 5e-04" in block

    assert main(["run", *common, "--budget", "3", "--recipe", "lr=0.01", "--recipe",
                 "batch_size=8", "--folds", "1", "--quiet"]) == 0
    (record,) = Store(results).records()
    assert record.job.run_label == "tiny_flow[recipe.batch_size=8,recipe.lr=0.01]"
    assert record.job.budget == 3
    assert record.info["display"]["budget"] == "3 iterations, batch 8, lr 1e-02"
    assert len(Store(results).curves(record.job)) == 3  # three steps trained
