"""Methods, one line each: name -> "module:attr" + keyword arguments, imported lazily.

A plugin outside the repository calls `register` the same way (see the README).
"""

from benchmark.registry import Registry

METHODS = Registry("method", entry_point_group="mer_bench.methods")
register = METHODS.register

register("majority", "methods.sanity:Majority")
register("stratified", "methods.sanity:StratifiedRandom")
# STSTNet as its authors released it (network, input, schedule); the shared recipe; the paper.
register("ststnet", "methods.ststnet:STSTNet")
register("ststnet.shared", "methods.ststnet:STSTNet", schedule="shared")
register("ststnet.paper", "methods.ststnet:STSTNet", form="paper")

# The baselines of the paper's comparison tables, one file each.
register("tscnn", "methods.tscnn:TSCNN")
register("off_apexnet", "methods.off_apexnet:OFFApexNet")
register("htnet", "methods.htnet:HTNet")
register("lbp_top_svm", "methods.lbp_top:LBPTOPSVM")
register("timm_apex", "methods.timm_apex:TimmApexCNN", model="resnet18")

# SKD-TSTSAN and the rows of the paper's Table 5 (ablation), all from one builder.
register("skd_tstsan", "methods.skd_tstsan:SKDTSTSANMethod")
register("skd_tstsan.base", "methods.skd_tstsan:SKDTSTSANMethod", mag=False, eca=False, tsm=False, skd=False)
register("skd_tstsan.mag", "methods.skd_tstsan:SKDTSTSANMethod", mag=True, eca=False, tsm=False, skd=False)
register("skd_tstsan.eca", "methods.skd_tstsan:SKDTSTSANMethod", mag=False, eca=True, tsm=False, skd=False)
register("skd_tstsan.tsm", "methods.skd_tstsan:SKDTSTSANMethod", mag=False, eca=False, tsm=True, skd=False)
register("skd_tstsan.mag_eca", "methods.skd_tstsan:SKDTSTSANMethod", mag=True, eca=True, tsm=False, skd=False)
register("skd_tstsan.mag_tsm", "methods.skd_tstsan:SKDTSTSANMethod", mag=True, eca=False, tsm=True, skd=False)
register("skd_tstsan.mag_eca_tsm", "methods.skd_tstsan:SKDTSTSANMethod", mag=True, eca=True, tsm=True, skd=False)
