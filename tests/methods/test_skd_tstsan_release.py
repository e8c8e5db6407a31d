"""The SKD-TSTSAN release's checkpoint layout read by the harness: the names and shapes of its
model's state_dict (tests/fixtures/skd_tstsan_release_names.json, listed from the release's
all_model.py) map onto the harness's model both ways, tensor for tensor; `--weights-dir`
evaluates per-subject models saved as the release saves them (`<subject>/<subject>.pth`), and
`--start` starts from a checkpoint in its names with its transfer rule (the classifiers, its
keys containing "fc", left out). The files are made here; the release's own are not shipped."""

from __future__ import annotations

import json
import os

import pytest
import torch

from mer_bench.benchmark.cli import main
from mer_bench.methods import METHODS
from mer_bench.methods.skd_tstsan_release import from_release, harness_name
from tests.conftest import REPO

NAMES = json.loads((REPO / "tests" / "fixtures" / "skd_tstsan_release_names.json")
                   .read_text())["tensors"]
CLASSES = 5  # the synthetic default's, as the release's CASME II models have


def release_state(model: torch.nn.Module, prefix: str = "") -> dict:
    """`model`'s tensors under the release's names (and order), as the release saves them
    (any class count: the names are the same)."""
    own = model.state_dict()
    return {prefix + name: own[harness_name(name)].clone() for name, _, _ in NAMES}


def test_every_release_tensor_lands_on_a_harness_tensor_of_its_shape_and_back(tmp_path):
    method = METHODS.build("skd_tstsan")
    own = method.build_model(CLASSES).state_dict()
    generator = torch.Generator().manual_seed(0)
    release = {name: (torch.randn(shape, generator=generator) if dtype == "float32"
                      else torch.tensor(7)) for name, shape, dtype in NAMES}
    mapped = from_release(release)
    assert len(release) == len(own) == 255
    assert set(mapped) == set(own)  # every harness tensor filled, none left over
    for name, value in release.items():  # release -> harness, each tensor itself
        assert mapped[harness_name(name)] is value
        assert tuple(own[harness_name(name)].shape) == tuple(value.shape), name
    model = method.build_model(CLASSES)
    torch.save({f"module.{k}": v for k, v in release.items()}, tmp_path / "sub01.pth")
    method.load_weights(model, str(tmp_path / "sub01.pth"))  # DataParallel's prefix too
    for name, value in model.state_dict().items():  # harness -> release: all landed
        assert torch.equal(value, mapped[name]), name
    assert harness_name("AC1_conv2_T.net.weight") == "auxiliary.0.T.body.1.conv.weight"
    assert harness_name("ECA4.conv.weight") == "backbones.L.block3.0.eca.conv.weight"
    assert harness_name("Aug_Encoder_S.motion_resblks.1.cba_2.conv2d.weight") == \
        "magnifiers.S.encoder.layers.10.body.2.weight"


def test_a_file_that_does_not_fit_names_the_keys(tmp_path):
    method = METHODS.build("skd_tstsan")
    state = release_state(method.build_model(CLASSES))
    del state["bn3_S.running_var"]
    state["conv9_L.weight"] = torch.zeros(1)
    state["fc2.weight"] = torch.zeros(3, 384)  # a 3-class model into a 5-class one
    path = tmp_path / "sub01.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as error:
        method.load_weights(method.build_model(CLASSES), str(path))
    text = str(error.value)
    assert str(path) in text and "backbones.S.block2.1.bn.running_var" in text
    assert "conv9_L.weight" in text and "classifier.linear.weight" in text
    no_mag = METHODS.build("skd_tstsan", mag=False)
    torch.save(release_state(method.build_model(CLASSES)), path)
    with pytest.raises(ValueError, match="unexpected .*magnifiers.L.encoder"):
        no_mag.load_weights(no_mag.build_model(CLASSES), str(path))


def test_weights_dir_evaluates_per_subject_models_saved_the_releases_way(results, tmp_path,
                                                                        capsys):
    torch.manual_seed(0)
    model = METHODS.build("skd_tstsan").build_model(CLASSES).eval()
    release, harness = tmp_path / "exp", tmp_path / "ours"
    harness.mkdir()
    torch.save(release_state(model, prefix="module."), tmp_path / "release.pth")
    torch.save(model.state_dict(), tmp_path / "ours.pth")
    for n in range(1, 11):  # the same model for every subject: linked, not copied
        (release / f"sub{n:02d}").mkdir(parents=True)
        os.link(tmp_path / "release.pth", release / f"sub{n:02d}" / f"sub{n:02d}.pth")
        os.link(tmp_path / "ours.pth", harness / f"sub{n:02d}.pth")
    logits = {}
    for name, folder in (("release", release), ("ours", harness)):
        assert main(["run", "--methods", "skd_tstsan", "--weights-dir", f"{name}={folder}",
                     "--results", str(results), "--quiet"]) == 0
        assert "10 jobs run" in capsys.readouterr().out
        logits[name] = {json.loads((f / "job.json").read_text())["fold"]:
                        json.loads((f / "predictions.json").read_text())["logits"]
                        for f in (results / "runs").iterdir()
                        if json.loads((f / "job.json").read_text()).get("weights") == name}
    assert len(logits["release"]) == 10
    assert logits["release"] == logits["ours"]  # the release's names give the same outputs


def test_start_takes_a_release_checkpoint_without_its_classifiers(results, tmp_path, capsys):
    method = METHODS.build("skd_tstsan")
    torch.manual_seed(1)
    pretrained = method.build_model(7)  # CK+'s 7 classes: the release drops its "fc" keys
    path = tmp_path / "SKD-TSTSAN.pth"
    torch.save(release_state(pretrained), path)
    torch.manual_seed(2)
    model = method.build_model(CLASSES)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    method.start_from(model, str(path))
    for name, value in model.state_dict().items():
        if name.startswith(method.final_layers):
            assert torch.equal(value, fresh[name]), name  # re-initialised, as the release
        else:
            assert torch.equal(value, pretrained.state_dict()[name]), name
    assert main(["run", "--methods", "skd_tstsan", "--start", str(path), "--budget", "1",
                 "--folds", "1", "--recipe", "batch_size=4", "--results", str(results),
                 "--quiet"]) == 0
    assert "skd_tstsan[start=SKD-TSTSAN.pth" in capsys.readouterr().out
    (tmp_path / "notes.txt").write_text("not weights")
    assert main(["run", "--methods", "skd_tstsan", "--start", str(tmp_path / "notes.txt"),
                 "--results", str(results), "--quiet"]) == 2
    assert "a file to start from is a torch checkpoint" in capsys.readouterr().err
