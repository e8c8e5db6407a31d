"""Blocks shared by several methods: motion magnification, enhanced ECA, temporal shift.

Facts follow the SKD-TSTSAN paper (arXiv 2406.17538v3) and measurements of its authors'
release (MIT licence); tests/methods/test_skd_tstsan.py checks them.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """Magnification convs: reflection padding, no bias (so that encoder(0) == 0 exactly)."""
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False,
                     padding_mode="reflect")


class ResidualBlock(nn.Module):
    """conv3x3, ReLU, conv3x3, plus the input; no activation after the sum."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), nn.ReLU(inplace=True),
                                  _conv(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MagnificationEncoder(nn.Module):
    """The shape branch of Oh et al. (2018)'s encoder: C_in x 48 x 48 -> 32 x 24 x 24."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            _conv(in_channels, 16, 7), nn.ReLU(inplace=True),
            _conv(16, 32, 3, stride=2), nn.ReLU(inplace=True),
            *(ResidualBlock() for _ in range(3)),
            _conv(32, 32, 3), nn.ReLU(inplace=True),
            *(ResidualBlock() for _ in range(2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Manipulator(nn.Module):
    """out = B + h(g(B - A) * alpha): amplifies the difference between two encodings.

    As the SKD-TSTSAN release has it (a departure from the paper's text, which says g is 3x3
    and adds to M_a): g is a 7x7 convolution and the result is added to B, the apex's (the
    target's) encoding."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.g = nn.Sequential(_conv(channels, channels, 7), nn.ReLU(inplace=True))
        self.h = nn.Sequential(_conv(channels, channels, 3), ResidualBlock(channels))

    def forward(self, a: torch.Tensor | None, b: torch.Tensor, alpha: float) -> torch.Tensor:
        """`a` None stands for an all-zero encoding (the T-stream's "no motion" reference)."""
        difference = b if a is None else b - a
        return b + self.h(self.g(difference) * alpha)


class Magnifier(nn.Module):
    """One stream's encoder and manipulator, trained end to end."""

    def __init__(self, in_channels: int, alpha: float = 2.0):
        super().__init__()
        self.encoder = MagnificationEncoder(in_channels)
        self.manipulator = Manipulator()
        self.alpha = alpha

    def forward(self, reference: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
        """`reference` None means zeros: encoder(0) == 0 exactly (no bias), so it is skipped.

        Reference and target go through the encoder as one batch (it has no batch norm, so
        this is the same computation as two calls, in half the kernel launches)."""
        if reference is None:
            return self.manipulator(None, self.encoder(target), self.alpha)
        encoded_reference, encoded_target = self.encoder(torch.cat([reference, target])).chunk(2)
        return self.manipulator(encoded_reference, encoded_target, self.alpha)


def eca_kernel_size(channels: int) -> int:
    """k = int(|log2(C) + 1| / 2), bumped to the next odd number: 3 for 64, 5 for 128."""
    k = int(abs(math.log2(channels) + 1) / 2)
    return k if k % 2 else k + 1


class EnhancedECA(nn.Module):
    """Channel attention from average and max pooling through one shared bias-free 1-D conv."""

    def __init__(self, channels: int):
        super().__init__()
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        average = self.conv(x.mean(dim=(2, 3)).unsqueeze(1))
        maximum = self.conv(x.amax(dim=(2, 3)).unsqueeze(1))
        weights = torch.sigmoid(average + maximum).squeeze(1)
        return x * weights[:, :, None, None]


def temporal_shift(x: torch.Tensor, segments: int = 2, fold_div: int = 8) -> torch.Tensor:
    """Bidirectional shift over segments stacked on the batch axis (sample-major), zero fill.

    The first C/8 channels of each segment take the next segment's (the last gets zeros); the
    second C/8 take the previous segment's (the first gets zeros); the rest are unchanged.
    """
    batch_segments, channels, height, width = x.shape
    fold = channels // fold_div
    x = x.view(batch_segments // segments, segments, channels, height, width)
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(batch_segments, channels, height, width)


class TemporalShift(nn.Module):
    def __init__(self, segments: int = 2, fold_div: int = 8):
        super().__init__()
        self.segments, self.fold_div = segments, fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.segments, self.fold_div)
