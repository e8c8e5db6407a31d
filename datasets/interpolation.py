"""Temporal interpolation of a clip to a fixed number of frames (the TIM of Pfister et al. 2011).

The temporal interpolation model (Zhou et al. 2011, used for micro-expressions by Pfister et
al., ICCV 2011) treats the n frames of a clip as the n vertices of a path graph (frame i is
joined to frame i + 1 only). The non-constant eigenvectors of that graph's Laplacian embed the
frames on a smooth curve in R^(n-1); a linear map from the curve back to image space is fitted
so that every frame is reproduced at its own point of the curve; new frames are read off the
curve at equally spaced positions, the first and last of which are the clip's first and last
frames.

For the path graph P_n the Laplacian's eigenvectors are known in closed form (they are the
DCT-II basis): v_k(i) = cos(pi k (i + 1/2) / n), i = 0..n-1, eigenvalue 2 - 2 cos(pi k / n),
k = 1..n-1. Their continuation to real i is the curve. Pfister et al. first reduce the frames
with PCA; the linear map that reproduces all n frames exactly is unique (the n curve points
span R^(n-1) after centring), so keeping every component, as here, gives the same frames, and
the map is solved in pixel space directly. The result is a cosine-series (trigonometric)
interpolation of every pixel's time course; values are not clipped here, callers clip to their
range. tests/datasets/test_interpolation.py checks the eigenvectors against a numerical eigensolver of
the Laplacian, exact reproduction at the input positions, and the interpolant of motion.
"""

from __future__ import annotations

import numpy as np


def path_graph_laplacian(n: int) -> np.ndarray:
    """L = D - A of the path graph on n vertices (degree 1 at the ends, 2 inside)."""
    adjacency = np.eye(n, k=1) + np.eye(n, k=-1)
    return np.diag(adjacency.sum(axis=1)) - adjacency


def curve(n: int, positions) -> np.ndarray:
    """The embedding curve of an n-frame clip at (real) frame positions in [0, n-1]:
    (len(positions), n-1), column k-1 = cos(pi k (position + 1/2) / n), k = 1..n-1."""
    positions = np.asarray(positions, dtype=np.float64)
    return np.cos(np.pi * np.outer(positions + 0.5, np.arange(1, n)) / n)


def interpolate_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """`frames` (n, ...) resampled to `count` frames at equally spaced positions, float64.

    Output frame 0 is input frame 0 and output frame count-1 is input frame n-1 (up to
    rounding); in between, each pixel follows the model's curve. n >= 2 and count >= 2.
    """
    frames = np.asarray(frames)
    n = len(frames)
    if n < 2:
        raise ValueError(f"temporal interpolation needs at least 2 frames, got {n}")
    if count < 2:
        raise ValueError(f"temporal interpolation makes at least 2 frames, asked for {count}")
    data = frames.reshape(n, -1).astype(np.float64)
    mean = data.mean(axis=0)
    embedding = curve(n, np.arange(n))  # (n, n-1), orthogonal columns, each of norm^2 n/2
    # The linear map W with embedding @ W = data - mean (exact: the centred frames are
    # orthogonal to the constant vector, which the n-1 columns complement).
    mapping = np.linalg.solve(embedding.T @ embedding, embedding.T @ (data - mean))
    resampled = mean + curve(n, np.linspace(0.0, n - 1.0, count)) @ mapping
    return resampled.reshape(count, *frames.shape[1:])
