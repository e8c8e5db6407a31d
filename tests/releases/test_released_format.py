"""Released flow images and per-subject weights in their real formats, on fixtures made here
(tiny images, freshly initialised networks): the adapter's keys and rules, the views, the
release's schedule, weight matching, and released weights scored through the runner."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from mer_bench.benchmark.protocol.grids import Grid, MethodSpec

from mer_bench.benchmark.protocol.jobs import Job
from mer_bench.benchmark.execution.released_weights import match_weights
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.runner import run_grid
from mer_bench.benchmark.stats.runs import run_scores
from mer_bench.benchmark.protocol.tasks import TASKS, load_task
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.preprocess import (PreprocessSettings, bundle_key, make_bundle,
                                           read_frames)
from mer_bench.datasets.released_flows import (COMPANION_MISSING, ENCODING_VERSION,
                                               IMAGE_MISSING, NOT_LABELLED, ReleasedFlows)
from mer_bench.datasets.views import build_view
from mer_bench.methods.ststnet import STSTNet, STSTNetRelease
from mer_bench.methods.batches import pass_batches
from mer_bench.methods.training import Recipe
from tests.released import ROWS, write_release

def test_clips_are_keyed_as_the_frame_adapters_key_them(tmp_path):
    adapter = ReleasedFlows(write_release(tmp_path))
    keys = [c.key for c in adapter.clips()]
    assert keys == ["casme2/sub01/EP02_01f", "casme2/sub01/EP19_05f", "casme2/sub02/EP01_11f",
                    "samm/006/006_1_2", "samm/007/007_3_1", "smic/s1/s1_ne_01",
                    "smic/s1/s1_po_02", "smic/s2/s2_sur_01"]
    assert adapter.clips()[0].image.endswith("sub01_EP02_01f .png")
    assert adapter.clips()[0].row == 2  # the CSV line, header = 1
    version = adapter.annotation_version()
    assert version.endswith(ENCODING_VERSION)
    with open(tmp_path / "combined_3_class2_for_optical_flow.csv", "a") as file:
        file.write("casme2,sub03,EP01_2,2,,,\n")
    assert ReleasedFlows(tmp_path).annotation_version() != version


def test_missing_and_unlabelled_images_are_noted_by_name_and_duplicates_refused(tmp_path):
    root = write_release(tmp_path / "a")
    (root / "STSNet_whole_norm_u_v_os" / "sub02_EP01_11f .png").rename(
        root / "STSNet_whole_norm_u_v_os" / "sub02_EP01_11f.png")
    data = load_task(TASKS.build("composite-3-flows"), {"composite_flows": root})
    assert len(data.samples) == 7
    reasons = dict(data.excluded)
    assert reasons["casme2/sub02/EP01_11f"] == IMAGE_MISSING
    assert reasons["composite_flows/sub02_EP01_11f.png"] == NOT_LABELLED
    duplicate = write_release(tmp_path / "b", ROWS + [ROWS[3]])
    with pytest.raises(DatasetError, match=r"line 10 repeats line 5 \(samm 006 006_1_2\)"):
        ReleasedFlows(duplicate).clips()
    (duplicate / "other.csv").write_text("x\n")
    with pytest.raises(DatasetError, match="expected one label CSV in .*found 2"):
        ReleasedFlows(duplicate)


def test_released_bundle_views_and_the_release_view_from_frames(tmp_path, face_clip):
    data = load_task(TASKS.build("composite-3-flows"),
                     {"composite_flows": write_release(tmp_path)})
    clip = data.samples[0].clip
    settings = PreprocessSettings()
    bundle = make_bundle(clip, read_frames(clip, settings), settings)
    image = cv2.imread(clip.image)
    assert np.array_equal(build_view("ststnet_release_28", [bundle])[0],
                          image.transpose(2, 0, 1))
    assert np.allclose(build_view("flow_28", [bundle])[0], image[..., [2, 1]].transpose(2, 0, 1)
                       / 255.0)
    for frames_view in ("faces", "flows", "frame_sequence", "skd_tstsan_38"):
        with pytest.raises(ValueError, match="hold no frames; it serves ststnet_release_28"):
            build_view(frames_view, [bundle])
    own = make_bundle(face_clip, read_frames(face_clip, settings), settings)
    release = build_view("ststnet_release_28", [own])[0]
    raw = build_view("flow_strain_28", [own])[0]
    assert np.array_equal(release, np.rint(release))
    assert [release[c].min() for c in range(3)] == [0, 0, 0]
    assert [release[c].max() for c in range(3)] == [255, 255, 255]
    strain = raw[2]
    assert np.allclose(release[0], np.rint((strain - strain.min()) / np.ptp(strain) * 255))


def test_four_images_a_clip_each_served_as_its_view_and_a_missing_one_drops_the_clip(tmp_path):
    """CausalNet's layout: `<sub>_<clip> .png` and `_1`, `_2`, `_3` beside it."""
    root = write_release(tmp_path / "causalnet", suffixes=("_1", "_2", "_3"))
    folder = root / "STSNet_whole_norm_u_v_os"
    (folder / "sub02_EP01_11f_2 .png").unlink()
    data = load_task(TASKS.build("composite-3-causalnet"), {"causalnet_flows": root})
    assert len(data.samples) == 7
    reasons = dict(data.excluded)
    assert reasons == {"casme2/sub02/EP01_11f": COMPANION_MISSING}  # the others: not unlabelled
    clip = data.samples[0].clip
    settings = PreprocessSettings()
    frames = read_frames(clip, settings)
    bundle = make_bundle(clip, frames, settings)
    for view, suffix in (("ststnet_release_28", ""), ("released_apex_offset_28", "_1"),
                         ("released_onset_apex_direction_28", "_2"),
                         ("released_apex_offset_direction_28", "_3")):
        image = cv2.imread(str(folder / f"sub01_EP02_01f{suffix} .png"))
        assert np.array_equal(build_view(view, [bundle])[0], image.transpose(2, 0, 1)), view
    # Every image is in the bundle's key: another direction map is another bundle.
    cv2.imwrite(str(folder / "sub01_EP02_01f_3 .png"), np.zeros((28, 28, 3), np.uint8))
    assert bundle_key(clip, read_frames(clip, settings), settings) != \
        bundle_key(clip, frames, settings)
    # The one-image source keeps its keys and refuses the companion views, saying why.
    single = load_task(TASKS.build("composite-3-flows"),
                       {"composite_flows": write_release(tmp_path / "htnet")})
    one = single.samples[0].clip
    assert one.companions == () and list(read_frames(one, settings)) == ["image"]
    with pytest.raises(ValueError, match="apex offset direction image, which this source does "
                                         "not ship"):
        build_view("released_apex_offset_direction_28",
                   [make_bundle(one, read_frames(one, settings), settings)])
    assert "released_apex_offset_28" in ReleasedFlows(root, companions=(
        ("apex_offset_flow", "{sub}_{clip}_1 .png"),)).views
    assert "released_apex_offset_28" not in ReleasedFlows(root).views


