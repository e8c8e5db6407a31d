"""Temporal interpolation (TIM) and bundles of D temporal domains, read by SKD-TSTSAN."""

import numpy as np
import pytest
import scipy.linalg
import torch

from mer_bench.datasets.errors import ClipError
from mer_bench.datasets.interpolation import curve, interpolate_frames, path_graph_laplacian
from mer_bench.datasets.bundle_cache import BundleCache
from mer_bench.datasets.preprocess import PreprocessSettings
from mer_bench.datasets.views import build_view
from mer_bench.methods.skd_tstsan import SKDTSTSAN, Switches
from tests.conftest import face_frame, write_clip


@pytest.mark.parametrize("n", [2, 3, 7, 12])
def test_curve_columns_are_the_path_graph_laplacian_eigenvectors(n):
    laplacian = path_graph_laplacian(n)
    assert np.allclose(laplacian.sum(axis=1), 0) and laplacian[0, 0] == 1
    vectors = curve(n, np.arange(n))
    k = np.arange(1, n)
    assert np.allclose(laplacian @ vectors, vectors * (2 - 2 * np.cos(np.pi * k / n)))
    assert np.allclose(vectors.sum(axis=0), 0)  # orthogonal to the constant eigenvector
    # Same spectrum as a numerical eigensolver: the curve's columns are all the others.
    assert np.allclose(scipy.linalg.eigh(laplacian, eigvals_only=True),
                       np.sort(np.r_[0, 2 - 2 * np.cos(np.pi * k / n)]))


def tim_reference(frames: np.ndarray, count: int) -> np.ndarray:
    """Zhou/Pfister's TIM as written: PCA, a numerical graph embedding of the path graph, its
    curve y_k(t) = a_k sin(pi k t + pi (n - k) / (2n)) at t = 1/n .. 1, the linear map back."""
    n = len(frames)
    data = frames.reshape(n, -1).T.astype(np.float64)
    mean = data.mean(axis=1, keepdims=True)
    basis = np.linalg.svd(data - mean, full_matrices=False)[0][:, : n - 1]
    pca = basis.T @ (data - mean)  # (n-1, n)
    vectors = scipy.linalg.eigh(path_graph_laplacian(n))[1][:, 1:]  # unit norm, any sign
    t = np.arange(1, n + 1) / n
    k = np.arange(1, n)
    shapes = np.sin(np.pi * np.outer(t, k) + np.pi * (n - k) / (2 * n))
    amplitude = (shapes * vectors).sum(0) / (shapes**2).sum(0)
    embedding = vectors.T  # (n-1, n): frame i at point embedding[:, i] of the curve
    to_pca = pca @ np.linalg.pinv(embedding)  # the linear map curve -> frames (PCA space)
    new_t = np.linspace(1 / n, 1, count)
    points = (amplitude * np.sin(np.pi * np.outer(new_t, k) + np.pi * (n - k) / (2 * n))).T
    return (mean + basis @ to_pca @ points).T.reshape(count, *frames.shape[1:])


def test_interpolation_matches_the_model_as_published_and_keeps_the_frames():
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 255, (9, 6, 5))
    for count in (2, 6, 11, 17):
        assert np.allclose(interpolate_frames(frames, count), tim_reference(frames, count))
    # Every input frame is reproduced where the output grid meets it.
    assert np.allclose(interpolate_frames(frames, 9), frames)
    assert np.allclose(interpolate_frames(frames, 17)[::2], frames)
    ends = interpolate_frames(frames, 6)
    assert np.allclose(ends[0], frames[0]) and np.allclose(ends[-1], frames[-1])
    # A steady ramp stays near a ramp; a still sequence stays still.
    ramp = interpolate_frames(np.arange(7.0)[:, None], 13)[:, 0]
    assert np.all(np.diff(ramp) > 0) and np.allclose(ramp, np.linspace(0, 6, 13), atol=0.1)
    assert np.allclose(interpolate_frames(np.full((4, 3), 7.0), 11), 7.0)
    with pytest.raises(ValueError, match="at least 2 frames"):
        interpolate_frames(frames[:1], 6)


def test_domains_setting_is_validated_and_in_the_digest():
    assert PreprocessSettings().domains == 2
    assert PreprocessSettings(domains=5).digest() != PreprocessSettings().digest()
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="domains must be an integer >= 2"):
            PreprocessSettings(domains=bad)


