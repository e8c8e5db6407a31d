"""The shared torch training loop: seeded, device chosen automatically, fixed iteration budget.

Batches come from one seeded stream of epoch permutations, always full, so a fold with few
samples still gets batch-norm statistics from whole batches. Model selection:
- `last`: the model at the end of the budget (default; reads no held-out label).
- `val`: the best epoch on a validation split of the training subjects (a fifth of them,
  at least one, drawn from the seed), trained on the rest.
- `oracle`: the authors' release: the best epoch by accuracy on the held-out subject itself.
  It reads test labels; every table that shows it says so.
`val` and `oracle` share one rule: accuracy after every epoch, ties to the later epoch, stop
as soon as it reaches 1.0; only the data they look at differs.
A job's speed settings (methods.base.Speed) choose bf16 autocast, the memory layout and
torch.compile of the training step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_bench.methods.base import FitContext, Method, Speed, Split
from mer_bench.methods.batches import batch_indices, class_weights, pass_batches, training_log


@dataclass(frozen=True)
class Recipe:
    """How the shared loop trains. By default `iterations` full batches from seeded shuffles
    and class-weighted cross-entropy. With `epochs` set (the STSTNet and HTNet releases'
    schedule): that many passes over the training samples in a fixed order (`order`
    "by_class": sorted by class, stable), the last batch of each pass partial, and a budget,
    if a job gives one, counts those batches."""

    iterations: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    epochs: int | None = None
    order: str = "as_given"  # with epochs: "as_given" or "by_class"
    class_weighted: bool = True

    def __post_init__(self):
        if self.order not in ("as_given", "by_class"):
            raise ValueError(f"recipe order {self.order!r}: choose as_given or by_class")

    def steps(self, samples: int) -> int:
        """The default budget for `samples` training samples."""
        if self.epochs is None:
            return self.iterations
        return self.epochs * -(-samples // self.batch_size)


# What a grid may set per task (the budget is set apart, as `budget`).
TASK_RECIPE_FIELDS = {"batch_size", "lr", "weight_decay"}


def pick_device(requested: str | None = None) -> torch.device:
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")




def final_modules(model: nn.Module, prefixes: tuple[str, ...]) -> dict[str, nn.Module]:
    """The outermost called modules under the `final_layers` prefixes (a classifier, or each
    of a list of them): their input is a head's feature vector."""
    candidates = {name: module for name, module in model.named_modules()
                  if name and f"{name}.".startswith(prefixes)
                  and not isinstance(module, (nn.ModuleList, nn.ModuleDict))}
    return {name: module for name, module in candidates.items()
            if name.rpartition(".")[0] not in candidates}