def test_release_schedule_passes_in_order_with_a_partial_last_batch():
    batches = [b.tolist() for b in pass_batches(np.array([4, 0, 3, 1, 2]), 2, 7)]
    assert batches == [[4, 0], [3, 1], [2], [4, 0], [3, 1], [2], [4, 0]]
    recipe = Recipe(batch_size=256, epochs=800)
    assert recipe.steps(431) == 1600 and Recipe(iterations=400).steps(431) == 400
    method = STSTNet()
    assert method.recipe.lr == 5e-5 and method.recipe.epochs == 800
    assert not method.recipe.class_weighted
    assert method.budget_text(None) == ("800 epochs in order, batch 256, lr 5e-05, "
                                        "unweighted CE")


def test_release_training_order_is_by_class_and_unweighted(monkeypatch):
    """The fit takes batches of the training samples sorted by class, in passes, and the
    loss sees no class weights."""
    seen, weights_seen = [], []
    method = STSTNet()
    method.recipe = Recipe(batch_size=3, lr=5e-5, epochs=2, order="by_class",
                           class_weighted=False)

    def loss(model, inputs, targets, weights):
        seen.append(targets.tolist())
        weights_seen.append(weights)
        return model(inputs).sum() * 0

    monkeypatch.setattr(method, "loss", loss)
    labels = np.array([2, 0, 1, 0, 2])
    model = method.build_model(3)
    method.fit(model, torch.zeros(5, 3, 28, 28), labels, 3, None, 0, torch.device("cpu"))
    assert seen == [[0, 0, 1], [2, 2], [0, 0, 1], [2, 2]]
    assert weights_seen == [None] * 4


def test_ststnet_forms_sizes_and_outputs():
    release, paper = STSTNet().build_model(3), STSTNet(form="paper").build_model(5)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(release) == 3 * 27 + 3 + 5 * 27 + 5 + 8 * 27 + 8 + 2 * 16 + 400 * 3 + 3 == 1683
    assert count(paper) == 2453
    assert release(torch.rand(2, 3, 28, 28) * 255).shape == (2, 3)
    assert list(release.state_dict())[:2] == ["conv1.weight", "conv1.bias"]
    assert STSTNet().views == ("ststnet_release_28",)
    assert STSTNet(form="paper").views == ("flow_strain_28",)
    with pytest.raises(ValueError, match="schedule 'fast'"):
        STSTNet(schedule="fast")


