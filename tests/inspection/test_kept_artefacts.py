"""`run --keep weights,features`: each job keeps its final weights (safetensors) and its test
samples' features at each final layer, covered by its digests; off by default; a stored job
without them runs again when they are asked for."""

import json

import numpy as np
import torch
from safetensors.torch import load_file

from mer_bench.benchmark.cli import main
from mer_bench.methods import METHODS

ONE_SMALL_FOLD = ("--folds", "1", "--recipe", "batch_size=4")  # what is kept, not training


def test_kept_weights_give_the_stored_logits_and_features_are_the_final_layers_input(results,
                                                                                     capsys):
    common = ["--methods", "ststnet.shared", "--budget", "3", "--results", str(results),
              "--quiet"]
    assert main(["run", *common]) == 0
    folders = sorted((results / "runs").iterdir())
    assert not any((f / "weights.safetensors").exists() for f in folders)  # off by default
    assert main(["run", *common, "--keep", "weights,features"]) == 0
    assert "10 jobs run, 0 already done" in capsys.readouterr().out  # they lacked them
    folder = sorted((results / "runs").iterdir())[0]
    info = json.loads((folder / "info.json").read_text())
    assert info["artefacts_bytes"]["weights.safetensors"] > 1000
    predictions = json.loads((folder / "predictions.json").read_text())
    features = np.load(folder / "features.npz")
    method = METHODS.build("ststnet.shared")
    model = method.build_model(5)
    model.load_state_dict(load_file(folder / "weights.safetensors"))
    model.eval()
    assert list(features) == ["fc"]
    assert features["fc"].shape[0] == len(predictions["clips"])
    with torch.no_grad():  # the classifier on the kept features gives the stored logits
        logits = model.fc(torch.from_numpy(features["fc"])).numpy()
    assert np.allclose(logits, np.array(predictions["logits"]["final"]), atol=1e-5)
    assert main(["store", "verify", "--results", str(results)]) == 0
    assert main(["run", *common, "--keep", "weights"]) == 0
    assert "0 jobs run, 10 already done" in capsys.readouterr().out


def test_every_head_of_skd_tstsan_has_its_features(results):
    assert main(["run", "--methods", "skd_tstsan", "--budget", "2", *ONE_SMALL_FOLD, "--keep",
                 "features", "--results", str(results), "--quiet"]) == 0
    folder = next((results / "runs").iterdir())
    features = np.load(folder / "features.npz")
    assert sorted(features) == ["auxiliary_classifiers.0", "auxiliary_classifiers.1",
                                "classifier"]


def test_tsne_draws_each_kept_layer_of_each_run(results, capsys):
    assert main(["run", "--methods", "ststnet.shared", "--budget", "3", "--keep", "features",
                 "--results", str(results), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["tsne", "--results", str(results)]) == 0
    drawn = capsys.readouterr().out.split()
    assert len(drawn) == 1 and drawn[0].endswith("_fc.png")
    assert (results / "tables" / "tsne").is_dir() and len(list(
        (results / "tables" / "tsne").glob("*.png"))) == 1
    assert main(["tsne", "--results", str(results), "--task", "casme2-5"]) == 0
    assert "no stored run kept features" in capsys.readouterr().out


def test_figures_draws_curves_tsne_and_gradcam_of_a_run_that_kept_both(results, capsys):
    assert main(["run", "--methods", "skd_tstsan", "--budget", "2", *ONE_SMALL_FOLD, "--keep",
                 "weights,features", "--results", str(results), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["figures", "--results", str(results), "--clips", "2", "--quiet"]) == 0
    drawn = capsys.readouterr().out.split()
    kinds = {path.split("/tables/")[1].split("/")[0] for path in drawn}
    assert kinds == {"curves", "tsne", "gradcam"}
    assert len([p for p in drawn if "/tsne/" in p]) == 3  # one per head's final layer
