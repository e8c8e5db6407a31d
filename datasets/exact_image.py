"""Image operations whose output is the same bits on every machine and library version.

The synthetic set is the harness's default data: its bytes key every bundle and job, so a
change of one pixel changes every seed and every number the docs show. OpenCV's warps, blurs
and resizes, numpy's `exp`, `sin` and `**`, BLAS-backed `@` and numpy's normal sampler all
differ in their last bits between library versions or CPUs (measured: OpenCV 4.10 and 5.0
draw 99% of a cubic remap's values differently). What is here uses only IEEE-754's correctly
rounded operations (+, -, *, /, sqrt), comparisons, floor and integer indexing, one numpy ufunc
at a time (never fused), and the uniform doubles of numpy's seeded generators, which are
defined from the generator's bits: those give the same result everywhere.
"""

from __future__ import annotations

import math

import numpy as np

# 1 / k! for the exponential's series on [-1/2, 0]: the 13 terms reach double precision there.
_INVERSE_FACTORIALS = tuple(1.0 / math.factorial(k) for k in range(13))
_HALVINGS = 6  # exp(x) = exp(x / 64) ** 64: |x| <= 32 reduces to |x / 64| <= 1/2
EXP_FLOOR = -32.0  # exp of anything lower is taken as exp(-32), 1.3e-14: zero for pixels


def exp(x) -> np.ndarray:
    """e**x for x <= 0 (float64), from the Taylor series of x / 64 squared six times: within
    1e-11 of the true value, relatively (the squarings multiply the series' rounding)."""
    reduced = np.maximum(np.asarray(x, np.float64), EXP_FLOOR) / float(2 ** _HALVINGS)
    total = np.full(reduced.shape, _INVERSE_FACTORIALS[-1])
    for coefficient in reversed(_INVERSE_FACTORIALS[:-1]):
        total = total * reduced + coefficient
    for _ in range(_HALVINGS):
        total = total * total
    return total


def cos_sin(angle: float) -> tuple[float, float]:
    """cos and sin of a small angle (|angle| <= 0.1 rad: a few degrees) from their Taylor
    series, right to double precision there."""
    if abs(angle) > 0.1:
        raise ValueError(f"cos_sin is for small angles, got {angle}")
    a2 = angle * angle
    cos = 1.0 + a2 * (-1 / 2 + a2 * (1 / 24 + a2 * (-1 / 720 + a2 * (1 / 40320))))
    sin = angle * (1.0 + a2 * (-1 / 6 + a2 * (1 / 120 + a2 * (-1 / 5040 + a2 / 362880))))
    return cos, sin


def smoothstep(t) -> np.ndarray:
    """0 at t <= 0, 1 at t >= 1, 3t^2 - 2t^3 between: a smooth ramp with flat ends."""
    t = np.clip(np.asarray(t, np.float64), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Indices mirrored into 0..size-1 with the edge repeated (OpenCV's BORDER_REFLECT)."""
    period = 2 * size
    index = np.mod(index, period)
    return np.where(index < size, index, period - 1 - index)


def sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of `image` (H, W[, C]) at the float positions (xs, ys), mirrored at
    the borders: out[i, j] = image at (xs[i, j], ys[i, j])."""
    image = np.asarray(image, np.float64)
    height, width = image.shape[:2]
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = xs - x0, ys - y0
    if image.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    left, right = reflect(x0, width), reflect(x0 + 1, width)
    top, bottom = reflect(y0, height), reflect(y0 + 1, height)
    upper = image[top, left] * (1.0 - fx) + image[top, right] * fx
    lower = image[bottom, left] * (1.0 - fx) + image[bottom, right] * fx
    return upper * (1.0 - fy) + lower * fy


def affine_sample(image: np.ndarray, linear: np.ndarray, offset: np.ndarray,
                  size: tuple[int, int]) -> np.ndarray:
    """`image` placed by the map source -> linear @ source + offset into a (width, height)
    frame: every frame pixel samples the source point the inverse map sends it to."""
    width, height = size
    (a, b), (c, d) = np.asarray(linear, np.float64)
    determinant = a * d - b * c
    xs, ys = grid(width, height)
    u, v = xs - float(offset[0]), ys - float(offset[1])
    return sample(image, (d * u - b * v) / determinant, (a * v - c * u) / determinant)


def grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y (float64, (height, width)) of every pixel: the identity map."""
    ys, xs = np.indices((height, width), dtype=np.float64)
    return xs, ys


def fill_polygon(shape: tuple[int, int], vertices) -> np.ndarray:
    """1.0 at the pixels whose centres lie inside the polygon (even-odd rule), else 0.0;
    integer vertices keep every comparison exact."""
    ys, xs = np.indices(shape, dtype=np.float64)
    inside = np.zeros(shape, bool)
    points = [tuple(map(float, p)) for p in vertices]
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):
        if y1 == y2:
            continue
        crosses = (ys >= min(y1, y2)) & (ys < max(y1, y2))
        at = x1 + (ys - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xs < at)
    return inside.astype(np.float64)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """The minimum over a (2r+1) x (2r+1) square around each pixel (edges repeated)."""
    padded = np.pad(mask, radius, mode="edge")
    height, width = mask.shape
    side = 2 * radius + 1
    return np.min([padded[dy:dy + height, dx:dx + width]
                   for dy in range(side) for dx in range(side)], axis=0)


def blur(image: np.ndarray, passes: int = 1) -> np.ndarray:
    """Binomial [1, 4, 6, 4, 1] / 16 smoothing along both axes, `passes` times (a Gaussian of
    sigma 1 per pass); sums of small multiples then one division by a power of two."""
    out = np.asarray(image, np.float64)
    for _ in range(passes):
        for axis in (0, 1):
            padded = np.pad(out, [(2, 2) if a == axis else (0, 0) for a in range(out.ndim)],
                            mode="edge")
            n = out.shape[axis]
            taps = [np.take(padded, np.arange(k, k + n), axis=axis) for k in range(5)]
            out = (taps[0] + 4.0 * taps[1] + 6.0 * taps[2] + 4.0 * taps[3] + taps[4]) / 16.0
    return out


def resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` stretched to (width, height), pixel centres aligned as OpenCV aligns them."""
    height, width = image.shape[:2]
    new_width, new_height = size
    xs, ys = grid(new_width, new_height)
    return sample(image, (xs + 0.5) * (width / new_width) - 0.5,
                  (ys + 0.5) * (height / new_height) - 0.5)


def normal_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """Zero-mean, unit-variance noise of a bell shape: the sum of four uniform draws
    (Irwin-Hall), scaled; numpy's normal sampler calls exp and log, these only add."""
    total = rng.random(shape)
    for _ in range(3):
        total += rng.random(shape)
    return (total - 2.0) * 1.7320508075688772  # sqrt(3): the sum's variance is 4 / 12