def test_weight_files_are_matched_by_subject_name(tmp_path):
    folds = ["casme2/sub01", "samm/006", "smic/s1"]
    for name in ("sub01.pth", "006.pth", "s01.pth"):
        (tmp_path / name).write_bytes(b"")
    assert {f: p.name for f, p in match_weights(tmp_path, folds).items()} == {
        "casme2/sub01": "sub01.pth", "samm/006": "006.pth", "smic/s1": "s01.pth"}
    with pytest.raises(ValueError, match=r"no file for \['x/7'\]; no fold for none"):
        match_weights(tmp_path, folds + ["x/7"])
    (tmp_path / "samm_006.pth").write_bytes(b"")
    with pytest.raises(ValueError, match="both match fold samm/006"):
        match_weights(tmp_path, folds)
    with pytest.raises(ValueError, match="is not a folder"):
        match_weights(tmp_path / "nowhere", folds)


def test_a_job_without_weights_keeps_its_key_and_with_weights_says_so():
    plain = Job("ststnet", "t", "d/s")
    assert "weights" not in plain.canonical()
    with_weights = Job("ststnet", "t", "d/s", weights="ststnet_weights")
    assert with_weights.key != plain.key
    assert with_weights.run_label == "ststnet[weights=ststnet_weights]"


@pytest.mark.slow
def test_released_weights_are_scored_through_the_runner_as_their_own_outputs(tmp_path):
    """Per-subject state_dicts saved as the release saves them are evaluated on their own
    fold with nothing trained: the stored logits are the networks' own, and the run is
    scored on the composite and on each dataset's part."""
    root = write_release(tmp_path / "flows")
    folder = tmp_path / "my_weights"
    folder.mkdir()
    nets = {}
    for index, subject in enumerate(("sub01", "sub02", "006", "007", "s01", "s02")):
        torch.manual_seed(index)
        nets[subject] = STSTNetRelease(3).eval()
        torch.save(nets[subject].state_dict(), folder / f"{subject}.pth")
    config = RunConfig(results=tmp_path / "results", progress=False,
                       data_roots=(("composite_flows", str(root)),),
                       weights_dirs=(("my_weights", str(folder)),))
    summary = run_grid(Grid((MethodSpec.make("ststnet", weights="my_weights"),),
                            ("composite-3-flows",)), config)
    assert summary.ran == 6 and not summary.failed
    records = {r.job.fold: r for r in config.store.records()}
    record = records["smic/s1"]
    images = [cv2.imread(str(root / "STSNet_whole_norm_u_v_os" / f"s01_{c} .png"))
              for c in ("s01_ne_01", "s01_po_02")]
    batch = torch.tensor(np.stack(images).transpose(0, 3, 1, 2), dtype=torch.float32)
    with torch.no_grad():
        expected = nets["s01"](batch).numpy()
    assert np.allclose(record.predictions.logits["final"], expected, atol=1e-5)
    tasks = {r.task for r in run_scores(list(config.store.records()))}
    assert tasks == {"composite-3-flows", "composite-3-flows[casme2]",
                     "composite-3-flows[samm]", "composite-3-flows[smic]"}
    (folder / "s02.pth").unlink()
    config = RunConfig(results=tmp_path / "results2", progress=False,
                       data_roots=(("composite_flows", str(root)),),
                       weights_dirs=(("my_weights", str(folder)),))
    with pytest.raises(ValueError, match=r"no file for \['smic/s2'\]"):
        run_grid(Grid((MethodSpec.make("ststnet", weights="my_weights"),),
                      ("composite-3-flows",)), config)


def test_epoch_schedules_and_released_weights_are_trained_fold_by_fold():
    from mer_bench.benchmark.execution.one_job import fold_groups

    def run(method, **more):
        return [Job(method, "synthetic-5", f"synthetic/sub{k:02d}", **more) for k in range(4)]

    groups = fold_groups(run("ststnet") + run("ststnet.shared")
                         + run("ststnet.shared", weights="w"), 4)
    assert sorted(len(g) for g in groups) == [1] * 8 + [4]
    assert {g[0].method for g in groups if len(g) == 4} == {"ststnet.shared"}


def test_weights_dir_on_the_command_line_is_named_by_its_folder_or_explicitly():
    from mer_bench.benchmark.cli import parse
    from mer_bench.benchmark.cli.options import config_of as _config

    args = parse(["run", "--weights-dir", "/x/STSTNet_Weights",
                  "--weights-dir", "ststnet_weights=/y/w"])
    assert _config(args).weights_dirs == (("STSTNet_Weights", "/x/STSTNet_Weights"),
                                          ("ststnet_weights", "/y/w"))
    with pytest.raises(ValueError, match="give their folder with --weights-dir"):
        _config(args).weights_folder("other")
