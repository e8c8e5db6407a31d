"""What a method is to the harness: the views it reads and one fit-and-predict call per fold."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

SELECTION_RULES = ("last", "val", "oracle")  # see methods/training.py
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Speed:
    """How the shared torch loop runs a job's model; each setting an option, all off by default.

    `precision` bf16 (autocast) changes the numbers, so it is part of the job (and its key);
    `compile` (torch.compile of the training step) and `channels_last` (None: the method's
    own layout) compute the same function up to floating-point rounding, so they are run
    settings, recorded beside each result like fold-parallel training.
    """

    precision: str = "fp32"
    compile: bool = False
    channels_last: bool | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not available; "
                             f"choose from {list(PRECISIONS)}")


@dataclass(frozen=True)
class Split:
    """One side of a fold. `labels` is None where the method may not read them (the test side)."""

    views: dict[str, np.ndarray]
    labels: np.ndarray | None
    subjects: tuple[str, ...]
    clip_keys: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.clip_keys)


@dataclass(frozen=True)
class FitContext:
    """What a job gives its method besides data: seed derived from the job key, budget, device."""

    num_classes: int
    seed: int
    budget: int | None = None  # training iterations; None: the method's own default
    selection: str = "last"
    device: str = "cpu"
    init_weights: str | None = None  # a pretraining checkpoint to start from
    weights: str | None = None  # a trained (released) state_dict for this fold: no training
    speed: Speed = Speed()
    keep: tuple[str, ...] = ()  # artefacts to leave in `Method.kept`: "weights", "features"


class Method(ABC):
    """A method family's plugin. Bump `version` when its results change: it is in the job key.

    Besides `fit_predict`, a method declares what the engine may ask of it (the engine never
    names a method): the name the papers' tables give it, its ablation switches, whether it
    trains several folds at once, and a panel of its input for check sheets.
    """

    version: str = "1"
    views: tuple[str, ...] = ()
    paper_name: str | None = None  # as the papers' tables name it; None: its registry name
    ablation_legend: str = ""  # what its switch columns mean, for the ablation table's header
    # What a method that trains appends for each fold it fits (in order): {"loss": one value
    # per step, "selection": [(step, accuracy), ...] where a rule scored epochs}. The engine
    # empties it before a fit and stores each fold's beside its result (curves.csv).
    training_logs: list[dict] = []
    # What a fit leaves when its context asks to keep artefacts (FitContext.keep): "weights"
    # (name -> tensor, the model as it predicted) and "features" (module name -> the test
    # samples' inputs to each final layer, (n_test, d)). The engine stores them with the job.
    kept: dict = {}

    def ablation_switches(self) -> dict[str, bool]:
        """The modules an ablation table shows for this variant, by column name (as the
        paper writes them, e.g. "Mag"), on or off; {} for a method without any."""
        return {}

    def trains_folds_together(self) -> bool:
        """Whether `fit_predict_folds` trains the folds of one run at once (fold-parallel)."""
        return False

    def fit_predict_folds(self, folds: list[tuple[Split, Split, FitContext]],
                          ) -> list[dict[str, np.ndarray]]:
        """(train, test, context) of folds that differ only in their data: logits of each.
        Methods that train folds together override this; by default one after another."""
        return [self.fit_predict(train, test, context) for train, test, context in folds]

    def sheet_panel(self, bundle: dict) -> tuple[str, np.ndarray] | None:
        """A title and an image (H, W) or (H, W, 3) in [0, 1] of this method's input from a
        clip's bundle, for check sheets; None: nothing to show."""
        return None

    def gradcam_layer(self) -> str | None:
        """The module (by name in its model) whose maps Grad-CAM weighs, as the paper draws
        its Fig. 7; None: the method offers none. With `gradcam_image`, what `gradcam` needs."""
        return None

    def gradcam_image(self, sample: np.ndarray) -> np.ndarray:
        """The picture a Grad-CAM map is laid over, (H, W) in [0, 1], from one input sample."""
        raise NotImplementedError(f"{type(self).__name__} offers no Grad-CAM")

    def budget_text(self, budget: int | None) -> str:
        """The training budget a table states for this method ("budget default" if None)."""
        return f"budget {budget if budget is not None else 'default'}"

    def with_recipe(self, fields: dict[str, Any]) -> "Method":
        """This method with training recipe fields a grid sets for one task (the paper's
        batch 32 on CAS(ME)^3); a method without a recipe refuses any."""
        if fields:
            raise ValueError(f"{type(self).__name__} has no training recipe to set "
                             f"{sorted(fields)} on")
        return self

    def pretrain(self, train: Split, context: FitContext) -> dict:
        """Trains on a whole pretraining task; returns the state to start folds from."""
        raise NotImplementedError(f"{type(self).__name__} cannot be pretrained")

    def can_pretrain(self) -> bool:
        """Whether `pretrain` is implemented (a grid's `pretrain` needs it)."""
        return type(self).pretrain is not Method.pretrain

    @abstractmethod
    def fit_predict(self, train: Split, test: Split, context: FitContext) -> dict[str, np.ndarray]:
        """Trains on `train`; returns logits (n_test, K) per classifier head, 'final' first."""
