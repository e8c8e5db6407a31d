"""The shared torch training loop: seeded, device chosen automatically, fixed iteration budget.

Batches come from one seeded stream of epoch permutations, always full, so a fold with few
samples still gets batch-norm statistics from whole batches. The model returned is the one at
the end of the budget (selection rule `last`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from methods.base import FitContext, Method, Split


@dataclass(frozen=True)
class Recipe:
    iterations: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    class_weighted: bool = True


def pick_device(requested: str | None = None) -> torch.device:
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse class frequency of the training labels, normalised to sum 1 (absent classes 0)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    inverse = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.tensor(inverse / inverse.sum(), dtype=torch.float32)


def batch_indices(n: int, batch_size: int, iterations: int, seed: int) -> Iterator[np.ndarray]:
    """`iterations` full batches drawn from consecutive seeded permutations of range(n)."""
    rng = np.random.default_rng(seed)
    stream = np.empty(0, dtype=np.int64)
    for _ in range(iterations):
        while len(stream) < batch_size:
            stream = np.concatenate([stream, rng.permutation(n)])
        yield stream[:batch_size]
        stream = stream[batch_size:]


def final_logits(output: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    return output["final"] if isinstance(output, dict) else output


def train_model(model: nn.Module, inputs: torch.Tensor, labels: np.ndarray, recipe: Recipe,
          iterations: int, seed: int, device: torch.device) -> nn.Module:
    num_classes = int(final_logits(model(inputs[:2].to(device))).shape[1])
    weights = class_weights(labels, num_classes).to(device) if recipe.class_weighted else None
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas,
                                 weight_decay=recipe.weight_decay)
    targets = torch.as_tensor(labels, dtype=torch.long)
    model.train()
    for index in batch_indices(len(labels), min(recipe.batch_size, len(labels)), iterations, seed):
        batch = torch.as_tensor(index)
        loss = loss_fn(final_logits(model(inputs[batch].to(device))), targets[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, device: torch.device,
            batch_size: int = 256) -> dict[str, np.ndarray]:
    model.eval()
    heads: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(inputs), batch_size):
        output = model(inputs[start : start + batch_size].to(device))
        output = output if isinstance(output, dict) else {"final": output}
        for name, logits in output.items():
            heads.setdefault(name, []).append(logits.float().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in heads.items()}


class TorchMethod(Method):
    """A torch model trained by the shared loop on one view; subclasses build the model."""

    recipe = Recipe()

    def build_model(self, num_classes: int) -> nn.Module:
        raise NotImplementedError

    def inputs(self, split: Split) -> torch.Tensor:
        (view,) = self.views
        return torch.from_numpy(split.views[view])

    def fit_predict(self, train: Split, test: Split, context: FitContext) -> dict[str, np.ndarray]:
        device = pick_device(context.device)
        torch.manual_seed(context.seed)
        model = self.build_model(context.num_classes).to(device)
        iterations = context.budget if context.budget is not None else self.recipe.iterations
        train_model(model, self.inputs(train), train.labels, self.recipe, iterations,
                    context.seed, device)
        return predict(model, self.inputs(test), device)
