"""What a plugin author imports, and nothing else: the method contract, what a fold gives a
method, the selection rules and precisions, and the registries a plugin extends.

    from mer_bench.api import FitContext, Method, Split, register_method

    class NearestMean(Method):
        views = ("flows",)
        def fit_predict(self, train: Split, test: Split, context: FitContext): ...

    register_method("nearest_mean", NearestMean)

A plugin's own input is a view: a function of a clip's bundle, registered with a version
(`register_view("my_view", my_view, version=1)`) that enters every job key reading it.
Everything else in the project may change between releases; these names keep their meaning.
"""

from mer_bench.benchmark.protocol.registry import Registry, RegistryError
from mer_bench.benchmark.protocol.tasks import TASKS
from mer_bench.datasets import DATASETS, VIEWS
from mer_bench.datasets import register as register_dataset
from mer_bench.datasets import register_view
from mer_bench.methods import METHODS
from mer_bench.methods import register as register_method
from mer_bench.methods.base import PRECISIONS, SELECTION_RULES, FitContext, Method, Speed, Split

register_task = TASKS.register


def __getattr__(name: str):
    """The shared torch training loop (`TorchMethod`, its `Recipe`), imported only when asked
    for, so that importing the API does not import torch."""
    if name in ("TorchMethod", "Recipe"):
        from mer_bench.methods import training

        return getattr(training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS", "FitContext", "METHODS", "Method", "PRECISIONS", "Registry", "RegistryError",
    "SELECTION_RULES", "Speed", "Split", "TASKS", "VIEWS",
    "Recipe", "TorchMethod",  # noqa: F822 -- served by __getattr__ above, without torch at import
    "register_dataset", "register_method", "register_task", "register_view",
]
