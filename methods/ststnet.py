"""STSTNet (Liong, See, Wong, Phan, "Shallow Triple Stream Three-dimensional CNN (STSTNet) for
micro-expression recognition", FG 2019).

Input: onset->apex TV-L1 flow u, v and optical strain at 28x28 (view `flow_strain_28`). Three
parallel 3x3 conv branches of 3, 5 and 8 filters with ReLU, each max-pooled (3x3, stride 3,
padding 1: 28 -> 10), concatenated (16 channels), average-pooled (2x2, stride 2: 10 -> 5),
flattened (400) into one linear classifier.

Departures: the paper trains with its own learning rate and epochs per protocol; here it is
trained by the shared loop (Adam 1e-3, class-weighted cross-entropy, fixed budget) like every
other learned method, so the comparison is under one recipe.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.training import Recipe, TorchMethod


class STSTNetModel(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, filters: tuple[int, ...] = (3, 5, 8)):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
                          nn.MaxPool2d(3, stride=3, padding=1))
            for width in filters
        )
        self.pool = nn.AvgPool2d(2, stride=2)
        self.classifier = nn.Linear(sum(filters) * 5 * 5, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.classifier(self.pool(features).flatten(1))


class STSTNet(TorchMethod):
    views = ("flow_strain_28",)
    recipe = Recipe(iterations=400, batch_size=32, lr=1e-3)

    def build_model(self, num_classes: int) -> nn.Module:
        return STSTNetModel(num_classes)
