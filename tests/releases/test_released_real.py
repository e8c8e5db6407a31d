"""The authors' released composite flows and STSTNet weights (../shared/released), read as
first-class inputs: same clips and folds as composite-3, the released weights scored through
the runner giving the authors' logged result, the MATLAB log scored by `score`.

Skipped, naming what is missing, where the released folders are absent.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.planning import prepare_task
from mer_bench.benchmark.execution.runner import run_grid
from mer_bench.benchmark.stats.scoring import score_file
from mer_bench.benchmark.stats.runs import run_scores
from mer_bench.benchmark.protocol.tasks import TASKS, build_task, load_task
from mer_bench.datasets.sheets import ANNOTATIONS_ENV, name_key
from mer_bench.datasets.views import build_view
from mer_bench.methods.ststnet import STSTNet, STSTNetRelease
from tests import dataset_trees as trees
from tests.conftest import REPO
from tests.released import FLOWS, WEIGHTS, matlab_log_rows, python_log, released


@pytest.fixture(scope="module")
def flows():
    return released(FLOWS)


@pytest.fixture(scope="module")
def weights():
    return released(WEIGHTS)


@pytest.fixture(scope="module")
def flow_results(tmp_path_factory, flows):
    """A results folder with the 442 released images prepared once."""
    results = tmp_path_factory.mktemp("released") / "results"
    prepare_task("composite-3-flows", _config(results, flows))
    return results


def _config(results, flows, **more) -> RunConfig:
    return RunConfig(results=results, data_roots=(("composite_flows", str(flows)),),
                     progress=False, **more)


def _flow_task(flows):
    task = TASKS.build("composite-3-flows")
    return load_task(task, {"composite_flows": flows})


def test_released_clips_are_the_megc_list_with_its_labels_and_68_folds(flows):
    data = _flow_task(flows)
    assert len(data.samples) == 442 and not data.excluded
    assert len(data.subjects()) == 68
    listed = {}
    with open(trees.real(trees.MEGC_LIST)) as file:
        for dataset, subject, clip, code in csv.reader(file):
            listed[(dataset, name_key(subject), name_key(clip))] = int(code)
    ours = {(s.clip.dataset, name_key(s.clip.subject), name_key(s.clip.clip)): s.label
            for s in data.samples}
    assert ours == listed
    assert data.data_label == "released flows"
    assert Counter(s.clip.dataset for s in data.samples) == {"casme2": 145, "samm": 133,
                                                             "smic": 164}


def test_released_keys_and_folds_equal_composite_3_from_frame_trees(flows, tmp_path,
                                                                    monkeypatch):
    """The same clip keys and (dataset, subject) fold keys whichever source is read."""
    monkeypatch.setenv(ANNOTATIONS_ENV, str(trees.annotations_dir()))
    root = tmp_path / "data"
    trees.build_casme2(root / "casme2", trees.real(trees.CASME2_2014))
    trees.build_samm(root / "samm", trees.real(trees.SAMM_SHEET))
    trees.build_smic(root / "smic", trees.real(trees.MEGC_LIST), trees.real(trees.SMIC_APEX))
    config = RunConfig(default_data_root=str(root))
    task = TASKS.build("composite-3")
    frames = load_task(task, {d: config.root_of(d) for d in task.datasets})
    released_data = _flow_task(flows)
    assert sorted(s.clip.key for s in frames.samples) == \
        sorted(s.clip.key for s in released_data.samples)
    assert frames.subjects() == released_data.subjects()
    labels = {s.clip.key: s.label for s in frames.samples}
    assert all(labels[s.clip.key] == s.label for s in released_data.samples)
    # Holdout-database folds too: each clip in the same dataset fold from either source.
    lodo = load_task(build_task("composite-3-flows@lodo"), {"composite_flows": flows})
    assert lodo.folds() == ["casme2", "samm", "smic"]
    assert {s.clip.key: k for s, k in zip(lodo.samples, lodo.fold_keys())} == \
        {s.clip.key: s.clip.dataset for s in frames.samples}


def test_channel_order_is_strain_v_u_as_opencv_reads_the_images(flows):
    """The first channel OpenCV reads is the strain (non-negative: a dark background), and the
    strain of (u, v) = (channel 2, channel 1) explains it better than the swapped pair."""
    images = sorted((flows / "STSNet_whole_norm_u_v_os").glob("*.png"))[::10]
    wins = darker = 0
    for path in images:
        image = cv2.imread(str(path)).astype(np.float64)
        medians = np.median(image, axis=(0, 1))
        darker += medians[0] < min(medians[1], medians[2])
        fits = []
        for u, v in ((image[..., 2], image[..., 1]), (image[..., 1], image[..., 2])):
            du_dy, du_dx = np.gradient(u)
            dv_dy, dv_dx = np.gradient(v)
            design = np.stack([du_dx**2 + 0.5 * du_dy**2, dv_dy**2 + 0.5 * dv_dx**2,
                               du_dy * dv_dx, np.ones_like(u)], -1).reshape(-1, 4)
            target = (image[..., 0] ** 2).ravel()
            residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
            fits.append((residual ** 2).sum())
        wins += fits[0] < fits[1]
    assert darker >= 0.95 * len(images)
    assert wins > 0.6 * len(images)


def test_views_of_released_images_and_frame_views_refused(flows, flow_results):
    config = _config(flow_results, flows)
    prepared = prepare_task("composite-3-flows", config)
    sample = prepared.data.samples[0]
    bundle = config.cache.load(prepared.bundle_keys[sample.clip.key])
    image = cv2.imread(sample.clip.image)
    release = build_view("ststnet_release_28", [bundle])[0]
    assert np.array_equal(release, image.transpose(2, 0, 1).astype(np.float32))
    flow_strain = build_view("flow_strain_28", [bundle])[0]
    assert np.allclose(flow_strain[0], image[..., 2] / 255.0)  # u
    assert np.allclose(flow_strain[2], image[..., 0] / 255.0)  # strain
    assert build_view("htnet_regions_28", [bundle]).shape == (1, 3, 28, 28)
    with pytest.raises(ValueError, match="released flow images, which hold no frames"):
        build_view("skd_tstsan_38", [bundle])


def test_a_method_that_needs_frames_is_refused_before_any_work(flows, flow_results):
    grid = Grid((MethodSpec.make("skd_tstsan", budget=1),), ("composite-3-flows",))
    with pytest.raises(ValueError, match="reads skd_tstsan_38, which task composite-3-flows "
                                         "cannot serve.*no frames"):
        run_grid(grid, _config(flow_results, flows))


def test_released_state_dicts_load_by_name_with_weights_only(weights):
    model = STSTNetRelease(3)
    state = torch.load(weights / "sub01.pth", map_location="cpu", weights_only=True)
    assert set(state) == set(model.state_dict())
    method = STSTNet()
    method.load_weights(model, str(weights / "sub01.pth"))
    assert torch.equal(model.conv2.weight, state["conv2.weight"])
    wrapped = {f"module.{k}": v for k, v in state.items()}  # a DataParallel save
    assert set(method.released_state(wrapped)) == set(state)
    with pytest.raises(ValueError, match="does not fit STSTNet.*missing"):
        STSTNet(form="paper").load_weights(STSTNet(form="paper").build_model(3),
                                           str(weights / "sub01.pth"))


@pytest.mark.slow
def test_released_weights_through_the_runner_give_the_authors_logged_result(
        flows, weights, flow_results):
    """68 released STSTNets, each on its own held-out subject: the authors' UF1 and UAR to 4
    decimals, each subject's (truth, prediction) pairs as logged, the parts scored."""
    config = _config(flow_results, flows, weights_dirs=((WEIGHTS, str(weights)),))
    grid = Grid((MethodSpec.make("ststnet", weights=WEIGHTS),), ("composite-3-flows",),
                seeds=(0, 1))
    summary = run_grid(grid, config)
    assert summary.ran == 68 and not summary.failed  # one seed: nothing to seed
    runs = {r.task: r for r in run_scores(list(config.store.records()))}
    logged, (uf1, uar) = python_log(weights / "STSTNet_python_logfile.txt")
    composite = runs["composite-3-flows"]
    assert composite.method == f"ststnet[weights={WEIGHTS}]"
    assert round(composite.per_seed[0].uf1, 4) == uf1 == 0.7209
    assert round(composite.per_seed[0].uar, 4) == uar == 0.725
    assert {"composite-3-flows[casme2]", "composite-3-flows[samm]",
            "composite-3-flows[smic]"} <= set(runs)
    pairs: dict[str, Counter] = {}
    for record in config.store.records():
        subject = record.job.fold.split("/")[1]
        predicted = record.predictions.logits["final"].argmax(1)
        pairs[subject] = Counter(zip(record.predictions.labels.tolist(), predicted.tolist()))
    truth = {}
    text = (weights / "STSTNet_python_logfile.txt").read_text().split("Subject:")[1:]
    for block in text:
        subject = block.split()[0]
        lines = block.splitlines()
        truth[name_key(subject)] = [int(v) for v in
                                    lines[2].split(":", 1)[1].strip(" []").split(",")]
    for subject, counts in pairs.items():
        key = name_key(subject)
        logged_pairs = Counter(zip(truth[key], logged[next(s for s in logged
                                                           if name_key(s) == key)]))
        assert counts == logged_pairs, subject


