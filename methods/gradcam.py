"""Grad-CAM (Selvaraju et al., ICCV 2017) of a torch model at one named layer: the layer's
maps weighed by the spatial mean of the gradient of a class score, summed over channels,
rectified, scaled to [0, 1] and resized to the input. For the paper's Fig. 7 kind of figure
(`mer-bench gradcam`), from the weights a job kept (`run --keep weights`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def grad_cam(model: nn.Module, layer: str, sample: torch.Tensor, head: str = "final",
             target: int | None = None) -> tuple[np.ndarray, int]:
    """The (H, W) map in [0, 1] of one sample (C, H, W) for class `target` (default: the
    predicted one) of `head`, and that class."""
    module = dict(model.named_modules()).get(layer)
    if module is None:
        raise ValueError(f"the model has no layer {layer!r}")
    kept: dict[str, torch.Tensor] = {}

    def keep(_, __, output):
        output.retain_grad()
        kept["maps"] = output

    hook = module.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        output = model(sample.unsqueeze(0))
        logits = output[head] if isinstance(output, dict) else output
        chosen = int(logits.argmax(1)) if target is None else target
        model.zero_grad(set_to_none=True)
        logits[0, chosen].backward()
    finally:
        hook.remove()
        model.train(was_training)
    maps, gradients = kept["maps"], kept["maps"].grad
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=sample.shape[1:], mode="bilinear", align_corners=False)[0, 0]
    cam = cam.detach().cpu().numpy()
    span = cam.max() - cam.min()
    return (cam - cam.min()) / span if span > 0 else np.zeros_like(cam), chosen
