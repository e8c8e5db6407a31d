"""RetinaFace (Deng et al., CVPR 2020), built to load the Pytorch_Retinaface release's files.

The paper's detector. Its checkpoints (`mobilenet0.25_Final.pth`, `Resnet50_Final.pth`) are
plain state dicts saved from DataParallel (every key starts with `module.`), so the modules
here carry exactly the release's names (`body.stage1.0.0.weight`, `fpn.output1.0.weight`,
`ssh1.conv7x7_3.1.running_var`, `ClassHead.0.conv1x1.bias`, ...) and loading is strict: a
missing, extra or misshapen key is an error, never a silently half-random network. Nothing is
downloaded; the user gives the file.

Inference as the release does it: BGR float pixels minus (104, 117, 123), no resize, two
anchors per location at strides 8/16/32, boxes decoded with variances (0.1, 0.2), then a
confidence threshold, top-k and NMS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MEAN_BGR = (104.0, 117.0, 123.0)
STEPS = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))  # pixels, per pyramid level
VARIANCE = (0.1, 0.2)
TOP_K = 5000  # candidates kept before NMS, as the release's detect.py
KEEP_TOP_K = 750  # detections kept after NMS, likewise


class WeightsError(ValueError):
    """A RetinaFace weights file that cannot be used: unreadable, another network, wrong keys."""


class WeightsNotFound(WeightsError, FileNotFoundError):
    """The RetinaFace weights file does not exist (nothing is downloaded in its place)."""


@dataclass(frozen=True)
class Variant:
    backbone: str
    body_channels: tuple[int, int, int]  # channels of the three maps the FPN reads
    width: int  # FPN/SSH channels
    marker: str  # a key only this variant's checkpoints hold (after the prefix is stripped)


VARIANTS = {
    "mobilenet0.25": Variant("mobilenet0.25", (64, 128, 256), 64, "body.stage1.0.0.weight"),
    "resnet50": Variant("resnet50", (512, 1024, 2048), 256, "body.layer1.0.conv1.weight"),
}
ALIASES = {"mobilenet": "mobilenet0.25", "mnet": "mobilenet0.25", "resnet": "resnet50",
           "resnet-50": "resnet50", "re50": "resnet50"}  # the release's config says "Resnet50"


def variant_name(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in VARIANTS:
        raise WeightsError(f"unknown RetinaFace network {name!r}; known: {', '.join(VARIANTS)}")
    return key


# Building blocks. Each is an nn.Sequential so that its parameters are numbered the way the
# release's checkpoints number them (conv = .0, batch norm = .1, second conv = .3, ...).

def _conv_bn(inp: int, out: int, stride: int = 1, kernel: int = 3,
             leaky: float | None = 0.0) -> nn.Sequential:
    """Conv (no bias) + batch norm, then a leaky ReLU unless `leaky` is None."""
    layers = [nn.Conv2d(inp, out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(out)]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky, inplace=True))
    return nn.Sequential(*layers)


def _conv_dw(inp: int, out: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """MobileNet's depthwise-separable unit: 3x3 per channel, then 1x1 across channels."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
        nn.LeakyReLU(leaky, inplace=True),
        nn.Conv2d(inp, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out),
        nn.LeakyReLU(leaky, inplace=True),
    )


class MobileNetBody(nn.Module):
    """MobileNet-V1 at width 0.25; stage1/2/3 end at strides 8/16/32."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2, leaky=0.1), _conv_dw(8, 16, 1), _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1), _conv_dw(32, 64, 2), _conv_dw(64, 64, 1))
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2),
                                    *(_conv_dw(128, 128, 1) for _ in range(5)))
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class ResNetBody(nn.Module):
    """torchvision's ResNet-50 without its pooling and classifier; layer2/3/4 at strides 8/16/32."""

    def __init__(self):
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None)  # the checkpoint supplies every weight
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(name, getattr(net, name))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        c2 = self.layer2(x)
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


class FPN(nn.Module):
    """Top-down feature pyramid: 1x1 lateral convs, nearest upsampling, a 3x3 merge conv."""

    def __init__(self, channels: tuple[int, int, int], width: int):
        super().__init__()
        leaky = 0.1 if width <= 64 else 0.0
        self.output1 = _conv_bn(channels[0], width, kernel=1, leaky=leaky)
        self.output2 = _conv_bn(channels[1], width, kernel=1, leaky=leaky)
        self.output3 = _conv_bn(channels[2], width, kernel=1, leaky=leaky)
        self.merge1 = _conv_bn(width, width, leaky=leaky)
        self.merge2 = _conv_bn(width, width, leaky=leaky)

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        p3 = self.output3(maps[2])
        p2 = self.output2(maps[1])
        p2 = self.merge2(p2 + F.interpolate(p3, size=p2.shape[-2:], mode="nearest"))
        p1 = self.output1(maps[0])
        p1 = self.merge1(p1 + F.interpolate(p2, size=p1.shape[-2:], mode="nearest"))
        return [p1, p2, p3]


