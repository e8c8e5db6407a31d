"""`mer-bench predict`: an exported model on a clip of the user's own (a folder of frames or
a video), through the preprocessing its training clips had: the class probabilities of every
head, and a picture of what the model saw."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mer_bench.benchmark.storage.model_files import ExportedModel
from mer_bench.datasets.clip import Clip
from mer_bench.datasets.user_clip import VIDEO_SUFFIXES, auto_apex, folder_clip, video_frames

APEX_AUTO = ("auto: the frame whose face moved most from both onset and offset (largest "
             "min of the mean TV-L1 magnitudes onset->n, n->offset)")


@dataclass
class ClipPrediction:
    """What `predict` found for one clip."""

    clip: Clip
    classes: tuple[str, ...]
    probabilities: dict[str, np.ndarray]  # head -> (K,) softmax of its logits
    apex_rule: str  # "given" or APEX_AUTO
    bundle: dict = field(repr=False)
    sample: np.ndarray = field(repr=False)  # the model's input (its first view's)
    magnitudes: dict[int, float] = field(default_factory=dict)  # --apex auto's, per frame

    def predicted(self, head: str = "final") -> str:
        return self.classes[int(self.probabilities[head].argmax())]

    def as_json(self) -> dict:
        return {"clip": self.clip.clip, "frames": self.clip.frame_template,
                "onset": self.clip.onset, "apex": self.clip.apex, "offset": self.clip.offset,
                "apex_rule": self.apex_rule, "classes": list(self.classes),
                "predicted": self.predicted(),
                "probabilities": {h: [float(p) for p in v] for h, v in self.probabilities.items()},
                **({"flow_magnitudes": {str(n): m for n, m in self.magnitudes.items()}}
                   if self.magnitudes else {})}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def user_clip(source: Path, frames_folder: Path, onset: int | None, apex: int | str | None,
              offset: int | None, settings) -> tuple[Clip, str, dict[int, float]]:
    """The clip of a frames folder or a video (decoded into `frames_folder`), its apex given
    or found (`apex="auto"`), the rule that gave it and the flow magnitudes it was chosen by."""
    from mer_bench.datasets.errors import ClipError

    if source.is_file() or source.suffix.lower() in VIDEO_SUFFIXES:
        source = video_frames(source, frames_folder)
    if apex is None:
        raise ClipError(source.name, "no apex given: give --apex N (a frame number) or "
                        "--apex auto")
    if apex == "auto":
        clip, magnitudes = auto_apex(folder_clip(source, onset, None, offset), settings)
        return clip, APEX_AUTO, magnitudes
    return folder_clip(source, onset, int(apex), offset), "given", {}


def predict_clip(exported: ExportedModel, clip: Clip, apex_rule: str = "given",
                 magnitudes: dict[int, float] | None = None) -> ClipPrediction:
    """The exported model's probabilities of every head on `clip`, prepared as its training
    clips were (the same bundle code, preprocessing settings and views)."""
    import torch

    from mer_bench.datasets.preprocess import make_bundle, read_frames
    from mer_bench.datasets.views import build_view
    from mer_bench.methods.base import Split

    settings = exported.preprocess()
    bundle = make_bundle(clip, read_frames(clip, settings), settings)
    method = exported.method()
    model = exported.model(method)
    views = {name: build_view(name, [bundle]) for name in method.views}
    inputs = method.inputs(Split(views, None, (clip.subject_key,), (clip.key,)))
    logits = method.predict(model, inputs, torch.device("cpu"))
    return ClipPrediction(clip, exported.classes,
                          {head: softmax(np.asarray(v[0], dtype=np.float64))
                           for head, v in logits.items()},
                          apex_rule, bundle, inputs[0].numpy(), magnitudes or {})


def predict_source(exported: ExportedModel, source: Path, onset: int | None = None,
                   apex: int | str | None = None, offset: int | None = None) -> ClipPrediction:
    """`predict_clip` of a frames folder or a video file (decoded to a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="mer-bench-video-") as frames:
        clip, rule, magnitudes = user_clip(Path(source), Path(frames), onset, apex, offset,
                                           exported.preprocess())
        return predict_clip(exported, clip, rule, magnitudes)


def flow_picture(flow: np.ndarray) -> np.ndarray:
    """A flow (H, W, 2) as RGB in [0, 1]: hue its direction, brightness its size (scaled to
    the largest)."""
    import cv2

    size, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    hsv = np.zeros((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = (angle * 90 / np.pi).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(255 * size / max(float(size.max()), 1e-6), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32) / 255.0


def what_it_saw(exported: ExportedModel, prediction: ClipPrediction) -> list[tuple]:
    """The panels of the prediction's picture: (title, image, overlay or None)."""
    import torch

    from mer_bench.methods.gradcam import grad_cam

    bundle, clip = prediction.bundle, prediction.clip
    faces = bundle["faces"].astype(np.float32) / 255.0
    panels = [(f"onset crop (frame {clip.onset})", faces[0], None),
              (f"apex crop (frame {clip.apex})", faces[1], None),
              ("flow onset->apex\n(hue: direction, brightness: size)",
               flow_picture(bundle["flows"][0]), None)]
    method = exported.method()
    shown = method.sheet_panel(bundle)
    if shown is not None:
        panels.append((shown[0], shown[1], None))
    layer = method.gradcam_layer()
    if layer is not None:
        cam, chosen = grad_cam(exported.model(method), layer, torch.from_numpy(prediction.sample))
        panels.append((f"Grad-CAM at {layer}\n(class {exported.classes[chosen]})",
                       method.gradcam_image(prediction.sample), cam))
    return panels
