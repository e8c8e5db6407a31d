"""`export` then `predict`: a stored fold's kept weights, exported and run on one of its test
clips as a user would give it (its frames folder, and an .mp4 made from it), give the
probabilities the stored prediction of that clip gives; a model trained on every subject
exports with its card; a bad clip is refused with an error that names it."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.storage.model_files import read_export, write_export
from mer_bench.benchmark.tools.prediction import predict_source, softmax
from mer_bench.benchmark.storage.store import Store
from mer_bench.datasets.errors import ClipError, FaceNotFound
from mer_bench.datasets.user_clip import folder_clip, frame_numbers

FOLD = "synthetic/sub03"
SMALL = ("--recipe", "batch_size=4")  # small steps: what is tested is the export, not training
RUN = "skd_tstsan[recipe.batch_size=4]"  # the run label of that recipe


def annotated(results, clip_key: str) -> tuple:
    """(frames folder, onset, apex, offset) of a synthetic clip, from its coding sheet."""
    _, subject, name = clip_key.split("/")
    sheet = pd.read_excel(results / "data" / "synthetic" / "CASME2-coding-synthetic.xlsx")
    row = sheet[(sheet.Subject.astype(str) == subject[3:].lstrip("0")) & (sheet.Filename == name)]
    assert len(row) == 1
    row = row.iloc[0]
    return (results / "data" / "synthetic" / subject / name, int(row.OnsetFrame),
            int(row.ApexFrame), int(row.OffsetFrame))


def grey_video(folder, onset: int, offset: int, path) -> None:
    """The frames onset..offset as the pipeline sees them (grey), losslessly in an .mp4
    (PNG codec): decoding gives those frames back exactly."""
    frames = [cv2.imread(str(folder / f"img{n}.jpg"), cv2.IMREAD_GRAYSCALE)
              for n in range(onset, offset + 1)]
    height, width = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"png "), 30, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    assert len(decoded) == len(frames) and all((a == b).all() for a, b in zip(frames, decoded))


@pytest.fixture(scope="module")
def exported_fold(tmp_path_factory, _prepared_synthetic):
    import shutil

    results = tmp_path_factory.mktemp("export") / "results"
    shutil.copytree(_prepared_synthetic, results)
    assert main(["run", "--methods", "skd_tstsan", "--budget", "2", *SMALL, "--keep", "weights",
                 "--results", str(results), "--quiet"]) == 0
    assert main(["export", str(results / "model"), "--method", RUN, "--fold", FOLD,
                 "--results", str(results)]) == 0
    record = next(r for r in Store(results).records() if r.job.fold == FOLD)
    return results, record


def test_a_fold_exported_predicts_its_stored_probabilities_from_frames_and_mp4(exported_fold,
                                                                              tmp_path, capsys):
    results, record = exported_fold
    exported = read_export(results / "model")
    assert exported.config["source"]["fold"] == FOLD
    assert exported.classes == record.predictions.classes
    index = 1
    clip_key = record.predictions.clips[index]
    folder, onset, apex, offset = annotated(results, clip_key)
    stored = {head: softmax(logits[index]) for head, logits in record.predictions.logits.items()}
    assert sorted(stored) == ["ac1", "ac2", "final"]
    from_frames = predict_source(exported, folder, onset, apex, offset)
    video = tmp_path / "clip.mp4"
    grey_video(folder, onset, offset, video)
    from_video = predict_source(exported, video, 0, apex - onset, offset - onset)
    for prediction in (from_frames, from_video):
        assert set(prediction.probabilities) == set(stored)
        for head, expected in stored.items():
            assert np.allclose(prediction.probabilities[head], expected, atol=1e-5), head
    # the command line writes the picture and the same probabilities as JSON
    out = tmp_path / "seen.png"
    assert main(["predict", str(video), "--weights", str(results / "model"), "--apex",
                 str(apex - onset), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"predicted: {from_video.predicted()}" in printed
    assert cv2.imread(str(out)) is not None
    written = json.loads(out.with_suffix(".json").read_text())
    assert np.allclose(written["probabilities"]["final"], stored["final"], atol=1e-5)
    # its own picture is replaced by a second predict; a user's file of the JSON's name is not
    argv = ["predict", str(video), "--weights", str(results / "model"), "--apex",
            str(apex - onset), "--out", str(out)]
    assert main(argv) == 0
    out.with_suffix(".json").write_text('{"my": "results"}')
    assert main(argv) == 2
    assert "was not written by mer-bench" in capsys.readouterr().err
    assert out.with_suffix(".json").read_text() == '{"my": "results"}'


def test_the_model_card_quotes_the_runs_loso_score(exported_fold):
    results, _ = exported_fold
    card = (results / "model" / "MODEL_CARD.md").read_text()
    config = json.loads((results / "model" / "config.json").read_text())
    uf1 = config["expected"]["scores"]["uf1"]
    table = pd.read_csv(results / "tables" / "comparison.csv")
    assert uf1["mean"] == pytest.approx(float(table["uf1_mean"].iloc[0]), abs=0.01)
    assert f"| uf1 | {uf1['mean']:.2f} |" in card and "synthetic" in card
    assert FOLD in config["source"]["kind"]
    assert "Protocol card" in card and "licensed per user" in card


def test_a_model_trained_on_every_subject_exports_and_predicts(exported_fold, tmp_path,
                                                               capsys):
    results, record = exported_fold
    folder = tmp_path / "every"
    assert main(["export", str(folder), "--method", "skd_tstsan", "--budget", "2", *SMALL,
                 "--results", str(results)]) == 0
    assert "training: 100%" in capsys.readouterr().err  # its one long fit shows a bar
    exported = read_export(folder)
    assert exported.config["source"]["fold"] == "all subjects"
    assert "all 10 subjects" in exported.config["source"]["kind"]
    # the LOSO run of the same method, budget and data is the one quoted
    assert exported.config["expected"] == read_export(results / "model").config["expected"]
    from safetensors.torch import load_file

    every, fold = load_file(folder / "model.safetensors"), load_file(
        results / "model" / "model.safetensors")
    assert every.keys() == fold.keys()
    assert any(not np.allclose(every[k].numpy(), fold[k].numpy()) for k in every)
    clip_folder, onset, apex, offset = annotated(results, record.predictions.clips[0])
    prediction = predict_source(exported, clip_folder, onset, apex, offset)
    assert all(np.isclose(p.sum(), 1.0) for p in prediction.probabilities.values())


def test_auto_apex_finds_the_annotated_apex_within_a_frame(exported_fold):
    results, record = exported_fold
    folder, onset, apex, offset = annotated(results, record.predictions.clips[0])
    prediction = predict_source(read_export(results / "model"), folder, onset, "auto", offset)
    assert abs(prediction.clip.apex - apex) <= 1
    assert sorted(prediction.magnitudes) == list(range(onset, offset + 1))
    assert prediction.magnitudes[onset] == pytest.approx(0.0, abs=0.05)


def test_bad_clips_are_refused_by_name(exported_fold, tmp_path, capsys):
    results, _ = exported_fold
    exported = read_export(results / "model")
    blank = tmp_path / "blank"
    blank.mkdir()
    for n in range(1, 4):
        cv2.imwrite(str(blank / f"img{n}.png"), np.full((240, 320), 128, np.uint8))
    with pytest.raises(FaceNotFound, match="no face found by dlib on the first frame"):
        predict_source(exported, blank, apex=2)
    single = tmp_path / "single"
    single.mkdir()
    cv2.imwrite(str(single / "img1.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(ClipError, match="too few frames: 1"):
        folder_clip(single, apex=1)
    with pytest.raises(ClipError, match="apex frame 9 is not in the folder"):
        folder_clip(blank, apex=9)
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"not a video at all" * 10)
    assert main(["predict", str(garbage), "--weights", str(results / "model"), "--apex",
                 "auto"]) == 2
    assert "broken.mp4: unreadable video" in capsys.readouterr().err
    assert main(["predict", str(blank), "--weights", str(results / "model")]) == 2
    assert "no apex given" in capsys.readouterr().err
    assert main(["predict", str(blank), "--weights", str(tmp_path), "--apex", "2"]) == 2
    assert "is not an exported model: it lacks config.json, model.safetensors" in \
        capsys.readouterr().err


def test_frames_named_two_ways_are_not_one_clip(tmp_path):
    for name in ("img1.jpg", "img2.jpg", "frame3.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8), np.uint8))
    with pytest.raises(ClipError, match="frames named in more than one way"):
        frame_numbers(tmp_path)
    padded = tmp_path / "padded {x}"
    padded.mkdir()
    for n in (7, 8, 10):
        cv2.imwrite(str(padded / f"f_{n:04d}.png"), np.zeros((8, 8), np.uint8))
    template, numbers = frame_numbers(padded)
    assert sorted(numbers) == [7, 8, 10]
    assert template.format(n=10) == str(padded / "f_0010.png")


def test_an_export_never_overwrites_a_folder_that_is_not_one(tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(ValueError, match="is not a model export written by mer-bench.*thesis.tex"):
        write_export(other, {}, {}, "")
    assert (other / "thesis.tex").read_text() == "keep me"


def test_folds_start_from_an_export_and_rerun_when_it_changes(exported_fold, capsys):
    from mer_bench.benchmark.execution.config import RunConfig
    from mer_bench.benchmark.execution.one_job import _job_data
    from mer_bench.benchmark.protocol.grids import Grid, MethodSpec
    from mer_bench.benchmark.execution.planning import plan
    from safetensors.torch import load_file

    results, _ = exported_fold
    model = results / "model"
    common = ["--methods", "skd_tstsan", "--budget", "1", "--start", str(model), "--folds", "2",
              *SMALL, "--results", str(results), "--quiet"]
    assert main(["run", *common]) == 0
    out = capsys.readouterr().out
    assert "skd_tstsan[start=model" in out and "2 jobs run, 0 already done" in out
    config = RunConfig(results=results, progress=False, weights_dirs=(("model", str(model)),))
    jobs, _ = plan(Grid((MethodSpec.make("skd_tstsan", budget=1, start="model",
                                         recipes={"synthetic-5": {"batch_size": 4}}),),
                        ("synthetic-5",)), config)
    data = _job_data(jobs[0], config)
    assert data.context.init_weights == str(model / "model.safetensors")
    started, _, _ = data.method.fresh_model(data.context)
    exported = load_file(model / "model.safetensors")
    for name, value in started.state_dict().items():  # all but the final layers transferred
        if not name.startswith(data.method.final_layers):
            assert np.array_equal(value.numpy(), exported[name].numpy()), name
    assert main(["export", str(model), "--method", RUN, "--fold", "synthetic/sub04",
                 "--results", str(results)]) == 0
    assert main(["run", *common]) == 0
    assert "2 jobs run, 0 already done" in capsys.readouterr().out  # other start weights
    assert main(["run", "--methods", "ststnet.shared", "--start", str(model), "--results",
                 str(results), "--quiet"]) == 2
    assert "cannot start from" in capsys.readouterr().err
