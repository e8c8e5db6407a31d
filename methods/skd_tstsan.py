"""SKD-TSTSAN (Zhu et al., "Three-Stream Temporal-Shift Attention Network Based on
Self-Knowledge Distillation for Micro-Expression Recognition", arXiv 2406.17538).

Three streams over one 38-channel 48x48 input (view `skd_tstsan_38`): S (whole apex and
onset faces), L (their 4x4 grids of blocks), T (TV-L1 flows onset->apex and apex->offset as
two temporal segments). Switches: `mag` (a motion-magnification module per stream), `eca`
(enhanced ECA in the L-stream), `tsm` (temporal shift in the T-stream), `skd` (two auxiliary
classifiers trained by self-knowledge distillation). With every switch off it is the paper's
improved TSCNN baseline. Facts: the paper and measurements of its authors' release (MIT
licence), checked in tests/methods/test_skd_tstsan.py; docs/architecture.md says where they come from.

Departures (also on its page, docs/methods/skd_tstsan.md):
- Switches off, the streams' first convs take the raw inputs at 48x48 (S: the apex face, L:
  the 16 apex blocks, T: each flow), so the maps are 44 -> 22 -> 11; the reference gives no
  sizes for that baseline, this is our reading of "the conv layers then take the raw inputs".
- Focal-loss class weights come from the fold's training subjects (the release hard-codes
  whole-dataset counts, which include the held-out subject).
- The magnifier follows the authors' release, not the paper's text: the manipulator's g is a
  7x7 convolution (the paper says 3x3) and the amplified difference is added to the apex
  encoding (the paper adds it to M_a); methods/layers.py `Manipulator`.
- The release's feature-loss mask (entries where either feature > 0) is omitted: features
  are means of ReLU outputs (times positive ECA weights), so both are >= 0 and the masked-out
  entries are those where both are 0, which add nothing to the sum. Same value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_bench.datasets.views import skd_tstsan_38
from mer_bench.methods.layers import EnhancedECA, Magnifier, TemporalShift
from mer_bench.methods.skd_tstsan_release import from_release, is_release_layout
from mer_bench.methods.training import Recipe, TorchMethod

HEADS = ("final", "ac1", "ac2")


@dataclass(frozen=True)
class Switches:
    mag: bool = True
    eca: bool = True
    tsm: bool = True
    skd: bool = True
    alpha: float = 2.0  # amplification factor
    segments: int = 2  # temporal domains of the T-stream


class ConvUnit(nn.Module):
    """[temporal shift of the input], conv, batch norm, ReLU, [enhanced ECA]."""

    def __init__(self, c_in: int, c_out: int, kernel: int, padding: int, eca: bool = False,
                 shift: bool = False, segments: int = 2):
        super().__init__()
        self.shift = TemporalShift(segments) if shift else nn.Identity()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=padding)
        self.bn = nn.BatchNorm2d(c_out)
        self.eca = EnhancedECA(c_out) if eca else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eca(F.relu(self.bn(self.conv(self.shift(x))), inplace=True))


class StreamBackbone(nn.Module):
    """Blocks 1-3 of one stream; returns the maps after blocks 1 and 2 and the pooled vector."""

    def __init__(self, c_in: int, eca: bool, shift: bool, segments: int):
        super().__init__()
        unit = dict(eca=eca, segments=segments)
        self.block1 = nn.Sequential(ConvUnit(c_in, 64, 5, 0, eca=eca),
                                    nn.MaxPool2d(5, stride=2, padding=2))
        self.block2 = nn.Sequential(ConvUnit(64, 64, 3, 1, shift=shift, **unit),
                                    ConvUnit(64, 64, 3, 1, shift=shift, **unit),
                                    nn.AvgPool2d(3, stride=2, padding=1))
        self.block3 = nn.Sequential(ConvUnit(64, 128, 3, 1, shift=shift, **unit),
                                    ConvUnit(128, 128, 3, 1, shift=shift, **unit))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        first = self.block1(x)
        second = self.block2(first)
        return first, second, self.block3(second).mean(dim=(2, 3))


class AuxiliaryBranch(nn.Module):
    """One stream's part of an auxiliary classifier: two conv units and global pooling."""

    def __init__(self, eca: bool, shift: bool, segments: int):
        super().__init__()
        unit = dict(eca=eca, shift=shift, segments=segments)
        self.body = nn.Sequential(ConvUnit(64, 128, 3, 1, **unit), ConvUnit(128, 128, 3, 1, **unit))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


