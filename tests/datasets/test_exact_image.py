"""The exact image operations the synthetic set is drawn with: right to double precision where
they stand for a transcendental function, and equal to what the usual libraries compute where
those are exact."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from mer_bench.datasets import exact_image as exact
from mer_bench.datasets.plain_xlsx import write_xlsx


def test_exp_agrees_with_the_library_exp_over_the_range_it_serves():
    x = -np.linspace(0.0, 32.0, 100_001)
    mine, theirs = exact.exp(x), np.exp(x)
    assert np.max(np.abs(mine - theirs) / theirs) < 1e-11
    assert exact.exp(np.array([0.0]))[0] == 1.0
    assert exact.exp(np.array([-1000.0]))[0] == pytest.approx(math.exp(exact.EXP_FLOOR))


def test_cos_sin_match_the_library_for_small_angles_and_refuse_large_ones():
    for angle in np.linspace(-0.1, 0.1, 41):
        cos, sin = exact.cos_sin(float(angle))
        assert cos == pytest.approx(math.cos(angle), abs=1e-15)
        assert sin == pytest.approx(math.sin(angle), abs=1e-15)
    with pytest.raises(ValueError, match="small angles"):
        exact.cos_sin(0.2)


def test_sample_interpolates_bilinearly_and_mirrors_like_opencv_at_whole_pixels():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (7, 9, 3)).astype(np.float64)
    ys, xs = np.indices((7, 9), dtype=np.float64)
    assert np.array_equal(exact.sample(image, xs, ys), image)  # the identity map
    # Half a pixel right: the mean of each pixel and its right neighbour (mirrored at the edge).
    shifted = exact.sample(image, xs + 0.5, ys)
    right = np.concatenate([image[:, 1:], image[:, -1:]], axis=1)
    assert np.array_equal(shifted, (image + right) / 2)
    # Whole-pixel moves across the border reflect as OpenCV's BORDER_REFLECT does.
    theirs = cv2.remap(image.astype(np.float32), (xs - 3).astype(np.float32),
                       (ys + 2).astype(np.float32), cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_REFLECT)
    assert np.array_equal(exact.sample(image, xs - 3, ys + 2), theirs)


def test_fill_polygon_erode_and_blur():
    square = exact.fill_polygon((10, 10), [(2, 2), (7, 2), (7, 7), (2, 7)])
    assert square.sum() == 25 and square[2, 2] == 1 and square[7, 7] == 0
    triangle = exact.fill_polygon((9, 9), [(0, 0), (8, 0), (0, 8)])
    assert triangle[0, 0] == 1 and triangle[8, 8] == 0 and triangle[4, 3] == 1
    assert exact.erode(square, 1).sum() == 9  # 5x5 -> 3x3
    blurred = exact.blur(square)
    assert blurred.sum() == pytest.approx(25.0)  # the binomial kernel keeps the mass
    assert 0 < blurred[1, 4] < blurred[3, 4] < 1 and blurred[4, 4] == 1.0


def test_normal_noise_has_zero_mean_and_unit_variance_and_is_the_generators_own():
    draws = exact.normal_noise(np.random.default_rng(1), 200_000)
    assert abs(draws.mean()) < 0.01 and abs(draws.std() - 1) < 0.01
    again = exact.normal_noise(np.random.default_rng(1), 200_000)
    assert np.array_equal(draws, again)


def test_the_plain_sheet_reads_back_through_pandas_and_its_bytes_are_fixed(tmp_path):
    import pandas as pd

    rows = [(1, "EP01_01", None, 3, 5, 9, None, "4+9", "disgust & <more>"),
            (12, "EP02_01", None, 1, 2, 3, None, "12", "happiness")]
    header = ["Subject", "Filename", "", "On", "Apex", "Off", "", "AU", "Emotion"]
    write_xlsx(tmp_path / "a.xlsx", "Sheet1", header, rows)
    write_xlsx(tmp_path / "b.xlsx", "Sheet1", header, rows)
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    sheet = pd.read_excel(tmp_path / "a.xlsx", sheet_name="Sheet1")
    assert list(sheet.columns) == ["Subject", "Filename", "Unnamed: 2", "On", "Apex", "Off",
                                   "Unnamed: 6", "AU", "Emotion"]
    assert sheet.Subject.tolist() == [1, 12] and sheet.Emotion[0] == "disgust & <more>"
    assert sheet["Unnamed: 2"].isna().all()
    with pytest.raises(TypeError, match="cell A2"):
        write_xlsx(tmp_path / "c.xlsx", "Sheet1", ["x"], [(object(),)])