def test_a_weights_folder_missing_a_subject_or_with_a_stranger_is_refused(
        flows, weights, flow_results, tmp_path):
    partial = tmp_path / WEIGHTS
    partial.mkdir()
    for path in sorted(weights.glob("*.pth"))[1:]:
        (partial / path.name).symlink_to(path)
    (partial / "sub99.pth").symlink_to(weights / "sub01.pth")
    config = _config(flow_results, flows, weights_dirs=((WEIGHTS, str(partial)),))
    grid = Grid((MethodSpec.make("ststnet", weights=WEIGHTS),), ("composite-3-flows",))
    with pytest.raises(ValueError, match=r"no file for \['samm/006'\]; no fold for "
                                         r"\['sub99.pth'\]"):
        run_grid(grid, config)


def test_score_reproduces_the_papers_stststnet_uf1_from_the_matlab_log(flows, weights,
                                                                      tmp_path):
    """STSTNet's MATLAB log, clip by clip: its pooled UF1 is the paper's 73.53 (SKD-TSTSAN's
    Table 1 quotes it); its UAR under MEGC's definition is 71.86, not the 76.05 reported."""
    rows = matlab_log_rows(weights / "STSTNet_logfile.txt")

    def scored(rows, extra=()):
        path = tmp_path / "matlab.csv"
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["dataset", "subject", "clip", "predicted", "label"])
            writer.writerows((d, s, c, p, t) for d, s, c, t, p in rows)
            writer.writerows(extra)
        return score_file(path, _flow_task(flows))

    report = scored(rows)
    assert round(report.scores.uf1, 4) == 0.7353
    assert round(report.scores.uar, 4) == 0.7186
    confusion = np.array(report.scores.confusion)  # what 76.05 is: the mean precision
    assert round(float(np.mean(np.diag(confusion) / confusion.sum(0))), 4) == 0.7605
    assert not report.label_disagreements and not report.missing and not report.unmatched
    assert set(report.parts) == {"casme2", "samm", "smic"}
    assert round(report.parts["casme2"].uf1, 4) == 0.8382  # STSTNet's paper: 0.8382
    report = scored(rows[:-1], [["casme2", "sub99", "EP99_99", 0, 0]])
    assert report.unmatched == ["casme2/sub99/EP99_99"]
    assert len(report.missing) == 1 and report.missing[0].endswith(rows[-1][2])
    assert report.folds_complete == report.folds - 1


