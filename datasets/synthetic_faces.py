"""The synthetic set's faces: each subject is the public-domain astronaut photo
(`skimage.data.astronaut`) re-posed, re-lit and placed on its own background; each clip is
that still frame with one small, smooth, local deformation (its class) ramping onset -> apex
-> offset, plus distractors (blinks, slight head drift) and fresh sensor noise, every draw from
the clip's own seeded stream (synthetic_frames.py writes the set and its sheet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import skimage.data

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

    base: np.ndarray  # float32 BGR, the neutral frame before noise
    person: np.ndarray  # float32 soft mask of the person, moves with the head
    linear: np.ndarray  # 2x2, source -> frame
    offset: np.ndarray  # 2, source -> frame
    noise_sigma: float
    grid: np.ndarray = field(init=False)  # (x, y) of every frame pixel, the identity map
    scale: float = field(init=False)  # frame pixels per source pixel

    def __post_init__(self):
        height, width = self.person.shape
        self.grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32),
                                         np.arange(height, dtype=np.float32)), axis=2)
        self.scale = float(np.sqrt(abs(np.linalg.det(self.linear))))

    def to_frame(self, point) -> np.ndarray:
        return self.linear @ np.asarray(point, np.float64) + self.offset


@lru_cache(maxsize=1)
def _source() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo (BGR float32) and a soft mask of the person in it."""
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR).astype(np.float32)
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.array(_PERSON_OUTLINE, np.int32)], 1.0)
    mask = cv2.erode(mask, np.ones((7, 7), np.uint8))  # keep the old backdrop out of the hair edge
    return image, cv2.GaussianBlur(mask, (0, 0), 1.5)


