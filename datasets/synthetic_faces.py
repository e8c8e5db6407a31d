"""The synthetic set's faces: each subject is the public-domain astronaut photo
(`skimage.data.astronaut`) re-posed, re-lit and placed on its own background; each clip is
that still frame with one small, smooth, local deformation (its class) ramping onset -> apex
-> offset, plus distractors (blinks, slight head drift) and fresh sensor noise, every draw from
the clip's own seeded stream (synthetic_frames.py writes the set and its sheet).

Every pixel is computed with exact_image.py's operations, which give the same bits on every
machine and library version, and written as a JPEG by libjpeg-turbo's integer encoder (the
same bytes under OpenCV 4.10 and 5.0, tested): the set's digest is a constant
(tests/datasets/test_synthetic_digest.py), so its numbers come out the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import skimage.data

from mer_bench.datasets import exact_image as exact

if TYPE_CHECKING:
    from mer_bench.datasets.synthetic_frames import SyntheticSpec, _ClipRow


# Random-stream tags (synthetic_frames.py's layout stream is 0): never sharing a seed.
SUBJECT_STREAM, CLIP_STREAM = 1, 2

# Geometry of the source photo (x, y in its 512x512 pixels), estimated by eye.
SOURCE_FACE_BOX = (175, 76, 265, 166)  # what dlib's frontal detector returns on the photo
_SOURCE_FACE_CENTRE = (220.0, 121.0)
# Person outline (hair, face, neck ring, suit) so each subject gets its own background.
_PERSON_OUTLINE = (
    (230, 16), (250, 19), (265, 27), (280, 37), (291, 50), (298, 65), (300, 90), (296, 110),
    (286, 120), (272, 130), (262, 142), (256, 160), (258, 174), (275, 184), (290, 199),
    (299, 220), (304, 240), (325, 245), (345, 270), (358, 330), (30, 330), (40, 300), (70, 260),
    (92, 225), (105, 205), (115, 195), (122, 180), (135, 164), (150, 153), (168, 147),
    (178, 140), (175, 130), (162, 125), (156, 105), (156, 80), (158, 62), (167, 48), (180, 38),
    (195, 29), (210, 21),
)
# Each class: (point, direction the skin moves, Gaussian sigma), all in source pixels.
_MOTIONS = {
    "surprise": (((203, 88), (0, -1), 8.0), ((248, 90), (0, -1), 8.0)),  # brows raised
    "others": (  # lids narrowing: upper lids down, lower lids up
        ((201, 97), (0, 1), 4.0), ((246, 99), (0, 1), 4.0),
        ((201, 105), (0, -1), 4.0), ((246, 107), (0, -1), 4.0),
    ),
    "disgust": (  # nose wrinkle: nasal wings and bridge pulled up
        ((214, 124), (0, -1), 7.0), ((236, 124), (0, -1), 7.0), ((225, 112), (0, -1), 6.0),
    ),
    "happiness": (((204, 142), (-0.45, -0.9), 7.0), ((244, 141), (0.45, -0.9), 7.0)),  # corners
    "repression": (((224, 153), (0, -1), 6.0), ((225, 163), (0, -1), 8.0)),  # lip pressed, chin up
}
# Where each class moves, in source pixels: for checks and plots of the motion.
MOTION_POINTS = {emotion: tuple(p for p, _, _ in bumps) for emotion, bumps in _MOTIONS.items()}
# Blink distractor: eye centres and half-widths; lid rows and the lid skin above, from the centre.
_EYES = (((201.0, 100.5), 10.0), ((246.0, 102.5), 12.0))
_UPPER_LID, _LOWER_LID, _LID_SKIN = -3.5, 4.0, 6.0
_BLINK_CHANCE = 0.35



@dataclass
class _Subject:
    """A subject's still frame and the similarity transform that placed the source face in it."""

    base: np.ndarray  # float64 BGR, the neutral frame before noise
    person: np.ndarray  # float64 soft mask of the person, moves with the head
    linear: np.ndarray  # 2x2, source -> frame
    offset: np.ndarray  # 2, source -> frame
    noise_sigma: float
    xs: np.ndarray = field(init=False)  # x of every frame pixel (the identity map)
    ys: np.ndarray = field(init=False)  # y of every frame pixel
    scale: float = field(init=False)  # frame pixels per source pixel

    def __post_init__(self):
        height, width = self.person.shape
        self.xs, self.ys = exact.grid(width, height)
        (a, b), (c, d) = self.linear
        self.scale = float(np.sqrt(abs(a * d - b * c)))

    def to_frame(self, point) -> tuple[float, float]:
        return _apply(self.linear, point, self.offset)


