"""How a fold's training samples are drawn and weighed, and what its log keeps: the pieces
the one-fold loop (training.py) and the fold-parallel loop (fold_parallel.py) share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from mer_bench.methods.training import EpochSelector


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse class frequency of the training labels, normalised to sum 1 (absent classes 0)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    inverse = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.tensor(inverse / inverse.sum(), dtype=torch.float32)


def training_log(losses: list[torch.Tensor], selector: "EpochSelector | None" = None) -> dict:
    """One fold's training log (Method.training_logs): its loss per step, and the accuracy of
    every epoch its selection rule scored."""
    values = torch.stack(losses).cpu().numpy() if losses else np.zeros(0)
    return {"loss": values.astype(np.float64),
            "selection": list(selector.history) if selector else [],
            "selected": selector.best_iteration if selector else None}


def batch_indices(n: int, batch_size: int, iterations: int, seed: int) -> Iterator[np.ndarray]:
    """`iterations` full batches drawn from consecutive seeded permutations of range(n)."""
    rng = np.random.default_rng(seed)
    stream = np.empty(0, dtype=np.int64)
    for _ in range(iterations):
        while len(stream) < batch_size:
            stream = np.concatenate([stream, rng.permutation(n)])
        yield stream[:batch_size]
        stream = stream[batch_size:]


def pass_batches(order: np.ndarray, batch_size: int, iterations: int) -> Iterator[np.ndarray]:
    """`iterations` batches of consecutive passes over `order`, each pass's last one partial
    (as a torch DataLoader without shuffling and without drop_last)."""
    done = 0
    while done < iterations:
        for start in range(0, len(order), batch_size):
            if done == iterations:
                return
            yield order[start:start + batch_size]
            done += 1
