"""A clip of the user's own, for `predict`: a folder of numbered frames or a video file, made
into the same `Clip` record the dataset adapters make, so it goes through the same
preprocessing as every training clip.

A folder's frames are numbered as their file names number them (`img12.jpg` is frame 12); a
video's frames are numbered from 0 in the order they decode, and written as lossless PNG
files to a folder first, so what the pipeline reads is exactly what the video holds.
`--apex auto` picks the frame that moved most from both ends (`flow_magnitudes` says how).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2

from mer_bench.datasets.clip import Clip
from mer_bench.datasets.errors import ClipError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")  # the last run of digits in a file's stem
DATASET = "user"  # the dataset name a user clip's key carries


def frame_numbers(folder: Path) -> tuple[str, dict[int, Path]]:
    """The folder's frames by number, and the template of their paths (`Clip.frame_template`).
    Every image must be named alike (same text around one number), else it is not one clip."""
    if not folder.is_dir():
        raise ClipError(folder.name, "frames folder not found", str(folder))
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ClipError(folder.name, f"no frames: no {'/'.join(IMAGE_SUFFIXES)} files in the "
                        "folder", str(folder))
    shapes, numbers, lengths = set(), {}, set()
    for path in images:
        match = NUMBERED.match(path.stem)
        if match is None:
            raise ClipError(folder.name, f"frame {path.name} has no number in its name; "
                            "expected numbered frames such as img1.jpg, img2.jpg", str(path))
        prefix, digits, rest = match.groups()
        shapes.add((prefix, rest, path.suffix))
        numbers[int(digits)] = path
        lengths.add((len(digits), digits.startswith("0") and len(digits) > 1))
    padded = {length for length, zero in lengths if zero}  # zero-padded to one width
    if len(shapes) > 1 or len(padded) > 1 or any(
            length < max(padded) for length, _ in lengths if padded):
        names = ", ".join(sorted(p.name for p in images[:3])) + ", ..."
        raise ClipError(folder.name, f"frames named in more than one way ({names}); expected "
                        "one numbered sequence (img1.jpg, img2.jpg ... or img0001.jpg, "
                        "img0002.jpg ...)", str(folder))
    prefix, rest, suffix = shapes.pop()
    number = f"{{n:0{max(padded)}d}}" if padded else "{n}"
    return _escaped(f"{folder}{os.sep}{prefix}") + number + _escaped(rest + suffix), numbers


def _escaped(text: str) -> str:
    """Text as a literal part of a format template (a folder named with braces stays one)."""
    return text.replace("{", "{{").replace("}", "}}")


def folder_clip(folder: Path, onset: int | None = None, apex: int | None = None,
                offset: int | None = None) -> Clip:
    """The clip of a frames folder: onset and offset default to its first and last frame; apex
    None means it is still to be found (`auto_apex`). Key frames must be frames it has."""
    template, numbers = frame_numbers(folder)
    first, last = min(numbers), max(numbers)
    onset = first if onset is None else onset
    offset = last if offset is None else offset
    clip = Clip(DATASET, "own", folder.name, "unknown", onset, apex, offset, template)
    if len(numbers) < 2:
        raise ClipError(clip.key, f"too few frames: {len(numbers)}; a clip needs at least 2 "
                        "(onset and apex)", str(folder))
    for role, n in (("onset", onset), ("apex", apex), ("offset", offset)):
        if n is not None and n not in numbers:
            raise ClipError(clip.key, f"{role} frame {n} is not in the folder (its frames are "
                            f"{first}..{last})", str(folder))
    if not onset <= (onset if apex is None else apex) <= offset:
        raise ClipError(clip.key, f"key frames out of order: onset {onset}, apex {apex}, offset "
                        f"{offset}; expected onset <= apex <= offset", str(folder))
    if offset - onset < 1:
        raise ClipError(clip.key, f"too few frames from onset {onset} to offset {offset}; a "
                        "clip needs at least 2", str(folder))
    return clip


def video_frames(video: Path, into: Path) -> Path:
    """Decodes every frame of `video` into `into` as frame{n}.png, n from 0, losslessly."""
    if not video.is_file():
        raise ClipError(video.name, "video file not found", str(video))
    capture = cv2.VideoCapture(str(video))
    count = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            into.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(into / f"frame{count}.png"), frame):
                raise ClipError(video.name, f"frame {count} could not be written to {into}")
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise ClipError(video.name, "unreadable video: no frame could be decoded (OpenCV's "
                        f"FFmpeg reads {'/'.join(VIDEO_SUFFIXES)} among others)", str(video))
    if count < 2:
        raise ClipError(video.name, f"too few frames: the video holds {count}; a clip needs at "
                        "least 2 (onset and apex)", str(video))
    return into


def flow_magnitudes(clip: Clip, settings) -> dict[int, float]:
    """For each frame n from onset to offset, how far its face moved from both ends
    (datasets/key_frames.motion_from_ends), on the face crops of the clip's own box and crop
    size (the training preprocessing's). On the synthetic default: 0.75 frames from the
    annotated apex on average over 16 clips, against 4.75 for the onset's magnitude alone."""
    from mer_bench.datasets.key_frames import motion_from_ends
    from mer_bench.datasets.preprocess import face_box, face_crop, grey_frame

    onset = grey_frame(clip, clip.onset, "onset")
    box = face_box(clip, onset, settings)
    return motion_from_ends({
        n: face_crop(box, onset if n == clip.onset else grey_frame(clip, n, "sequence"), settings)
        for n in range(clip.onset, clip.offset + 1)})


def auto_apex(clip: Clip, settings) -> tuple[Clip, dict[int, float]]:
    """The clip with its apex at the frame that moved most from both ends (`flow_magnitudes`;
    the first such frame on a tie), and the values it was chosen from."""
    from dataclasses import replace

    magnitudes = flow_magnitudes(clip, settings)
    apex = max(magnitudes, key=lambda n: (magnitudes[n], -n))
    return replace(clip, apex=apex), magnitudes