def _apply(linear: np.ndarray, point, offset=(0.0, 0.0)) -> tuple[float, float]:
    """linear @ point + offset, written out (numpy's @ may go through BLAS and fuse)."""
    (a, b), (c, d) = linear
    x, y = (float(v) for v in point)
    return a * x + b * y + float(offset[0]), c * x + d * y + float(offset[1])


@lru_cache(maxsize=1)
def _source() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo (BGR float64) and a soft mask of the person in it."""
    image = skimage.data.astronaut()[..., ::-1].astype(np.float64)
    mask = exact.fill_polygon(image.shape[:2], _PERSON_OUTLINE)
    mask = exact.erode(mask, 3)  # keep the old backdrop out of the hair edge
    return image, exact.blur(mask, passes=2)


def make_subject(spec: SyntheticSpec, subject: int) -> _Subject:
    """Poses, lights and backs the source person differently for each subject."""
    rng = np.random.default_rng((spec.seed, SUBJECT_STREAM, subject))
    width, height = spec.frame_size
    scale = height / 256 * rng.uniform(1.0, 1.3)
    cos, sin = exact.cos_sin(rng.uniform(-4.0, 4.0) * (np.pi / 180))
    aspect = rng.uniform(0.93, 1.07)  # a wider or narrower face
    linear = np.array([[cos * scale * aspect, -sin * scale], [sin * scale * aspect, cos * scale]])
    centre = (width * (0.5 + rng.uniform(-0.08, 0.08)),
              height * (0.48 + rng.uniform(-0.04, 0.04)))
    placed = _apply(linear, _SOURCE_FACE_CENTRE)
    offset = np.array([centre[0] - placed[0], centre[1] - placed[1]])

    image, mask = _source()
    person = exact.affine_sample(image, linear, offset, (width, height))
    person_mask = exact.affine_sample(mask, linear, offset, (width, height))
    base = person * person_mask[..., None] + _background(rng, width, height) * (
        1.0 - person_mask[..., None])

    # Lighting: a gamma-like tone curve, a gain and a per-channel white balance.
    bend, gain = rng.uniform(-0.25, 0.25), rng.uniform(0.8, 1.15)
    cast = rng.uniform(0.9, 1.1, 3)
    tone = np.clip(base, 0.0, 255.0) / 255.0
    base = 255.0 * (tone + bend * tone * (1.0 - tone)) * gain * cast
    return _Subject(np.clip(base, 0.0, 255.0), person_mask, linear, offset,
                    float(rng.uniform(0.8, 2.0)))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth backdrop: a muted colour, a lighting gradient and low-frequency blotches."""
    colour = rng.uniform(50, 210) + 20.0 * exact.normal_noise(rng, 3)
    cells = (int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    coarse = rng.uniform(8, 35) * exact.normal_noise(rng, (*cells, 1)) \
        + 6.0 * exact.normal_noise(rng, (*cells, 3))
    texture = exact.resize_bilinear(coarse, (width, height))
    x = (2.0 * np.arange(width) - (width - 1)) / (width - 1)
    y = ((2.0 * np.arange(height) - (height - 1)) / (height - 1))[:, None]
    slope = rng.uniform(-30, 30, 2)
    gradient = (slope[0] * x + slope[1] * y)[..., None]
    return colour + texture + gradient


def _bump_field(look: _Subject, bumps, rng: np.random.Generator | None = None) -> np.ndarray:
    """Sum of Gaussian-weighted displacements in frame pixels, scaled to a peak of 1.

    With rng, each bump's place, width and strength is jittered, so no two clips move alike.
    """
    field = np.zeros((*look.xs.shape, 2))
    for point, direction, sigma in bumps:
        point, strength, spread = np.asarray(point, np.float64), 1.0, 1.0
        if rng is not None:
            point = point + rng.uniform(-1.5, 1.5, 2)
            strength, spread = rng.uniform(0.6, 1.0), rng.uniform(0.85, 1.2)
        cx, cy = look.to_frame(point)
        way_x, way_y = _apply(look.linear, direction)
        length = float(np.sqrt(way_x * way_x + way_y * way_y))
        s = sigma * spread * look.scale
        dx, dy = look.xs - cx, look.ys - cy
        weight = strength * exact.exp(-(dx * dx + dy * dy) / (2.0 * s * s))
        field[..., 0] += weight * (way_x / length)
        field[..., 1] += weight * (way_y / length)
    peak = np.sqrt(field[..., 0] * field[..., 0] + field[..., 1] * field[..., 1]).max()
    return field / peak


def _blink_field(look: _Subject, closure: float) -> np.ndarray:
    """Displacement that slides both upper lids down over `closure` (0..1) of the eye.

    Across the lid, lid skin stretches down over the eye and the still-open part of the eye is
    squeezed below it: the source rows stay in order, so even a full blink never folds.
    """
    travel = closure * 0.95 * (_LOWER_LID - _UPPER_LID)
    down = _apply(look.linear, (0.0, 1.0))  # source px -> frame px
    (a, b), (c, d) = look.linear
    determinant = a * d - b * c
    field = np.zeros((*look.xs.shape, 2))
    for centre, half_width in _EYES:
        cx, cy = look.to_frame(centre)
        dx, dy = look.xs - cx, look.ys - cy
        u = (d * dx - b * dy) / determinant  # along the eye, source pixels
        v = (a * dy - c * dx) / determinant  # across it
        rise = travel * (v - (_UPPER_LID - _LID_SKIN)) / (_LID_SKIN + travel)
        fall = travel * (_LOWER_LID - v) / (_LOWER_LID - _UPPER_LID - travel)
        tent = np.clip(np.minimum(rise, fall), 0.0, None)
        q = u / half_width
        across = np.clip(1.0 - q * q * q * q, 0.0, None)  # full travel but at the corners
        field[..., 0] += tent * across * down[0]
        field[..., 1] += tent * across * down[1]
    return field


def write_clip(folder: Path, row: _ClipRow, look: _Subject, spec: SyntheticSpec,
               index: int) -> None:
    """Renders onset..offset: base frame warped by expression + blink + head drift, plus noise."""
    rng = np.random.default_rng((spec.seed, CLIP_STREAM, row.subject, index))
    frames = np.arange(row.onset, row.offset + 1)

    peak = rng.uniform(0.5, 2.0) * spec.motion_scale
    expression = _bump_field(look, _MOTIONS[row.emotion], rng) * peak
    profile = _expression_profile(frames, row, residual=rng.uniform(0.0, 0.2))
    closure = _blink_profile(frames, row, rng)

    drift = exact.normal_noise(rng, 2)
    drift = drift * (rng.uniform(0.1, 1.0) / np.sqrt(drift[0] * drift[0] + drift[1] * drift[1]))
    turn = rng.uniform(-0.5, 0.5) * (np.pi / 180)
    cx, cy = look.to_frame(_SOURCE_FACE_CENTRE)
    head_x = (drift[0] - turn * (look.ys - cy)) * look.person  # the head moves, the wall not
    head_y = (drift[1] + turn * (look.xs - cx)) * look.person
    head_profile = exact.smoothstep((frames - row.onset) / (row.offset - row.onset))

    folder.mkdir(parents=True)
    for n, a, b, h in zip(frames, profile.tolist(), closure.tolist(), head_profile.tolist()):
        xs = look.xs - a * expression[..., 0] - h * head_x
        ys = look.ys - a * expression[..., 1] - h * head_y
        if b:
            blink = _blink_field(look, b)
            xs, ys = xs - blink[..., 0], ys - blink[..., 1]
        frame = exact.sample(look.base, xs, ys)
        frame += exact.normal_noise(rng, frame.shape) * look.noise_sigma
        frame += 0.5  # round, not truncate, below
        cv2.imwrite(str(folder / f"img{n}.jpg"), np.clip(frame, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])


def _expression_profile(frames: np.ndarray, row: _ClipRow, residual: float) -> np.ndarray:
    """Smooth rise from 0 at onset to 1 at apex, smooth decay to `residual` at offset."""
    rise = exact.smoothstep((frames - row.onset) / (row.apex - row.onset))
    fall = residual + (1.0 - residual) * (
        1.0 - exact.smoothstep((frames - row.apex) / (row.offset - row.apex)))
    return np.where(frames <= row.apex, rise, fall)


def _blink_profile(frames: np.ndarray, row: _ClipRow, rng: np.random.Generator) -> np.ndarray:
    """Lid closure (0..1) of a quick blink in some clips, kept off the onset and apex frames."""
    closure = np.zeros(len(frames))
    duration = int(rng.integers(3, 6))
    starts = [s for s in range(row.onset + 1, row.offset - duration + 2)
              if not s <= row.apex < s + duration]
    if rng.uniform() >= _BLINK_CHANCE or not starts:
        return closure
    start = starts[int(rng.integers(len(starts)))]
    depth = rng.uniform(0.5, 1.0)
    t = np.arange(1, duration + 1) / (duration + 1)
    closure[start - row.onset: start - row.onset + duration] = depth * 4.0 * t * (1.0 - t)
    return closure