class SSH(nn.Module):
    """Context module: 3x3, 5x5 and 7x7 receptive fields (stacked 3x3 convs), concatenated."""

    def __init__(self, width: int):
        super().__init__()
        leaky = 0.1 if width <= 64 else 0.0
        quarter = width // 4
        self.conv3X3 = _conv_bn(width, width // 2, leaky=None)
        self.conv5X5_1 = _conv_bn(width, quarter, leaky=leaky)
        self.conv5X5_2 = _conv_bn(quarter, quarter, leaky=None)
        self.conv7X7_2 = _conv_bn(quarter, quarter, leaky=leaky)
        self.conv7x7_3 = _conv_bn(quarter, quarter, leaky=None)  # lower-case x, as released

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        five = self.conv5X5_1(x)
        seven = self.conv7X7_2(five)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(five), self.conv7x7_3(seven)], 1))


class _Head(nn.Module):
    """A 1x1 conv giving `values` numbers for each of the two anchors at every location."""

    def __init__(self, width: int, values: int, anchors: int = 2):
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(width, anchors * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)  # locations row-major, anchors within
        return out.reshape(out.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """Body -> FPN -> SSH x3 -> class/box/landmark heads; forward gives raw predictions."""

    def __init__(self, network: str = "mobilenet0.25"):
        super().__init__()
        self.network = variant_name(network)
        variant = VARIANTS[self.network]
        self.body = MobileNetBody() if self.network == "mobilenet0.25" else ResNetBody()
        self.fpn = FPN(variant.body_channels, variant.width)
        self.ssh1, self.ssh2, self.ssh3 = (SSH(variant.width) for _ in range(3))
        self.ClassHead = nn.ModuleList(_Head(variant.width, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(variant.width, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(variant.width, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(box offsets (B, N, 4), class logits (B, N, 2): background, face,
        landmark offsets (B, N, 10)), N anchors in prior_boxes' order."""
        pyramid = self.fpn(self.body(x))
        features = [ssh(p) for ssh, p in zip((self.ssh1, self.ssh2, self.ssh3), pyramid)]
        return tuple(torch.cat([head[i](f) for i, f in enumerate(features)], 1)
                     for head in (self.BboxHead, self.ClassHead, self.LandmarkHead))


def prior_boxes(height: int, width: int) -> torch.Tensor:
    """Anchors (N, 4) as (cx, cy, w, h) in fractions of the image, in the heads' output order:
    level by level, locations row-major, the two anchor sizes innermost."""
    levels = []
    for step, sizes in zip(STEPS, ANCHOR_SIZES):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy = (torch.arange(rows, dtype=torch.float32) + 0.5) * step / height
        cx = (torch.arange(cols, dtype=torch.float32) + 0.5) * step / width
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")
        for_size = [torch.stack([cx, cy, torch.full_like(cx, s / width),
                                 torch.full_like(cx, s / height)], -1) for s in sizes]
        levels.append(torch.stack(for_size, 2).reshape(-1, 4))
    return torch.cat(levels)


def decode_boxes(offsets: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Predicted offsets (N, 4) against their anchors -> corners (x1, y1, x2, y2), as fractions:
    centre moves by offset * 0.1 * anchor size, size scales by exp(offset * 0.2)."""
    centre = priors[:, :2] + offsets[:, :2] * VARIANCE[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(offsets[:, 2:] * VARIANCE[1])
    return torch.cat([centre - size / 2, centre + size / 2], 1)


NMS_AREAS = ("exact", "plus_one")


def plus_one_nms(boxes: torch.Tensor, iou: float) -> torch.Tensor:
    """Greedy NMS over boxes sorted best first, measuring widths and heights as x2 - x1 + 1
    (pixel-inclusive corners), the convention of the Pytorch_Retinaface release's CPU NMS;
    indices of the boxes kept, best first."""
    x1, y1, x2, y2 = boxes.double().unbind(1)
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    alive = torch.ones(len(boxes), dtype=torch.bool)
    kept = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        kept.append(i)
        width = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1) + 1).clamp(min=0)
        height = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1) + 1).clamp(min=0)
        overlap = width * height / (areas[i] + areas - width * height)
        alive &= overlap <= iou
    return torch.tensor(kept, dtype=torch.long)


def select_detections(boxes: torch.Tensor, scores: torch.Tensor, confidence: float, nms: float,
                      top_k: int = TOP_K, keep_top_k: int = KEEP_TOP_K,
                      nms_area: str = "exact") -> tuple[torch.Tensor, torch.Tensor]:
    """Scores above `confidence`, the top_k best, NMS at IoU `nms`; best first. `nms_area`:
    "exact" (torchvision's: areas of the corners as given) or "plus_one" (the release's)."""
    from torchvision.ops import nms as torchvision_nms

    if nms_area not in NMS_AREAS:
        raise ValueError(f"NMS area convention {nms_area!r}: choose {' or '.join(NMS_AREAS)}")
    keep = scores > confidence
    boxes, scores = boxes[keep], scores[keep]
    order = torch.sort(scores, descending=True, stable=True).indices[:top_k]
    boxes, scores = boxes[order], scores[order]
    kept = (torchvision_nms(boxes, scores, nms) if nms_area == "exact"
            else plus_one_nms(boxes, nms))[:keep_top_k]
    return boxes[kept], scores[kept]


def to_input(bgr: np.ndarray) -> torch.Tensor:
    """An 8-bit BGR image (H, W, 3) -> the network's input (1, 3, H, W): pixels minus the mean."""
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"RetinaFace takes a BGR image (H, W, 3), got shape {bgr.shape}")
    pixels = torch.from_numpy(np.ascontiguousarray(bgr, dtype=np.float32))
    pixels = pixels - torch.tensor(MEAN_BGR)
    return pixels.permute(2, 0, 1).unsqueeze(0).contiguous()


@torch.inference_mode()
def detect_faces(net: RetinaFace, bgr: np.ndarray, confidence: float = 0.9, nms: float = 0.4,
                 nms_area: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Every face in a BGR image: boxes (K, 4) as pixel corners x1, y1, x2, y2 (float, not
    clipped) and their scores (K,), best first."""
    height, width = bgr.shape[:2]
    offsets, logits, _ = net(to_input(bgr))
    priors = prior_boxes(height, width)
    if priors.shape[0] != offsets.shape[1]:
        raise RuntimeError(f"{offsets.shape[1]} predictions for {priors.shape[0]} anchors "
                           f"at {width}x{height}")
    boxes = decode_boxes(offsets[0], priors) * torch.tensor([width, height, width, height])
    scores = F.softmax(logits[0], dim=-1)[:, 1]
    boxes, scores = select_detections(boxes, scores, confidence, nms, nms_area=nms_area)
    return boxes.numpy(), scores.numpy()


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict:
    """Keys as the network names them: DataParallel saved every one with `module.` in front."""
    return {key.removeprefix(prefix): value for key, value in state.items()}


def infer_network(state: Mapping[str, torch.Tensor]) -> str | None:
    """Which variant a (prefix-stripped) state dict is, by a key only that variant has."""
    found = [name for name, variant in VARIANTS.items() if variant.marker in state]
    return found[0] if len(found) == 1 else None


def weights_not_found(path: Path) -> WeightsNotFound:
    where = "is a folder, not a file" if path.is_dir() else "does not exist"
    return WeightsNotFound(f"RetinaFace weights {path} {where}; give the Pytorch_Retinaface "
                           "release's mobilenet0.25_Final.pth or Resnet50_Final.pth (nothing "
                           "is downloaded)")


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise weights_not_found(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - truncated zip, no torch file, pickled objects...
        first = (str(error).splitlines() or ["(no message)"])[0][:200]
        size = path.stat().st_size
        cause = f"{type(error).__name__}: {first}; the file has {size} bytes"
        raise WeightsError(f"RetinaFace weights {path} cannot be read as a PyTorch checkpoint "
                           f"({cause})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a training checkpoint wrapping the weights
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor)
                                                 for v in state.values()):
        raise WeightsError(f"RetinaFace weights {path} hold a {type(state).__name__}, not a "
                           "state dict of tensors")
    # Float32 throughout, whatever precision the file was saved in.
    return {key: value.float() if value.is_floating_point() else value
            for key, value in strip_prefix(state).items()}


def _first(keys, n: int = 5) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" (and {len(keys) - n} more)" if len(keys) > n else "")


def load_retinaface(path: str | Path, network: str | None = None) -> RetinaFace:
    """The network with a release checkpoint's weights, in eval mode. `network` is
    "mobilenet0.25" or "resnet50"; None reads it from the file's keys."""
    path = Path(path)
    state = _read_state(path)
    found = infer_network(state)
    if network is None and found is None:
        raise WeightsError(f"RetinaFace weights {path}: neither a mobilenet0.25 nor a resnet50 "
                           f"checkpoint (no key {VARIANTS['mobilenet0.25'].marker!r} or "
                           f"{VARIANTS['resnet50'].marker!r}); its first keys: {_first(state)}")
    expected = variant_name(network) if network is not None else found
    with torch.device("meta"):  # shapes only: the file gives every value (ResNet-50 init: ~1 s)
        net = RetinaFace(expected)
    wanted = net.state_dict()
    # Batch-norm step counters do not change inference; files saved before they existed lack them.
    for key in wanted:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.tensor(0)
    missing, unexpected = set(wanted) - set(state), set(state) - set(wanted)
    misshapen = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
                 for k, v in wanted.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or misshapen:
        problems = [f"{label}: {_first(keys)}" for label, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected),
                     ("wrong shapes", misshapen)) if keys]
        seems = f"; its keys look like {found}" if found and found != expected else ""
        raise WeightsError(f"RetinaFace weights {path} do not fit the {expected} network{seems}: "
                           + "; ".join(problems))
    net.load_state_dict(state, strict=True, assign=True)
    return net.eval()