class Classifier(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.dropout = nn.Dropout(0.2)
        self.linear = nn.Linear(384, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(features))


STREAMS = ("L", "S", "T")  # concatenation order of the features


class SKDTSTSAN(nn.Module):
    def __init__(self, num_classes: int, switches: Switches = Switches()):
        super().__init__()
        self.switches = s = switches
        raw_channels = {"L": 16, "S": 1, "T": 2}
        if s.mag:
            self.magnifiers = nn.ModuleDict({k: Magnifier(c, s.alpha) for k, c in raw_channels.items()})
        options = {k: dict(eca=s.eca and k == "L", shift=s.tsm and k == "T", segments=s.segments)
                   for k in STREAMS}
        self.backbones = nn.ModuleDict({
            k: StreamBackbone(32 if s.mag else raw_channels[k], **options[k]) for k in STREAMS})
        self.classifier = Classifier(num_classes)
        if s.skd:
            self.auxiliary = nn.ModuleList(
                nn.ModuleDict({k: AuxiliaryBranch(**options[k]) for k in STREAMS}) for _ in range(2))
            self.auxiliary_classifiers = nn.ModuleList(Classifier(num_classes) for _ in range(2))

    def stream_inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Splits the 38 channels; magnifies (apex vs onset; flows vs zero) when `mag` is on."""
        segments = self.switches.segments
        if x.shape[1] != 34 + 2 * segments:
            raise ValueError(f"{segments} temporal domains read 34 + 2 x {segments} channels, "
                             f"got {x.shape[1]}: prepare the data with --domains {segments}")
        flows = x[:, 34 : 34 + 2 * segments].reshape(-1, 2, *x.shape[2:])  # sample-major
        if not self.switches.mag:
            return {"L": x[:, 2:18], "S": x[:, 0:1], "T": flows}
        return {
            "L": self.magnifiers["L"](x[:, 18:34], x[:, 2:18]),
            "S": self.magnifiers["S"](x[:, 1:2], x[:, 0:1]),
            "T": self.magnifiers["T"](None, flows),
        }

    def _pool_segments(self, stream: str, vector: torch.Tensor) -> torch.Tensor:
        if stream != "T":
            return vector
        return vector.view(-1, self.switches.segments, vector.shape[1]).mean(dim=1)

    def forward_with_features(self, x: torch.Tensor) -> tuple[dict, dict]:
        """Logits and 384-d features of every classifier (the ACs only with `skd`)."""
        maps = {k: self.backbones[k](v) for k, v in self.stream_inputs(x).items()}
        features = {"final": torch.cat([self._pool_segments(k, maps[k][2]) for k in STREAMS], 1)}
        logits = {"final": self.classifier(features["final"])}
        if self.switches.skd:
            for index, (branches, classifier) in enumerate(
                    zip(self.auxiliary, self.auxiliary_classifiers)):
                head = HEADS[index + 1]
                features[head] = torch.cat(
                    [self._pool_segments(k, branches[k](maps[k][index])) for k in STREAMS], 1)
                logits[head] = classifier(features[head])
        return logits, features

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_with_features(x)[0]


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
               gamma: float = 2.0) -> torch.Tensor:
    """sum_i w_yi (1 - p_i)^gamma (-log p_i) / sum_i w_yi."""
    log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    sample_weights = weights[targets]
    losses = -sample_weights * (1 - log_p.exp()) ** gamma * log_p
    return losses.sum() / sample_weights.sum()


@dataclass(frozen=True)
class DistillationLoss:
    """FL(final) + sum over ACs of (1-l1) FL(AC) + l1 T^2 KL(final || AC) + l2 ||F_AC - F||^2."""

    l1: float = 0.1
    l2: float = 1e-6
    temperature: float = 3.0
    gamma: float = 2.0

    def __call__(self, logits: dict, features: dict, targets: torch.Tensor,
                 weights: torch.Tensor) -> torch.Tensor:
        loss = focal_loss(logits["final"], targets, weights, self.gamma)
        teacher_logits = logits["final"].detach()
        teacher_features = features["final"].detach()
        t = self.temperature
        teacher = F.softmax(teacher_logits / t, dim=1)
        for head in HEADS[1:]:
            if head not in logits:
                continue
            student = F.log_softmax(logits[head] / t, dim=1)
            # KL(teacher || student), batch mean: F.kl_div's value, written out because
            # vmap (fold-parallel training) has no fast rule for kl_div
            kl = (torch.xlogy(teacher, teacher) - teacher * student).sum() / len(teacher)
            feature_term = (features[head] - teacher_features).pow(2).sum()
            loss = loss + (1 - self.l1) * focal_loss(logits[head], targets, weights, self.gamma) \
                + self.l1 * t * t * kl + self.l2 * feature_term
        return loss


class SKDTSTSANMethod(TorchMethod):
    """The harness plugin: the paper's recipe (Adam 1e-3, betas 0.9/0.99, wd 5e-4, batch 16)."""

    version = "1"
    views = ("skd_tstsan_38",)
    paper_name = "SKD-TSTSAN"
    ablation_legend = ("SKD-TSTSAN (the paper's Table 5): Mag = motion magnification, ECA = "
                       "enhanced ECA in the L-stream, TSM = temporal shift in the T-stream, SKD = "
                       "self-knowledge distillation.")
    final_layers = ("classifier.", "auxiliary_classifiers.")  # the three final linear layers
    memory_format = torch.channels_last
    recipe = Recipe(iterations=200, batch_size=16, lr=1e-3, betas=(0.9, 0.99),
                    weight_decay=5e-4)

    def __init__(self, mag: bool = True, eca: bool = True, tsm: bool = True, skd: bool = True,
                 alpha: float = 2.0, segments: int = 2):
        self.switches = Switches(mag, eca, tsm, skd, alpha, segments)
        self.criterion = DistillationLoss()
        self.input_shape = (34 + 2 * segments, 48, 48)

    def ablation_switches(self) -> dict[str, bool]:
        """The paper's Table 5 columns: Mag, ECA, TSM, SKD."""
        s = self.switches
        return {"Mag": s.mag, "ECA": s.eca, "TSM": s.tsm, "SKD": s.skd}

    def sheet_panel(self, bundle: dict) -> tuple[str, np.ndarray]:
        """The apex's 16 L-stream blocks exactly as the view cuts them (channels 2-17)."""
        return "apex L-stream blocks", block_mosaic(skd_tstsan_38(bundle)[2:18])

    def gradcam_layer(self) -> str:
        """The S-stream's fourth convolution (the paper's Fig. 7: Grad-CAM at conv4)."""
        return "backbones.S.block3.0"

    def gradcam_image(self, sample: np.ndarray) -> np.ndarray:
        return sample[0]  # the apex face the S-stream reads (channel 0 of skd_tstsan_38)

    def build_model(self, num_classes: int) -> nn.Module:
        return SKDTSTSAN(num_classes, self.switches)

    def released_state(self, state: dict) -> dict:
        """A checkpoint in the release's names (its per-subject models, its CK+-pretrained
        start) in this model's: methods/skd_tstsan_release.py."""
        state = super().released_state(state)
        return from_release(state) if is_release_layout(state) else state

    def loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
             weights: torch.Tensor) -> torch.Tensor:
        logits, features = model.forward_with_features(inputs)
        return self.criterion(logits, features, targets, weights)


BLOCK_GAP = 3  # pixels between the 48x48 blocks of the mosaic


def block_mosaic(blocks: np.ndarray) -> np.ndarray:
    """16 blocks (48x48, in [0, 1]) in their 4x4 places, RGB, separated by orange lines."""
    side = 4 * 48 + 3 * BLOCK_GAP
    mosaic = np.empty((side, side, 3), np.float32)
    mosaic[:] = (1.0, 0.6, 0.0)
    for index, block in enumerate(blocks):
        row, col = divmod(index, 4)
        top, left = row * (48 + BLOCK_GAP), col * (48 + BLOCK_GAP)
        mosaic[top:top + 48, left:left + 48] = block[..., None]
    return mosaic
