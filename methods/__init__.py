"""Methods, one line each: name -> "module:attr" + keyword arguments, imported lazily.

A plugin outside the repository calls `register` the same way (see the README).
"""

from benchmark.registry import Registry

METHODS = Registry("method", entry_point_group="mer_bench.methods")
register = METHODS.register

register("majority", "methods.sanity:Majority")
register("stratified", "methods.sanity:StratifiedRandom")
register("ststnet", "methods.ststnet:STSTNet")
