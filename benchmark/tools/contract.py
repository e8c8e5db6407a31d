"""The method contract, checked on a real fold of prepared clips: what `mer-bench check-plugin`
runs on a plugin's methods and the test suite on every registered one.

A method passes when its views are registered, it reads exactly the views it declares, it
returns finite logits of shape (test samples, classes) for every head with `final` first, the
same seed gives the same logits, and it predicts without the held-out labels (the harness
gives it none; only the `oracle` rule, named in every table, ever shows them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_bench.benchmark.storage.store import non_finite_row_count


@dataclass(frozen=True)
class Check:
    method: str
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class ContractFold:
    """A small fold of prepared clips: their bundles, labels, subjects and keys; the first
    subject is held out."""

    bundles: list[dict]
    labels: np.ndarray
    subjects: tuple[str, ...]
    keys: tuple[str, ...]
    num_classes: int


class HeldOutLabelsRead(Exception):
    """A method used the held-out labels."""


class HeldOutLabels:
    """Stands in for the held-out subject's labels (the harness gives None): any use raises."""

    def _refuse(self, *args, **kwargs):
        raise HeldOutLabelsRead("the method used test.labels, the held-out subject's labels")

    __getitem__ = __iter__ = __len__ = __array__ = __eq__ = __ne__ = __lt__ = __gt__ = _refuse
    __bool__ = __int__ = __float__ = __hash__ = _refuse

    def __getattr__(self, name):
        self._refuse()


class RecordingViews(dict):
    """A views dict that remembers which views were read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, name):
        self.read.add(name)  # a view it did not declare too: the KeyError follows
        return super().__getitem__(name)


def contract_fold(task: str, config, subjects: int = 2, clips: int = 16) -> ContractFold:
    """The first `clips` clips of the first `subjects` subjects of `task`, prepared."""
    from mer_bench.benchmark.execution.planning import prepare_task

    prepared = prepare_task(task, config)
    chosen = sorted({s.clip.subject_key for s in prepared.data.samples})[:subjects]
    samples = [s for s in prepared.data.samples if s.clip.subject_key in chosen][:clips]
    bundles = [config.cache.load(prepared.bundle_keys[s.clip.key]) for s in samples]
    return ContractFold(bundles, np.array([s.label for s in samples]),
                        tuple(s.clip.subject_key for s in samples),
                        tuple(s.clip.key for s in samples), len(prepared.data.task.classes))


def fold_splits(method, fold: ContractFold):
    """(train, test) of the fold with the method's views, recording what is read; the test
    side's labels refuse every use."""
    from mer_bench.datasets.views import build_view
    from mer_bench.methods.base import Split

    views = {name: build_view(name, fold.bundles) for name in method.views}
    held = np.array([s == fold.subjects[0] for s in fold.subjects])

    def side(mask: np.ndarray, with_labels: bool) -> Split:
        return Split(RecordingViews({n: v[mask] for n, v in views.items()}),
                     fold.labels[mask] if with_labels else HeldOutLabels(),
                     tuple(np.array(fold.subjects)[mask]), tuple(np.array(fold.keys)[mask]))

    return side(~held, True), side(held, False)


def _fit_predict(name: str, fold: ContractFold, budget: int, seed: int, splits=None):
    """A fresh instance of the method fitted on the fold, as the runner runs a job."""
    import torch

    from mer_bench.methods import METHODS
    from mer_bench.methods.base import FitContext

    method = METHODS.build(name)
    train, test = splits or fold_splits(method, fold)
    torch.manual_seed(seed)  # as the runner seeds each job
    return method.fit_predict(train, test, FitContext(fold.num_classes, seed=seed,
                                                      budget=budget))


def check_method(name: str, fold: ContractFold, budget: int = 2) -> list[Check]:
    """Every rule of the contract for the registered method `name`, in order; a rule that
    cannot be checked because an earlier one failed is not reported."""
    from mer_bench.datasets import VIEWS
    from mer_bench.methods import METHODS

    method = METHODS.build(name)
    unknown = [v for v in method.views if v not in VIEWS]
    checks = [Check(name, "views registered", not unknown,
                    f"unknown: {', '.join(unknown)}; registered: {', '.join(VIEWS.names())}"
                    if unknown else ", ".join(method.views) or "none")]
    if unknown:
        return checks
    train, test = fold_splits(method, fold)
    try:
        logits = _fit_predict(name, fold, budget, 0, (train, test))
        failure = None
    except HeldOutLabelsRead as error:
        return checks + [Check(name, "predicts without the held-out labels", False, str(error))]
    except Exception as error:  # noqa: BLE001 -- the plugin's own bug, reported as a check
        failure = f"{type(error).__name__}: {error}"
    read = train.views.read | test.views.read
    views = Check(name, "reads exactly its declared views", read == set(method.views),
                  f"declared {sorted(method.views)}, read {sorted(read)}")
    if failure is not None:  # a view it did not declare is missing, or its own error
        return checks + [views if not views.passed else
                         Check(name, "fit_predict runs", False, failure)]
    checks += [Check(name, "predicts without the held-out labels", True,
                     "test.labels never used"), views]
    expected = (len(test), fold.num_classes)
    heads = list(logits) if isinstance(logits, dict) else []
    shapes = {h: np.shape(logits[h]) for h in heads}
    good = bool(heads) and heads[0] == "final" and all(s == expected for s in shapes.values())
    checks.append(Check(name, "logits per head, final first", good,
                        f"heads {shapes or type(logits).__name__}, expected {expected} each"))
    if not good:
        return checks
    rows = {h: non_finite_row_count(v) for h, v in logits.items()}
    finite = not any(rows.values())
    where = ", ".join(f"{n} of {expected[0]} rows of {h!r}" for h, n in rows.items() if n)
    checks.append(Check(name, "finite logits", finite, "" if finite else f"NaN or inf in {where}"))
    again = _fit_predict(name, fold, budget, 0, (train, test))  # the same views, built once
    # NaN in the same places is the same output: the determinism check does not repeat the
    # finiteness one (NaN != NaN)
    same = all(np.array_equal(np.asarray(logits[h], dtype=float),
                              np.asarray(again.get(h), dtype=float), equal_nan=True)
               for h in heads)
    checks.append(Check(name, "the same seed gives the same logits", same,
                        "" if same else "two runs with seed 0 differ: seed every random draw "
                        "from context.seed (or torch's global seed, which the runner sets)"))
    return checks