def test_five_domain_bundle_interpolates_the_clip_and_sees_the_motion(tmp_path, face_clip):
    cache = BundleCache(tmp_path / "cache", PreprocessSettings(domains=5))
    key, made = cache.ensure(face_clip)
    bundle = cache.load(key)
    key_frame_bundle = BundleCache(tmp_path / "c2").load(BundleCache(tmp_path / "c2").ensure(
        face_clip)[0])
    assert made and bundle["flows"].shape == (5, 128, 128, 2) and bundle["flows"].dtype == np.float32
    assert bundle["frames"].shape == (6, 128, 128) and bundle["frames"].dtype == np.uint8
    # The S/L-stream inputs are the real key-frame crops, as with 2 domains.
    assert np.array_equal(bundle["faces"], key_frame_bundle["faces"])
    # The interpolated clip starts at the onset crop and ends at the offset crop.
    assert np.abs(bundle["frames"][0].astype(int) - bundle["faces"][0]).max() <= 1
    assert np.abs(bundle["frames"][-1].astype(int) - bundle["faces"][2]).max() <= 1
    # Lower face up 0 -> 2 px at frame 3, back down by frame 5: 6 samples at 0, .8, ... 4.
    lower = [flow[90:120, :, 1].mean() for flow in bundle["flows"]]
    upper = [flow[10:40, :, 1].mean() for flow in bundle["flows"]]
    assert lower[0] < -0.08 and lower[1] < -0.15 and abs(lower[2]) < 0.08
    assert lower[3] > 0.15 and lower[4] > 0.08 and max(map(abs, upper)) < 0.05
    assert abs(sum(lower)) < 0.1  # back where it started
    view = build_view("skd_tstsan_38", [bundle])
    assert view.shape == (1, 44, 48, 48)
    assert np.allclose(view[0, :34], build_view("skd_tstsan_38", [key_frame_bundle])[0, :34])
    with pytest.raises(ValueError, match="onset->apex flow.*domains = 5"):
        build_view("flow_strain_28", [bundle])
    assert build_view("flows", [bundle]).shape == (1, 10, 128, 128)


def test_every_frame_read_is_in_the_key_and_a_missing_one_is_named(tmp_path, face_clip):
    five = BundleCache(tmp_path / "cache", PreprocessSettings(domains=5))
    two = BundleCache(tmp_path / "cache")
    before5, before2 = five.locate(face_clip)[0], two.locate(face_clip)[0]
    write_clip(tmp_path, "sub01", "EP01_01", {2: face_frame(shift=0.5)})  # not a key frame
    assert five.locate(face_clip)[0] != before5 and two.locate(face_clip)[0] == before2
    (tmp_path / "sub01" / "EP01_01" / "img4.jpg").unlink()
    with pytest.raises(ClipError, match="sequence frame 4 missing") as error:
        five.ensure(face_clip)
    assert error.value.clip_key == face_clip.key and error.value.path.endswith("img4.jpg")
    assert two.ensure(face_clip)[1]  # key frames only: still fine


def _bundle(domains: int, rng) -> dict:
    return {"faces": rng.integers(0, 256, (3, 128, 128), dtype=np.uint8),
            "flows": rng.normal(size=(domains, 128, 128, 2)).astype(np.float32),
            "box": np.array([0, 0, 128, 128], np.int32)}


@pytest.fixture
def one_thread():
    """One torch thread: a forward pass of one sample gains nothing from more, and on a busy
    machine their spinning costs seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("domains", [2, 5, 10])
def test_skd_tstsan_with_d_segments_reads_the_view_of_d_domains(domains, one_thread):
    rng = np.random.default_rng(domains)
    view = build_view("skd_tstsan_38", [_bundle(domains, rng) for _ in range(2)])
    assert view.shape == (2, 34 + 2 * domains, 48, 48)
    assert view.min() >= 0 and view.max() <= 1
    torch.manual_seed(0)
    model = SKDTSTSAN(5, Switches(segments=domains)).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(view[:1]))
    assert set(logits) == {"final", "ac1", "ac2"}
    assert logits["final"].shape == (1, 5) and torch.isfinite(logits["final"]).all()
