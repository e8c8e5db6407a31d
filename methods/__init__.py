"""Methods, one line each: name -> "module:attr" + keyword arguments, imported lazily.

A plugin outside the repository calls `register` the same way (docs/plugins.md).
"""

from mer_bench.benchmark.protocol.registry import Registry

METHODS = Registry("method", entry_point_group="mer_bench.methods")
register = METHODS.register
FLAGSHIP = "skd_tstsan"  # what `bench` times, check sheets show the input of, Fig. 5 draws

register("majority", "mer_bench.methods.sanity:Majority")
register("stratified", "mer_bench.methods.sanity:StratifiedRandom")
# STSTNet as its authors released it (network, input, schedule); the shared recipe; the paper.
register("ststnet", "mer_bench.methods.ststnet:STSTNet")
register("ststnet.shared", "mer_bench.methods.ststnet:STSTNet", schedule="shared")
register("ststnet.paper", "mer_bench.methods.ststnet:STSTNet", form="paper")

# The baselines of the paper's comparison tables, one file each.
register("tscnn", "mer_bench.methods.tscnn:TSCNN")
register("off_apexnet", "mer_bench.methods.off_apexnet:OFFApexNet")
register("htnet", "mer_bench.methods.htnet:HTNet")
register("htnet.release", "mer_bench.methods.htnet:HTNet", schedule="release")  # its main_HTNet.py
register("lbp_top_svm", "mer_bench.methods.lbp_top:LBPTOPSVM")
register("timm_apex", "mer_bench.methods.timm_apex:TimmApexCNN", model="resnet18")

# SKD-TSTSAN and the rows of the paper's Table 5 (ablation), all from one builder.
register("skd_tstsan", "mer_bench.methods.skd_tstsan:SKDTSTSANMethod")
register("skd_tstsan.base", "mer_bench.methods.skd_tstsan:SKDTSTSANMethod", mag=False, eca=False, tsm=False, skd=False)
register("skd_tstsan.mag", "mer_bench.methods.skd_tstsan:SKDTSTSANMethod", mag=True, eca=False, tsm=False, skd=False)
register("skd_tstsan.eca", "mer_bench.methods.skd_tstsan:SKDTSTSANMethod", mag=False, eca=True, tsm=False, skd=False)
register("skd_tstsan.tsm", "mer_bench.methods.skd_tstsan:SKDTSTSANMethod", mag=False, eca=False, tsm=True, skd=False)
register("skd_tstsan.mag_eca", "mer_bench.methods.skd_tstsan:SKDTSTSANMethod", mag=True, eca=True, tsm=False, skd=False)
register("skd_tstsan.mag_tsm", "mer_bench.methods.skd_tstsan:SKDTSTSANMethod", mag=True, eca=False, tsm=True, skd=False)
register("skd_tstsan.mag_eca_tsm", "mer_bench.methods.skd_tstsan:SKDTSTSANMethod", mag=True, eca=True, tsm=True, skd=False)