def test_score_command_prints_the_parts_and_exits_nonzero_on_missing_clips(flows, weights,
                                                                           tmp_path):
    rows = matlab_log_rows(weights / "STSTNet_logfile.txt")
    path = tmp_path / "log.csv"
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["clip", "predicted"])
        writer.writerows((f"{d}/{s}/{c}", ["negative", "positive", "surprise"][p])
                         for d, s, c, _, p in rows)
    command = [sys.executable, str(REPO / "run_benchmark.py"), "score", "--task",
               "composite-3-flows", "--data", f"composite_flows={flows}", "--predictions",
               str(path), "--results", str(tmp_path / "results")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "composite-3-flows: UF1 0.7353" in done.stdout
    assert "composite-3-flows[smic]: UF1" in done.stdout
    path.write_text("\n".join(path.read_text().splitlines()[:-4]) + "\n")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "4 clip(s) missing from the file" in done.stdout


def test_the_report_shows_the_tsne_of_the_released_ststnet_on_the_real_composite(
        flows, weights, flow_results):
    from mer_bench.benchmark.cli import main

    assert main(["run", "--methods", "ststnet", "--tasks", "composite-3-flows", "--data",
                 f"composite_flows={flows}", "--weights-dir", f"ststnet_weights={weights}",
                 "--keep", "features", "--results", str(flow_results), "--quiet"]) == 0
    assert main(["report", "--results", str(flow_results), "--quiet"]) == 0
    report = flow_results / "report"
    (page,) = (report / "runs").glob("ststnet_weights=*composite-3-flows*.html")
    text = page.read_text()
    assert "t-SNE of the inputs to fc" in text and "released flows" in text
    assert "SYNTHETIC" not in text
    image = report / "figures" / (page.stem + "_tsne_fc.png")
    assert image.is_file() and cv2.imread(str(image)) is not None
    assert "72.09" in (report / "index.html").read_text()  # the released weights' UF1
