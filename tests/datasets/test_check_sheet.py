"""Check sheets: one command draws a PNG of crops, boxes, flows and L-stream blocks per clip."""

import numpy as np
from matplotlib import image as mpimg

from mer_bench.benchmark.tools import check_sheet
from mer_bench.benchmark.tools.check_sheet import flow_colour, make_check_sheet, sample_clips
from mer_bench.benchmark.cli import main
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.tasks import TASKS, load_task


def bands(image: np.ndarray, rows: int, header_in: float) -> list[np.ndarray]:
    """The horizontal band of each clip row, by the sheet's layout constants."""
    dpi, row_in = check_sheet.DPI, check_sheet.ROW_IN
    return [image[int((header_in + r * row_in) * dpi):int((header_in + (r + 1) * row_in) * dpi)]
            for r in range(rows)]


def test_check_command_draws_one_row_per_class_with_box_crops_and_flows(results, capsys):
    assert main(["check", "--task", "synthetic-5", "--results", str(results), "--quiet",
                 "--prepare-workers", "1"]) == 0
    path = results / "check" / "synthetic-5.png"
    assert f"written to {path}" in capsys.readouterr().out
    image = mpimg.imread(path)[..., :3]
    columns, rows = 5 + 2, 5  # frame + box, 3 crops, 2 flows, blocks; one row per class
    assert image.shape[:2] == (round((1.0 + rows * check_sheet.ROW_IN) * check_sheet.DPI),
                               round(columns * check_sheet.COLUMN_IN * check_sheet.DPI))
    column = int(check_sheet.COLUMN_IN * check_sheet.DPI)
    for band in bands(image, rows, 1.0):
        assert band.std() > 0.1  # not blank
        first = band[:, :column]
        red = (first[..., 0] > 0.8) & (first[..., 1] < 0.25) & (first[..., 2] < 0.25)
        assert red.sum() > 100  # the face box is drawn on the first frame
        flows = band[:, 4 * column:6 * column]
        saturation = flows.max(-1) - flows.min(-1)
        assert (saturation > 0.3).sum() > 200  # coloured flow fields, not grey
    # Sampled clips: one per class, from several subjects.
    config = RunConfig(results=results, progress=False)
    task = TASKS.build("synthetic-5")
    data = load_task(task, {d: config.root_of(d) for d in task.datasets})
    chosen = sample_clips(data)
    assert sorted(s.label for s in chosen) == list(range(5))
    assert len({s.clip.subject_key for s in chosen}) >= 3


def test_subject_sheet_shows_a_failing_clip_with_its_reason(results):
    config = RunConfig(results=results, progress=False)
    task = TASKS.build("synthetic-5")
    data = load_task(task, {d: config.root_of(d) for d in task.datasets})
    expected = sample_clips(data, 1, "sub02")
    broken = expected[0].clip
    broken.frame_path(broken.onset).write_bytes(b"not a jpeg")
    sheet = make_check_sheet("synthetic-5", config, per_class=1, subject="sub02",
                             path=results / "sheet.png")
    assert sheet.rows == [s.clip.key for s in expected] and sheet.columns == 7
    assert list(sheet.failed) == [broken.key]
    assert "onset frame" in sheet.failed[broken.key]
    assert "not a readable image" in sheet.failed[broken.key]
    image = mpimg.imread(sheet.path)
    assert image.shape[1::-1] == sheet.size and image[..., :3].std() > 0.1


def test_flow_colours_follow_the_key():
    right, down = np.zeros((2, 2, 2)), np.zeros((2, 2, 2))
    right[..., 0], down[..., 1] = 1.0, 1.0
    assert np.allclose(flow_colour(right, 1.0)[0, 0], [1, 0, 0])  # rightwards: red
    hue_down = flow_colour(down, 1.0)[0, 0]
    assert np.allclose(hue_down, [0.5, 1, 0])  # downwards (v > 0, image axes): yellow-green
    assert np.allclose(flow_colour(right * 0.0, 1.0), 0)  # no motion: black
    assert np.allclose(flow_colour(right * 0.5, 1.0)[0, 0], [0.5, 0, 0])  # half the scale
