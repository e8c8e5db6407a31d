"""Which onset and apex a bundle reads: the annotated ones, seeded perturbations of them, or an
apex estimated without the annotation (key-frame robustness, issue 16).

Annotated key frames are what every published MER number uses, but they are a human's reading
of a clip: the apex is often ambiguous by a frame or two, and a deployed model has no
annotation at all. These modes measure how much a method's score rests on them:

- `annotated` (the default): the sheet's onset and apex.
- `annotated` with `key_frame_shift` = k > 0: onset and apex each moved by an offset drawn
  uniformly from -k..k, from a generator seeded by (`key_frame_seed`, the clip's key), so the
  same settings give the same frames on any machine and in any order. A moved frame that is
  not on disk steps back toward the annotated one; the onset stays before the offset and the
  apex after the onset and at most the offset (the annotated offset is kept: it closes the
  clip).
- `middle`: the apex is the middle frame of onset..offset (rounded down), a baseline that
  needs no model and no annotation of the apex.
- `peak-flow`: the apex is the frame whose face moved most from both ends (the smaller of the
  mean TV-L1 magnitudes onset -> n and n -> offset, on the clip's face crops downscaled to
  64 px for speed; the first on a tie), as `mer-bench predict` estimates it for an
  unannotated clip (datasets/user_clip.py, at the crop size). It reads every frame
  onset..offset, so the estimate is made when the bundle is made.
"""

from __future__ import annotations

import hashlib

import numpy as np

from mer_bench.datasets.clip import Clip
from mer_bench.datasets.errors import ClipError

KEY_FRAME_MODES = ("annotated", "middle", "peak-flow")


def check_key_frames(mode: str, shift: int, seed: int) -> None:
    """A clear error at the settings, not at the first clip."""
    if mode not in KEY_FRAME_MODES:
        raise ValueError(f"key_frames {mode!r}; expected one of {', '.join(KEY_FRAME_MODES)}")
    for name, value in (("key_frame_shift", shift), ("key_frame_seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    if shift and mode != "annotated":
        raise ValueError(f"key_frame_shift moves the annotated key frames; key_frames {mode!r} "
                         "does not read them (give one or the other)")


def shift_offsets(clip_key: str, shift: int, seed: int) -> tuple[int, int]:
    """The (onset, apex) offsets in -shift..shift drawn for one clip: a function of the seed
    and the clip's key only."""
    entropy = int.from_bytes(hashlib.sha256(f"{seed}:{clip_key}".encode()).digest()[:8], "big")
    drawn = np.random.default_rng(entropy).integers(-shift, shift + 1, size=2)
    return int(drawn[0]), int(drawn[1])


def _on_disk(clip: Clip, wanted: int, annotated: int) -> int:
    """`wanted`, or the nearest frame toward `annotated` that is on disk."""
    step = 1 if annotated > wanted else -1
    number = wanted
    while number != annotated and not clip.frame_path(number).is_file():
        number += step
    return number


def shifted(clip: Clip, shift: int, seed: int) -> tuple[int, int]:
    """The clip's (onset, apex) moved by its seeded offsets, kept on disk and in order."""
    d_onset, d_apex = shift_offsets(clip.key, shift, seed)
    last = clip.offset
    onset = _on_disk(clip, min(clip.onset + d_onset, last - 1), clip.onset)
    apex = _on_disk(clip, min(max(clip.apex + d_apex, onset + 1), last), clip.apex)
    return onset, min(max(apex, onset + 1), last)


def key_frame_numbers(clip: Clip, mode: str = "annotated", shift: int = 0,
                      seed: int = 0) -> dict[str, int]:
    """Role -> frame number of the onset, apex and offset a bundle of these settings reads.
    Under `peak-flow` the apex is not known before the frames are: it is absent here."""
    if mode == "peak-flow":
        _check_span(clip, mode)
        return {"onset": clip.onset, "offset": clip.offset}
    if mode == "middle":
        _check_span(clip, mode)
        return {"onset": clip.onset, "apex": (clip.onset + clip.offset) // 2,
                "offset": clip.offset}
    if clip.apex is None:
        raise ClipError(clip.key, "no apex frame in the annotation")
    if shift and clip.offset > clip.onset:
        onset, apex = shifted(clip, shift, seed)
        return {"onset": onset, "apex": apex, "offset": clip.offset}
    return {"onset": clip.onset, "apex": clip.apex, "offset": clip.offset}


def _check_span(clip: Clip, mode: str) -> None:
    if clip.offset - clip.onset < 2:
        raise ClipError(clip.key, f"key_frames {mode!r} estimates the apex between onset and "
                        f"offset, which needs a frame between them; onset {clip.onset}, offset "
                        f"{clip.offset}")


def motion_from_ends(crops: dict[int, np.ndarray]) -> dict[int, float]:
    """For each frame of `crops` (number -> face crop, onset..offset), how far its face moved
    from both ends: the smaller of the mean TV-L1 magnitudes first -> n and n -> last. Head
    drift grows toward one end and is small at the other, so it does not win as the magnitude
    from the onset alone does."""
    from mer_bench.datasets.flow import tvl1_flow

    def moved(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(tvl1_flow(a, b), axis=-1).mean())

    numbers = sorted(crops)
    first, last = crops[numbers[0]], crops[numbers[-1]]
    return {n: min(moved(first, crops[n]), moved(crops[n], last)) for n in numbers}


def peak_flow_apex(crops: dict[int, np.ndarray]) -> int:
    """The frame between the ends of `crops` that moved most from both (`motion_from_ends`);
    the first such frame on a tie."""
    numbers = sorted(crops)
    magnitudes = motion_from_ends({n: crops[n] for n in numbers})
    return max(numbers[1:-1], key=lambda n: (magnitudes[n], -n))
