"""Fold-parallel training: the models of K LOSO folds trained at once, as one batched step.

A network like SKD-TSTSAN is small (about 1 GMAC per sample), so one fold at batch 16 leaves a
GPU mostly idle. Here each fold keeps everything it has when trained alone (its initial
weights from its own seed, its training samples, batch stream, class weights, batch-norm
statistics and Adam state), and the K models' parameters are stacked so that one vmapped
step (torch.func) computes all K losses and gradients. Adam is elementwise, so one Adam over
the stacked parameters is K independent Adams. With dropout off, the weights after N steps
equal sequential training's to floating-point tolerance (tests/methods/test_fold_parallel.py); with
dropout on, each fold draws its own masks (vmap randomness "different"), so results are the
same in distribution, not bit for bit.

Selection: the `last` rule only (the model after the budget); `val` and `oracle` select a
different epoch per fold and are trained fold by fold. Precision: fp32 only. bf16 autocast
does not reach inside vmap (in torch 2.14 the batching rules of conv2d and of linear with a
bias run below autocast, so a vmapped step silently stays in fp32; tests/runs/test_speed.py), and
casting everything to bf16 by hand would not be autocast's mix; bf16 jobs are trained fold by
fold. torch.compile is not applied either (the runner refuses the pair).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from mer_bench.methods.batches import batch_indices, class_weights, training_log

if TYPE_CHECKING:
    from mer_bench.methods.training import TorchMethod


@dataclass
class FoldData:
    """One fold's training side: its inputs (N, ...), labels and seed."""

    inputs: torch.Tensor
    labels: np.ndarray
    seed: int


class _Loss(nn.Module):
    """A model and its method's loss as one module, so that functional_call can run both."""

    def __init__(self, method: TorchMethod, model: nn.Module):
        super().__init__()
        self.method, self.model = method, model

    def forward(self, inputs, targets, weights):
        return self.method.loss(self.model, inputs, targets, weights)


def batch_size_of(method: TorchMethod, folds: list[FoldData]) -> int:
    sizes = {min(method.recipe.batch_size, len(f.labels)) for f in folds}
    if len(sizes) != 1:
        raise ValueError(f"folds with fewer samples than the batch size ({sorted(sizes)}) "
                         "cannot be trained in parallel; train them one by one")
    return sizes.pop()


def train_folds(method: TorchMethod, models: list[nn.Module], folds: list[FoldData],
                num_classes: int, iterations: int, device: torch.device) -> list[nn.Module]:
    """Trains `models[k]` on `folds[k]` for `iterations` steps, all K at once; returns them.

    The models come in built and seeded (and loaded from a pretraining checkpoint if any),
    exactly as sequential training builds them; they go out trained, in train mode.
    """
    if method.speed.precision != "fp32":
        raise ValueError(f"fold-parallel training runs in fp32 only, not "
                         f"{method.speed.precision}: autocast does not reach inside vmap")
    batch = batch_size_of(method, folds)
    wrapped = [_Loss(method, model.to(device).train()) for model in models]
    params, buffers = torch.func.stack_module_state(wrapped)
    template = copy.deepcopy(wrapped[0]).to("meta")

    def one_fold(p, b, inputs, targets, weights):
        return torch.func.functional_call(template, (p, b), (inputs, targets, weights))

    losses_of = torch.vmap(one_fold, randomness="different")
    recipe = method.recipe
    optimizer = torch.optim.Adam(params.values(), lr=recipe.lr, betas=recipe.betas,
                                 weight_decay=recipe.weight_decay,
                                 fused=device.type in ("cpu", "cuda"))
    weights = torch.stack([class_weights(f.labels, num_classes) for f in folds]).to(
        device, folds[0].inputs.dtype)
    targets = [torch.as_tensor(f.labels, dtype=torch.long) for f in folds]
    streams = [batch_indices(len(f.labels), batch, iterations, f.seed) for f in folds]
    history = []  # per step, each fold's loss (kept on the device)
    for _ in range(iterations):
        chosen = [torch.as_tensor(next(stream)) for stream in streams]
        inputs = torch.stack([f.inputs[i] for f, i in zip(folds, chosen)]).to(device)
        labels = torch.stack([t[i] for t, i in zip(targets, chosen)]).to(device)
        per_fold = losses_of(params, buffers, inputs, labels, weights)
        loss = per_fold.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(per_fold.detach().float())
    with torch.no_grad():
        stacked = {**params, **buffers}
        for k, module in enumerate(wrapped):
            module.load_state_dict({name: value[k] for name, value in stacked.items()})
    steps = torch.stack(history) if history else torch.zeros(0, len(folds))
    method.training_logs = [*method.training_logs,
                            *(training_log(list(steps[:, k])) for k in range(len(folds)))]
    return [module.model for module in wrapped]


def fold_memory_bytes(method: TorchMethod, inputs: torch.Tensor, num_classes: int) -> int:
    """What one fold holds on the device while it trains, measured on the CPU: its weights,
    gradients and Adam's two moments (4 x the parameters), one batch, and every tensor autograd
    saves for the backward of one step (each counted once). `--fold-parallel auto` divides a
    GPU's free memory by it."""
    torch.manual_seed(0)
    model = method.build_model(num_classes).train()
    size = method.recipe.batch_size
    batch = inputs[torch.arange(size) % len(inputs)].contiguous(memory_format=method.memory_format)
    targets = torch.arange(size) % num_classes
    weights = torch.full((num_classes,), 1.0 / num_classes)
    saved: dict[tuple, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device.type != "meta":
            key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tensor.shape)
            saved[key] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        method.loss(model, batch, targets, weights)
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return 4 * parameters + batch.numel() * batch.element_size() + sum(saved.values())
