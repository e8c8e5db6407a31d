"""Dataset adapters, one line each: name -> "module:attr" + keyword arguments."""

from benchmark.registry import Registry

DATASETS = Registry("dataset", entry_point_group="mer_bench.datasets")
register = DATASETS.register

register("synthetic", "datasets.synthetic:Synthetic")
# Larger motions, other subjects: stands in for CK+ to exercise pretraining and transfer.
register("synthetic_macro", "datasets.synthetic:Synthetic", name="synthetic_macro", seed=1,
         subjects=8, clips_per_subject=5, motion_scale=4.0)
# CASME II's size (26 subjects, 260 clips): the stand-in of the GPU-scale grid (gpu_scale.toml).
register("synthetic_casme2", "datasets.synthetic:Synthetic", name="synthetic_casme2", seed=2,
         subjects=26, clips_per_subject=10)
register("casme2", "datasets.casme2:CASME2")
register("samm", "datasets.samm:SAMM")
register("smic", "datasets.smic:SMIC")
register("mmew", "datasets.mmew:MMEW")
register("casme3", "datasets.casme3:CASME3")
register("ckplus", "datasets.ckplus:CKPlus")
# Flow images released by MER papers' authors instead of frames (one per clip, a label CSV).
register("composite_flows", "datasets.released_flows:ReleasedFlows", name="composite_flows")
