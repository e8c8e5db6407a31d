"""Dataset adapters, one line each: name -> "module:attr" + keyword arguments."""

from benchmark.registry import Registry

DATASETS = Registry("dataset", entry_point_group="mer_bench.datasets")
register = DATASETS.register

register("synthetic", "datasets.synthetic:Synthetic")
register("casme2", "datasets.casme2:CASME2")
