"""OFF-ApexNet (Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on micro-expression recognition
system", Signal Processing: Image Communication 74, 2019).

Input: the horizontal and vertical TV-L1 flow from onset to apex at 28x28 (view `flow_28`).
Two streams, one per flow component, each two stages of 5x5 conv (6, then 16 filters, same
padding) + ReLU + 2x2 max pooling (28 -> 14 -> 7); the two flattened 784-d maps are
concatenated and classified by two fully connected layers of 1024 units (ReLU) and a linear
output.

Departures:
- Trained by the shared loop (Adam 1e-3 instead of the paper's optimiser and epochs,
  class-weighted cross-entropy, fixed budget), like every learned baseline here.
- The paper's flow is computed on its own crops (TV-L1, then resized); here it comes from the
  harness's shared bundle (the face box of the first frame, TV-L1 at the crop size), as for
  every other method.
"""

from __future__ import annotations

import torch
from torch import nn

from mer_bench.methods.training import Recipe, TorchMethod


def _stream() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(),
    )


class OFFApexNetModel(nn.Module):
    def __init__(self, num_classes: int, hidden: int = 1024):
        super().__init__()
        self.horizontal, self.vertical = _stream(), _stream()
        self.fusion = nn.Sequential(nn.Linear(2 * 16 * 7 * 7, hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.horizontal(x[:, 0:1]), self.vertical(x[:, 1:2])], dim=1)
        return self.classifier(self.fusion(features))


class OFFApexNet(TorchMethod):
    views = ("flow_28",)
    paper_name = "OFF-ApexNet"
    input_shape = (2, 28, 28)
    recipe = Recipe(iterations=400, batch_size=32, lr=1e-3)

    def build_model(self, num_classes: int) -> nn.Module:
        return OFFApexNetModel(num_classes)
