"""Sanity baselines: what a score means only next to these. They read no image at all."""

from __future__ import annotations

import numpy as np

from mer_bench.methods.base import FitContext, Method, Split


def _class_frequencies(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=num_classes) / len(labels)


class Majority(Method):
    """Always the fold's most frequent training class (UAR = 1/K by construction)."""

    def fit_predict(self, train: Split, test: Split, context: FitContext) -> dict[str, np.ndarray]:
        frequencies = _class_frequencies(train.labels, context.num_classes)
        logits = np.full((len(test), context.num_classes), -1.0)
        logits[:, int(np.argmax(frequencies))] = 1.0
        return {"final": logits}


class StratifiedRandom(Method):
    """A random class per sample, drawn with the training class frequencies (seeded)."""

    def fit_predict(self, train: Split, test: Split, context: FitContext) -> dict[str, np.ndarray]:
        frequencies = _class_frequencies(train.labels, context.num_classes)
        draws = np.random.default_rng(context.seed).choice(
            context.num_classes, size=len(test), p=frequencies)
        logits = np.full((len(test), context.num_classes), -1.0)
        logits[np.arange(len(test)), draws] = 1.0
        return {"final": logits}