def make_subject(spec: SyntheticSpec, subject: int) -> _Subject:
    """Poses, lights and backs the source person differently for each subject."""
    rng = np.random.default_rng((spec.seed, SUBJECT_STREAM, subject))
    width, height = spec.frame_size
    scale = height / 256 * rng.uniform(1.0, 1.3)
    angle = np.deg2rad(rng.uniform(-4.0, 4.0))
    aspect = rng.uniform(0.93, 1.07)  # a wider or narrower face
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rotation @ np.diag([scale * aspect, scale])
    centre = np.array([width * (0.5 + rng.uniform(-0.08, 0.08)),
                       height * (0.48 + rng.uniform(-0.04, 0.04))])
    offset = centre - linear @ np.array(_SOURCE_FACE_CENTRE)
    affine = np.hstack([linear, offset[:, None]])

    image, mask = _source()
    person = cv2.warpAffine(image, affine, (width, height), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REFLECT)
    person_mask = cv2.warpAffine(mask, affine, (width, height), flags=cv2.INTER_LINEAR)
    base = person * person_mask[..., None] + _background(rng, width, height) * (
        1 - person_mask[..., None])

    gamma, gain = rng.uniform(0.8, 1.25), rng.uniform(0.8, 1.15)
    cast = rng.uniform(0.9, 1.1, 3).astype(np.float32)  # per-channel white balance
    base = 255 * (np.clip(base, 0, 255) / 255) ** gamma * gain * cast
    return _Subject(np.clip(base, 0, 255).astype(np.float32), person_mask, linear, offset,
                    float(rng.uniform(0.8, 2.0)))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth backdrop: a muted colour, a lighting gradient and low-frequency blotches."""
    colour = rng.uniform(50, 210) + rng.normal(0, 20, 3)
    cells = (int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    coarse = rng.normal(0, rng.uniform(8, 35), (*cells, 1)) + rng.normal(0, 6, (*cells, 3))
    texture = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    x = np.linspace(-1, 1, width, dtype=np.float32)
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    slope = rng.uniform(-30, 30, 2)
    gradient = (slope[0] * x + slope[1] * y)[..., None]
    return (colour + texture + gradient).astype(np.float32)


def _bump_field(look: _Subject, bumps, rng: np.random.Generator | None = None) -> np.ndarray:
    """Sum of Gaussian-weighted displacements in frame pixels, scaled to a peak of 1.

    With rng, each bump's place, width and strength is jittered, so no two clips move alike.
    """
    xs, ys = look.grid[..., 0], look.grid[..., 1]
    field = np.zeros(look.grid.shape, np.float32)
    for point, direction, sigma in bumps:
        point, strength, spread = np.asarray(point, np.float64), 1.0, 1.0
        if rng is not None:
            point = point + rng.uniform(-1.5, 1.5, 2)
            strength, spread = rng.uniform(0.6, 1.0), rng.uniform(0.85, 1.2)
        cx, cy = look.to_frame(point).tolist()
        way = look.linear @ np.asarray(direction, np.float64)
        way /= np.linalg.norm(way)
        s = sigma * spread * look.scale
        weight = strength * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / np.float32(2 * s * s))
        field += weight[..., None] * way.astype(np.float32)
    return field / np.linalg.norm(field, axis=2).max()


def _blink_field(look: _Subject, closure: float) -> np.ndarray:
    """Displacement that slides both upper lids down over `closure` (0..1) of the eye.

    Across the lid, lid skin stretches down over the eye and the still-open part of the eye is
    squeezed below it: the source rows stay in order, so even a full blink never folds.
    """
    travel = closure * 0.95 * (_LOWER_LID - _UPPER_LID)
    down = (look.linear @ np.array([0.0, 1.0])).astype(np.float32)  # source px -> frame px
    to_source = np.linalg.inv(look.linear).astype(np.float32)
    field = np.zeros(look.grid.shape, np.float32)
    for centre, half_width in _EYES:
        local = (look.grid - look.to_frame(centre).astype(np.float32)) @ to_source.T
        u, v = local[..., 0], local[..., 1]  # along and across the eye, source pixels
        rise = travel * (v - (_UPPER_LID - _LID_SKIN)) / (_LID_SKIN + travel)
        fall = travel * (_LOWER_LID - v) / (_LOWER_LID - _UPPER_LID - travel)
        tent = np.clip(np.minimum(rise, fall), 0, None)
        across = np.clip(1 - (u / half_width) ** 4, 0, None)  # full travel but at the corners
        field += (tent * across)[..., None] * down
    return field


def write_clip(folder: Path, row: _ClipRow, look: _Subject, spec: SyntheticSpec,
                index: int) -> None:
    """Renders onset..offset: base frame warped by expression + blink + head drift, plus noise."""
    rng = np.random.default_rng((spec.seed, CLIP_STREAM, row.subject, index))
    frames = np.arange(row.onset, row.offset + 1)

    peak = rng.uniform(0.5, 2.0) * spec.motion_scale
    expression = _bump_field(look, _MOTIONS[row.emotion], rng) * np.float32(peak)
    profile = _expression_profile(frames, row, residual=rng.uniform(0.0, 0.2))
    closure = _blink_profile(frames, row, rng)

    drift = rng.normal(0, 1, 2)
    drift *= rng.uniform(0.1, 1.0) / np.linalg.norm(drift)
    turn = np.deg2rad(rng.uniform(-0.5, 0.5))
    cx, cy = look.to_frame(_SOURCE_FACE_CENTRE)
    xs, ys = look.grid[..., 0], look.grid[..., 1]
    head = np.stack([drift[0] - turn * (ys - cy), drift[1] + turn * (xs - cx)], axis=2)
    head = (head * look.person[..., None]).astype(np.float32)  # the head moves, the wall does not
    elapsed = (frames - row.onset) / (row.offset - row.onset)
    head_profile = elapsed * elapsed * (3 - 2 * elapsed)  # smoothstep drift

    folder.mkdir(parents=True)
    for n, a, b, h in zip(frames, profile.tolist(), closure.tolist(), head_profile.tolist()):
        source_map = look.grid - a * expression - h * head
        if b:
            source_map -= _blink_field(look, b)
        frame = cv2.remap(look.base, source_map, None, cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
        frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(look.noise_sigma)
        frame += 0.5  # round, not truncate, below
        cv2.imwrite(str(folder / f"img{n}.jpg"), np.clip(frame, 0, 255).astype(np.uint8),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])


def _expression_profile(frames: np.ndarray, row: _ClipRow, residual: float) -> np.ndarray:
    """Raised-cosine rise from 0 at onset to 1 at apex, decay to `residual` at offset."""
    rise = 0.5 - 0.5 * np.cos(np.pi * (frames - row.onset) / (row.apex - row.onset))
    fall = residual + (1 - residual) * (
        0.5 + 0.5 * np.cos(np.pi * (frames - row.apex) / (row.offset - row.apex)))
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
    shape = np.sin(np.pi * np.arange(1, duration + 1) / (duration + 1))
    closure[start - row.onset: start - row.onset + duration] = depth * shape
    return closure
