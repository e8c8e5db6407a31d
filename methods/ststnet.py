"""STSTNet (S.-T. Liong, Y. S. Gan, J. See, H.-Q. Khor, Y.-C. Huang, "Shallow Triple Stream
Three-dimensional CNN (STSTNet) for Micro-expression Recognition", FG 2019), as its authors'
PyTorch release has it (christy1206/STSTNet, `main.py`, commit 1afb56e).

Network (`STSTNetRelease`, the release's module names, so its 68 per-subject state_dicts
load as they are): three branches of 3x3 convolutions with 3, 5 and 8 filters, padding 2
(28 -> 30), each followed by ReLU, batch norm, max pooling (3x3, stride 3, padding 1: 30 -> 10)
and dropout 0.5; the 16 maps concatenated, average-pooled (2x2, stride 2: 10 -> 5), flattened
(400) into one linear layer. Input (view `ststnet_release_28`): the onset->apex u, v and
optical strain at 28x28, each min-max scaled to 0..255, in the order OpenCV reads the
released images (strain, v, u), unscaled, as `main.py` feeds them.

Schedule (`schedule="release"`, the default, as `main.py`): Adam lr 5e-5 (betas 0.9/0.999, no
weight decay), batch 256, 800 epochs over the fold's training images in a fixed order without
shuffling (the last batch of an epoch partial), unweighted cross-entropy, the last epoch's
weights. `schedule="shared"`: the harness's shared recipe (Adam 1e-3, batch 32, 400
iterations of shuffled full batches, class-weighted cross-entropy).

`form="paper"` (registered as `ststnet.paper`): the network as the paper describes it, with
no batch norm and no dropout, padding 1 (28 -> 28 -> 10), trained by the shared recipe on the
raw flow (`flow_strain_28`); the released weights do not fit it.

Departures from the release, all deliberate:
- Training order: the release reads its images class folder by class folder in the order
  `os.listdir` returns (file-system dependent); here the training samples are sorted by
  class, and within a class kept in the task's order.
- Fold weights are trained from a seed derived from the job (the release does not seed).
- Run on the harness's own preprocessing, `ststnet_release_28` scales the harness's TV-L1 flow
  as the released images are scaled; on the released images it is the images themselves.
"""

from __future__ import annotations

import torch
from torch import nn

from mer_bench.methods.training import Recipe, TorchMethod

RELEASE_SCHEDULE = Recipe(batch_size=256, lr=5e-5, epochs=800, order="by_class",
                          class_weighted=False)
SHARED_RECIPE = Recipe(iterations=400, batch_size=32, lr=1e-3)
FILTERS = (3, 5, 8)


class STSTNetRelease(nn.Module):
    """The release's network; attribute names as in its state_dicts (conv1-3, bn1-3, fc)."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3):
        super().__init__()
        for index, width in enumerate(FILTERS, 1):
            setattr(self, f"conv{index}", nn.Conv2d(in_channels, width, 3, padding=2))
            setattr(self, f"bn{index}", nn.BatchNorm2d(width))
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=3, padding=1)
        self.avgpool = nn.AvgPool2d(2, stride=2)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(sum(FILTERS) * 5 * 5, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = []
        for index in range(1, len(FILTERS) + 1):
            conv, norm = getattr(self, f"conv{index}"), getattr(self, f"bn{index}")
            branches.append(self.dropout(self.maxpool(norm(self.relu(conv(x))))))
        return self.fc(self.avgpool(torch.cat(branches, dim=1)).flatten(1))


class STSTNetPaper(nn.Module):
    """The paper's description: no batch norm, no dropout, padding 1."""

    def __init__(self, num_classes: int, in_channels: int = 3):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
                          nn.MaxPool2d(3, stride=3, padding=1))
            for width in FILTERS
        )
        self.pool = nn.AvgPool2d(2, stride=2)
        self.classifier = nn.Linear(sum(FILTERS) * 5 * 5, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.classifier(self.pool(features).flatten(1))


class STSTNet(TorchMethod):
    version = "2"  # 2: the release's network, input and schedule (1: the paper form only)
    paper_name = "STSTNet"
    input_shape = (3, 28, 28)

    def __init__(self, form: str = "release", schedule: str | None = None):
        if form not in ("release", "paper"):
            raise ValueError(f"STSTNet form {form!r}: choose release or paper")
        schedule = schedule or ("release" if form == "release" else "shared")
        if schedule not in ("release", "shared"):
            raise ValueError(f"STSTNet schedule {schedule!r}: choose release or shared")
        self.form, self.schedule = form, schedule
        self.views = ("ststnet_release_28",) if form == "release" else ("flow_strain_28",)
        self.recipe = RELEASE_SCHEDULE if schedule == "release" else SHARED_RECIPE
        self.final_layers = ("fc.",) if form == "release" else ("classifier.",)

    def build_model(self, num_classes: int) -> nn.Module:
        if self.form == "release":
            return STSTNetRelease(num_classes)
        return STSTNetPaper(num_classes)
