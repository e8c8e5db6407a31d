"""`mer-bench check-plugin FILE`: the method contract run on a plugin's methods, each broken
rule named; every registered method passes it (test_every_method.py)."""

import textwrap

from mer_bench.benchmark.cli import main
from mer_bench.methods import METHODS

PLUGIN = textwrap.dedent('''
    import numpy as np
    from mer_bench.api import Method, register_method

    class Good(Method):
        views = ("flow_28",)
        def fit_predict(self, train, test, context):
            means = train.views["flow_28"].reshape(len(train), -1).mean(1)
            rng = np.random.default_rng(context.seed)
            logits = rng.normal(size=(len(test), context.num_classes)) + means.mean()
            return {"final": logits}

    class Unseeded(Good):
        def fit_predict(self, train, test, context):
            train.views["flow_28"], test.views["flow_28"]
            return {"final": np.random.default_rng().normal(size=(len(test), context.num_classes))}

    class PeeksAtTheTestLabels(Good):
        def fit_predict(self, train, test, context):
            train.views["flow_28"], test.views["flow_28"]
            logits = np.zeros((len(test), context.num_classes))
            logits[np.arange(len(test)), test.labels] = 1
            return {"final": logits}

    class WrongShape(Good):
        def fit_predict(self, train, test, context):
            train.views["flow_28"], test.views["flow_28"]
            return {"final": np.zeros((len(test), context.num_classes + 1))}

    class ReadsAnUndeclaredView(Good):
        def fit_predict(self, train, test, context):
            train.views["flow_28"], test.views["flow_28"], test.views["faces"]
            return {"final": np.zeros((len(test), context.num_classes))}

    class Misspelt(Good):
        views = ("flow28",)

    for name, cls in [("good", Good), ("unseeded", Unseeded), ("peeks", PeeksAtTheTestLabels),
                      ("wrong_shape", WrongShape), ("undeclared", ReadsAnUndeclaredView),
                      ("misspelt", Misspelt)]:
        register_method("contract_" + name, cls)
''')
NAMES = ("good", "unseeded", "peeks", "wrong_shape", "undeclared", "misspelt")


def test_check_plugin_passes_a_good_method_and_names_every_broken_rule(results, tmp_path,
                                                                        capsys):
    plugin = tmp_path / "contract_plugin.py"
    plugin.write_text(PLUGIN)
    try:
        code = main(["check-plugin", str(plugin), "--results", str(results)])
        out = capsys.readouterr().out
        rows = {}
        for line in out.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 4 and cells[0].startswith("contract_"):
                rows.setdefault(cells[0], {})[cells[1]] = cells[2]
        assert code == 1
        assert set(rows["contract_good"].values()) == {"ok"} and len(rows["contract_good"]) == 6
        assert rows["contract_unseeded"]["the same seed gives the same logits"] == "FAILED"
        assert rows["contract_peeks"] == {"views registered": "ok",
                                          "predicts without the held-out labels": "FAILED"}
        assert rows["contract_wrong_shape"]["logits per head, final first"] == "FAILED"
        assert rows["contract_undeclared"] == {"views registered": "ok",
                                               "reads exactly its declared views": "FAILED"}
        assert rows["contract_misspelt"] == {"views registered": "FAILED"}
        assert "flow28" in out and "24 of 30" not in out

        assert main(["check-plugin", str(plugin), "--methods", "contract_good",
                     "--results", str(results)]) == 0
        assert "6 of 6 checks passed" in capsys.readouterr().out
    finally:
        for name in NAMES:
            METHODS._entries.pop(f"contract_{name}", None)


def test_check_plugin_of_a_file_that_registers_nothing_says_so(results, tmp_path, capsys):
    empty = tmp_path / "nothing.py"
    empty.write_text("x = 1\n")
    assert main(["check-plugin", str(empty), "--results", str(results)]) == 2
    assert "registers no new method" in capsys.readouterr().err