def final_logits(output: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    return output["final"] if isinstance(output, dict) else output


def autocast(device: torch.device, precision: str):
    """bf16 autocast on `device` for precision "bf16"; a no-op context for "fp32"."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, device: torch.device,
            batch_size: int = 256,
            memory_format: torch.memory_format = torch.contiguous_format,
            precision: str = "fp32") -> dict[str, np.ndarray]:
    """Logits of every head the model returns, in eval mode, on the CPU as float32 arrays."""
    was_training = model.training
    model.eval()
    heads: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size].to(device)
        with autocast(device, precision):
            output = model(batch.contiguous(memory_format=memory_format))
        output = output if isinstance(output, dict) else {"final": output}
        for name, logits in output.items():
            heads.setdefault(name, []).append(logits.float().cpu().numpy())
    model.train(was_training)
    return {name: np.concatenate(parts) for name, parts in heads.items()}


@dataclass
class EpochSelector:
    """Keeps the weights of the best epoch on (inputs, labels): accuracy, ties to the later."""

    inputs: torch.Tensor
    labels: np.ndarray
    predictor: Callable[..., dict[str, np.ndarray]] = predict  # the method's, with its layout
    best_accuracy: float = -1.0
    best_state: dict | None = None
    best_iteration: int = 0
    history: list = field(default_factory=list)  # (iteration, accuracy) of every epoch scored

    def observe(self, model: nn.Module, device: torch.device, iteration: int) -> bool:
        """Scores this epoch; returns True when training should stop (accuracy 1.0)."""
        predicted = self.predictor(model, self.inputs, device)["final"].argmax(1)
        accuracy = float((predicted == self.labels).mean())
        self.history.append((iteration, accuracy))
        if accuracy >= self.best_accuracy:
            self.best_accuracy, self.best_iteration = accuracy, iteration
            self.best_state = copy.deepcopy(model.state_dict())
        return accuracy >= 1.0

    def restore(self, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


class TorchMethod(Method):
    """A torch model trained by the shared loop on its views; subclasses build the model.

    Override `loss` for a recipe other than class-weighted cross-entropy on the final logits.
    """

    recipe = Recipe()
    # channels_last makes small-channel convs markedly faster on CPU (oneDNN); same math.
    # A job's Speed may override it (`configure`).
    memory_format: torch.memory_format = torch.contiguous_format
    speed: Speed = Speed()  # the job's, set by `configure`
    final_layers: tuple[str, ...] = ("classifier.",)  # not transferred from a pretraining task
    input_shape: tuple[int, ...] | None = None  # one sample's, for `bench`'s random inputs
    show_progress: bool = False  # a bar over training steps (one long fit, e.g. export's)

    def trains_folds_together(self) -> bool:
        """Shuffled-batch recipes only: an in-order epoch schedule trains one fold at a time
        (fold_parallel.py says why)."""
        return self.recipe.epochs is None

    def fit_predict_folds(self, folds: list[tuple[Split, Split, FitContext]],
                          ) -> list[dict[str, np.ndarray]]:
        """Trains the folds at once (methods/fold_parallel.py: one vmapped step per batch),
        then tests each."""
        from mer_bench.methods.fold_parallel import FoldData, train_folds

        models, data = [], []
        for train, _, context in folds:
            model, device, iterations = self.fresh_model(context)
            models.append(model)
            data.append(FoldData(self.inputs(train), train.labels, context.seed))
        trained = train_folds(self, models, data, folds[0][2].num_classes, iterations, device)
        return [self.predict(model, self.inputs(test), device)
                for model, (_, test, _) in zip(trained, folds)]

    def fold_memory_bytes(self, split: Split, num_classes: int) -> float:
        """Device memory one fold of fold-parallel training takes (fold_parallel.py)."""
        from mer_bench.methods.fold_parallel import fold_memory_bytes

        return fold_memory_bytes(self, self.inputs(split), num_classes)

    def build_model(self, num_classes: int) -> nn.Module:
        raise NotImplementedError

    def with_recipe(self, fields: dict) -> "TorchMethod":
        unknown = set(fields) - TASK_RECIPE_FIELDS
        if unknown:
            raise ValueError(f"{type(self).__name__}: recipe fields {sorted(unknown)} cannot be "
                             f"set per task; these can: {sorted(TASK_RECIPE_FIELDS)}")
        if fields:
            self.recipe = replace(self.recipe, **fields)
        return self

    def budget_text(self, budget: int | None) -> str:
        recipe = self.recipe
        if budget is None and recipe.epochs is not None:
            return (f"{recipe.epochs} epochs in order, batch {recipe.batch_size}, lr "
                    f"{recipe.lr:.0e}" + ("" if recipe.class_weighted else ", unweighted CE"))
        steps = budget if budget is not None else recipe.iterations
        return (f"{steps} iterations, batch {recipe.batch_size}, lr {recipe.lr:.0e}"
                + (", in order" if recipe.epochs is not None else "")
                + ("" if recipe.class_weighted else ", unweighted CE"))

    def configure(self, speed: Speed) -> None:
        """Takes a job's speed settings (a method instance serves one job)."""
        self.speed = speed
        if speed.channels_last is not None:
            self.memory_format = (torch.channels_last if speed.channels_last
                                  else torch.contiguous_format)

    def predict(self, model: nn.Module, inputs: torch.Tensor,
                device: torch.device) -> dict[str, np.ndarray]:
        return predict(model, inputs, device, memory_format=self.memory_format,
                       precision=self.speed.precision)

    def selector(self, inputs: torch.Tensor, labels: np.ndarray) -> "EpochSelector":
        return EpochSelector(inputs, labels, self.predict)

    def inputs(self, split: Split) -> torch.Tensor:
        (view,) = self.views
        return torch.from_numpy(split.views[view])

    def loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
             weights: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(final_logits(model(inputs)), targets, weight=weights)

    def fit(self, model: nn.Module, inputs: torch.Tensor, labels: np.ndarray, num_classes: int,
            iterations: int, seed: int, device: torch.device,
            selector: EpochSelector | None = None) -> nn.Module:
        """Trains `iterations` steps (None: the recipe's); with a selector, ends on its best
        epoch."""
        recipe = self.recipe
        iterations = recipe.steps(len(labels)) if iterations is None else iterations
        weights = (class_weights(labels, num_classes).to(device, inputs.dtype)
                   if recipe.class_weighted else None)
        # fused: one kernel per step instead of one per tensor, same update (much faster on
        # CPU for large models such as HTNet)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.recipe.lr,
                                     betas=self.recipe.betas, weight_decay=self.recipe.weight_decay,
                                     fused=device.type in ("cpu", "cuda"))
        targets = torch.as_tensor(labels, dtype=torch.long)
        if recipe.epochs is None:
            batch_size = min(recipe.batch_size, len(labels))
            epoch = max(1, len(labels) // batch_size)
            batches = batch_indices(len(labels), batch_size, iterations, seed)
        else:
            order = (np.argsort(labels, kind="stable") if recipe.order == "by_class"
                     else np.arange(len(labels)))
            epoch = -(-len(labels) // recipe.batch_size)
            batches = pass_batches(order, recipe.batch_size, iterations)
        step_loss = partial(self.loss, model)
        if self.speed.compile:  # forward and loss as one graph; backward through AOTAutograd
            step_loss = torch.compile(step_loss)
        model.train()
        losses = []  # kept on the device: no sync per step
        if self.show_progress:
            from tqdm import tqdm

            batches = tqdm(batches, total=iterations, desc="training", unit="step")
        for step, index in enumerate(batches, 1):
            batch = torch.as_tensor(index)
            x = inputs[batch].to(device).contiguous(memory_format=self.memory_format)
            with autocast(device, self.speed.precision):
                loss = step_loss(x, targets[batch].to(device), weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach().float())
            if selector and (step % epoch == 0 or step == iterations):
                if selector.observe(model, device, step):
                    break
        if selector:
            selector.restore(model)
        self.training_logs = [*self.training_logs, training_log(losses, selector)]
        return model

    def fresh_model(self, context: FitContext) -> tuple[nn.Module, torch.device, int | None]:
        """A seeded new model (from the pretraining checkpoint if any), its device, budget
        (None: the recipe's, which depends on the number of training samples)."""
        device = pick_device(context.device)
        self.configure(context.speed)
        torch.manual_seed(context.seed)
        model = self.build_model(context.num_classes)
        if context.init_weights:
            self.start_from(model, context.init_weights)
        model = model.to(device, memory_format=self.memory_format)
        iterations = context.budget if context.budget is not None else (
            self.recipe.iterations if self.recipe.epochs is None else None)
        return model, device, iterations

    def pretrain(self, train: Split, context: FitContext) -> dict:
        model, device, iterations = self.fresh_model(context)
        self.fit(model, self.inputs(train), train.labels, context.num_classes, iterations,
                 context.seed, device)
        return {name: value.cpu() for name, value in model.state_dict().items()}

    def start_from(self, model: nn.Module, checkpoint: str) -> None:
        """Loads every pretrained weight except the final classifiers (`final_layers`), from
        a torch checkpoint (its names mapped by `released_state`) or an export's safetensors."""
        if str(checkpoint).endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(checkpoint)
        else:  # a torch checkpoint, perhaps in a release's names
            state = self.released_state(torch.load(checkpoint, map_location="cpu",
                                                   weights_only=True))
        kept = {k: v for k, v in state.items() if not k.startswith(self.final_layers)}
        missing, unexpected = model.load_state_dict(kept, strict=False)
        if unexpected or any(not k.startswith(self.final_layers) for k in missing):
            raise ValueError(f"checkpoint {checkpoint} does not fit {type(self).__name__}: "
                             f"missing {missing}, unexpected {unexpected}")

    def load_weights(self, model: nn.Module, path: str) -> None:
        """Loads a released (or exported) state_dict into `model`, every tensor, by name
        (`released_state` maps the file's names); the error names the file and the keys."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 -- a pickle that is not plain tensors, a bad file
            raise ValueError(f"weights file {path} cannot be read as a state_dict "
                             f"(torch.load weights_only=True): {error}") from None
        state = self.released_state(state)
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if missing or unexpected or wrong:
            raise ValueError(f"weights file {path} does not fit {type(self).__name__} "
                             f"({type(model).__name__}): missing {missing}, unexpected "
                             f"{unexpected}, other shapes {wrong}")
        model.load_state_dict(state)

    def released_state(self, state: dict) -> dict:
        """The names of a weights file mapped to this model's: a DataParallel `module.`
        prefix removed; methods whose releases name things otherwise override this."""
        if state and all(k.startswith("module.") for k in state):
            return {k[len("module."):]: v for k, v in state.items()}
        return dict(state)

    def fit_predict(self, train: Split, test: Split, context: FitContext) -> dict[str, np.ndarray]:
        model, device, iterations = self.fresh_model(context)
        if context.weights:  # released weights: nothing is trained
            self.load_weights(model, context.weights)
            model = model.to(device)
            if context.keep:
                self.kept = self.artefacts(model, self.inputs(test), device, context.keep)
            return self.predict(model, self.inputs(test), device)
        inputs, labels, selector = self.inputs(train), train.labels, None
        if context.selection == "oracle":
            if test.labels is None:
                raise ValueError("the oracle rule selects on the held-out labels; none given")
            selector = self.selector(self.inputs(test), test.labels)
        elif context.selection == "val":
            keep, held = validation_split(train.subjects, context.seed)
            selector = self.selector(inputs[held], labels[held])
            inputs, labels = inputs[keep], labels[keep]
        self.fit(model, inputs, labels, context.num_classes, iterations, context.seed, device,
                 selector)
        if context.keep:
            self.kept = self.artefacts(model, self.inputs(test), device, context.keep)
        return self.predict(model, self.inputs(test), device)

    def artefacts(self, model: nn.Module, inputs: torch.Tensor, device: torch.device,
                  keep: tuple[str, ...]) -> dict:
        """The model's weights and, through hooks, the inputs of its final layers (the
        modules `final_layers` names) on `inputs`: what Method.kept holds."""
        kept = {}
        if "weights" in keep:
            kept["weights"] = {k: v.detach().float().cpu().contiguous() if v.is_floating_point()
                               else v.detach().cpu().contiguous()
                               for k, v in model.state_dict().items()}
        if "features" in keep:
            found: dict[str, list[np.ndarray]] = {}
            hooks = [module.register_forward_pre_hook(
                         lambda _, args, name=name: found.setdefault(name, []).append(
                             args[0].detach().float().flatten(1).cpu().numpy()))
                     for name, module in final_modules(model, self.final_layers).items()]
            try:
                self.predict(model, inputs, device)
            finally:
                for hook in hooks:
                    hook.remove()
            kept["features"] = {name: np.concatenate(parts) for name, parts in found.items()}
        return kept


def validation_split(subjects: tuple[str, ...], seed: int,
                     fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Indices to train on and to validate on: whole training subjects, never the test one."""
    names = sorted(set(subjects))
    count = max(1, round(fraction * len(names)))
    held = set(np.random.default_rng(seed).choice(names, size=count, replace=False).tolist())
    mask = np.array([s in held for s in subjects])
    return np.flatnonzero(~mask), np.flatnonzero(mask)
