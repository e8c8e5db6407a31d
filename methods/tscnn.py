"""TSCNN (Song, Li, Zong, Zhu, Zheng, Shi, Zhao, "Recognizing spontaneous micro-expression
using a three-stream convolutional neural network", IEEE Access 7, 2019).

Three streams over the 48x48 inputs of view `skd_tstsan_38` (the same crops SKD-TSTSAN
reads): static-spatial (the apex face), local-spatial (the apex's 4x4 blocks as 16 channels)
and dynamic-temporal (the flows onset->apex and apex->offset, u1 v1 u2 v2 as 4 channels).
Each stream is conv 5x5 (64) + ReLU, max pool 5 stride 2, two conv 3x3 (64) + ReLU, average
pool 3 stride 2, two conv 3x3 (128) + ReLU (48 -> 44 -> 22 -> 11); the three flattened maps
are concatenated and classified by one linear layer. It is SKD-TSTSAN's improved baseline
(`skd_tstsan.base`) without the batch norm, global average pooling and dropout that the
SKD-TSTSAN paper adds to it, which is how that paper describes the original.

Departures:
- The layer widths are those of the improved baseline (the SKD-TSTSAN release), minus its
  additions; TSCNN's own paper trains each stream with its own schedule and fuses late,
  here one network is trained end to end by the shared loop (Adam 1e-3, class-weighted
  cross-entropy, fixed budget).
- The dynamic-temporal stream stacks both flows as input channels (the improved baseline
  shares its weights across them as two segments).
- The apex is the annotated one; TSCNN's apex-spotting algorithm is not part of this harness.
"""

from __future__ import annotations

import torch
from torch import nn

from mer_bench.methods.training import Recipe, TorchMethod


def _stream(c_in: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, 64, 5), nn.ReLU(inplace=True), nn.MaxPool2d(5, stride=2, padding=2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(inplace=True),
        nn.Flatten(),
    )


class TSCNNModel(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.static, self.local, self.temporal = _stream(1), _stream(16), _stream(4)
        self.classifier = nn.Linear(3 * 128 * 11 * 11, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 38:
            raise ValueError(f"TSCNN reads the 38 channels of two temporal domains, got "
                             f"{x.shape[1]}: prepare the data with --domains 2")
        features = [self.static(x[:, 0:1]), self.local(x[:, 2:18]), self.temporal(x[:, 34:38])]
        return self.classifier(torch.cat(features, dim=1))


class TSCNN(TorchMethod):
    views = ("skd_tstsan_38",)
    paper_name = "TSCNN"
    input_shape = (38, 48, 48)
    memory_format = torch.channels_last
    recipe = Recipe(iterations=200, batch_size=16, lr=1e-3)

    def build_model(self, num_classes: int) -> nn.Module:
        return TSCNNModel(num_classes)
