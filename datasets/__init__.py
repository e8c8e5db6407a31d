"""Dataset adapters and views, one line each: name -> "module:attr" (+ keyword arguments for
an adapter, a version for a view)."""

from mer_bench.benchmark.protocol.registry import Registry

DATASETS = Registry("dataset", entry_point_group="mer_bench.datasets")
register = DATASETS.register

register("synthetic", "mer_bench.datasets.synthetic:Synthetic")
# Larger motions, other subjects: stands in for CK+ to exercise pretraining and transfer.
register("synthetic_macro", "mer_bench.datasets.synthetic:Synthetic", name="synthetic_macro", seed=1,
         subjects=8, clips_per_subject=5, motion_scale=4.0)
# CASME II's size (26 subjects, 260 clips): the stand-in of the GPU-scale grid (gpu_scale.toml).
register("synthetic_casme2", "mer_bench.datasets.synthetic:Synthetic", name="synthetic_casme2", seed=2,
         subjects=26, clips_per_subject=10)
# Two more small synthetic datasets (other seeds, other faces' motion): with `synthetic`, the
# three datasets of the cross-dataset stand-in task synthetic-3db-5 (cross_dataset.toml).
register("synthetic_b", "mer_bench.datasets.synthetic:Synthetic", name="synthetic_b", seed=3,
         subjects=4, clips_per_subject=8)
register("synthetic_c", "mer_bench.datasets.synthetic:Synthetic", name="synthetic_c", seed=4,
         subjects=4, clips_per_subject=8, motion_scale=1.5)
register("casme2", "mer_bench.datasets.casme2:CASME2")
register("samm", "mer_bench.datasets.samm:SAMM")
register("smic", "mer_bench.datasets.smic:SMIC")
register("mmew", "mer_bench.datasets.mmew:MMEW")
register("casme3", "mer_bench.datasets.casme3:CASME3")
register("ckplus", "mer_bench.datasets.ckplus:CKPlus")
# Flow images released by MER papers' authors instead of frames (one per clip, a label CSV).
register("composite_flows", "mer_bench.datasets.released_flows:ReleasedFlows", name="composite_flows")
# CausalNet's release: four images per clip (the base image, then `_1`, `_2`, `_3`; what each
# is was checked on the images: datasets/released_flows.py).
register("causalnet_flows", "mer_bench.datasets.released_flows:ReleasedFlows",
         name="causalnet_flows", companions=(("apex_offset_flow", "{sub}_{clip}_1 .png"),
                                             ("onset_apex_direction", "{sub}_{clip}_2 .png"),
                                             ("apex_offset_direction", "{sub}_{clip}_3 .png")))

# Views: what methods read, each a function of a clip's bundle (datasets/views.py). A view's
# version is in the key of every job that reads it: bump it whenever its output changes.
VIEWS = Registry("view", entry_point_group="mer_bench.views")
register_view = VIEWS.register

register_view("faces", "mer_bench.datasets.views:faces", version=1)
register_view("flows", "mer_bench.datasets.views:flows", version=1)
register_view("flow_strain_28", "mer_bench.datasets.views:flow_strain_28", version=1)
register_view("ststnet_release_28", "mer_bench.datasets.views:ststnet_release_28", version=1)
register_view("flow_28", "mer_bench.datasets.views:flow_28", version=1)
register_view("htnet_regions_28", "mer_bench.datasets.views:htnet_regions_28", version=1)
register_view("released_apex_offset_28", "mer_bench.datasets.views:released_apex_offset_28",
              version=1)
register_view("released_onset_apex_direction_28",
              "mer_bench.datasets.views:released_onset_apex_direction_28", version=1)
register_view("released_apex_offset_direction_28",
              "mer_bench.datasets.views:released_apex_offset_direction_28", version=1)
register_view("frame_sequence", "mer_bench.datasets.views:frame_sequence", version=1)
register_view("skd_tstsan_38", "mer_bench.datasets.views:skd_tstsan_38", version=1)
