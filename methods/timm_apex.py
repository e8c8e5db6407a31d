"""An apex-frame CNN from timm: any `timm` image model on the grey apex face crop.

The plainest deep baseline: no flow, no onset, one frame. `model` is any timm model name
(`resnet18` by default; `timm.list_models()` lists them), built with one input channel and
trained from scratch by the shared loop. Nothing is downloaded: `checkpoint` may name a local
weights file (a timm / torchvision state dict, or a dict holding one under "state_dict" or
"model"); its classifier is dropped and an RGB stem is summed to one channel
(`timm.models.adapt_input_conv`), so ImageNet weights fine-tune on grey faces.

Reads view `faces` (onset, apex, offset crops) and uses the apex, resized to `image_size`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mer_bench.methods.base import Split
from mer_bench.methods.training import Recipe, TorchMethod


def _state_dict(checkpoint: str) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_backbone(model: nn.Module, checkpoint: str) -> None:
    """Loads every weight but the classifier's; a 3-channel stem is adapted to 1 channel."""
    from timm.models import adapt_input_conv

    state = _state_dict(checkpoint)
    classifier = model.pretrained_cfg.get("classifier", "fc")
    stem = model.pretrained_cfg.get("first_conv", "conv1")
    state = {k: v for k, v in state.items() if not k.startswith(classifier + ".")}
    if f"{stem}.weight" in state:
        state[f"{stem}.weight"] = adapt_input_conv(1, state[f"{stem}.weight"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(classifier + ".") for k in missing):
        raise ValueError(f"checkpoint {checkpoint} does not fit this timm model: "
                         f"missing {missing}, unexpected {unexpected}")


class TimmApexCNN(TorchMethod):
    views = ("faces",)
    paper_name = "apex CNN (timm)"
    recipe = Recipe(iterations=200, batch_size=16, lr=1e-3)

    def __init__(self, model: str = "resnet18", image_size: int = 112,
                 checkpoint: str | None = None):
        self.model_name, self.image_size, self.checkpoint = model, image_size, checkpoint
        self.input_shape = (1, image_size, image_size)  # the grey apex, as `inputs` gives it

    def build_model(self, num_classes: int) -> nn.Module:
        import timm

        try:
            model = timm.create_model(self.model_name, pretrained=False, in_chans=1,
                                      num_classes=num_classes)
        except RuntimeError as error:  # timm's "Unknown model"
            raise ValueError(f"{error}; `timm.list_models()` lists the names") from None
        if self.checkpoint:
            load_backbone(model, self.checkpoint)
        self.final_layers = (model.pretrained_cfg.get("classifier", "fc") + ".",)
        return model

    def inputs(self, split: Split) -> torch.Tensor:
        apex = torch.from_numpy(split.views["faces"][:, 1:2])
        if apex.shape[-1] == self.image_size:
            return apex.contiguous()
        return F.interpolate(apex, size=(self.image_size, self.image_size), mode="bilinear",
                             antialias=True, align_corners=False)
