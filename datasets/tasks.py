"""The tasks, one registration each: the paper's (section 4.1) and MEGC 2019's: `casme2-5`;
`casme2-3`, `samm-3`, `smic-3` and `composite-3` (exactly the clips of the MEGC 2019 list,
labels from the list); `composite-3-flows` and `composite-3-causalnet` (the same from the flow
images HTNet's and CausalNet's authors released); `cdmer-3` (Zong et al.'s CASME II / SMIC-HS
pair); `mmew-4`, `mmew-6`; `casme3-3`, `casme3-4`, `casme3-7`; `ckplus-7` (for pretraining);
and the synthetic stand-ins. Any task of two datasets or more runs leaving one dataset out as
`NAME@lodo`. What a task is and does is benchmark/protocol/tasks.py's.
"""

from mer_bench.benchmark.protocol.tasks import TASKS, FrameRules, MemberList, Source, Task

# Emotion -> class, as each dataset writes its emotions (lower-cased).
CASME2_5 = {"happiness": "happiness", "surprise": "surprise", "disgust": "disgust",
            "repression": "repression", "others": "others"}
# MEGC 2019: negative, positive, surprise.
MEGC_CLASSES = ("negative", "positive", "surprise")
CASME2_3 = {"disgust": "negative", "repression": "negative", "happiness": "positive",
            "surprise": "surprise"}
SAMM_3 = {"anger": "negative", "contempt": "negative", "disgust": "negative",
          "fear": "negative", "sadness": "negative", "happiness": "positive",
          "surprise": "surprise"}
SMIC_3 = {"negative": "negative", "positive": "positive", "surprise": "surprise"}
MEGC_LIST = MemberList("MEGC 2019 composite list", "combined_3class_gt.csv",
                       {"0": "negative", "1": "positive", "2": "surprise"})
MEGC_FRAMES = FrameRules(exclude_apex_at_onset=False)  # the list, not a frame rule, decides
# MMEW: six classes without anger (8 clips); four as the SKD-TSTSAN paper's: happiness,
# disgust, surprise and others (263 clips in the paper; anger, fear and sadness left out).
MMEW_6 = {"happiness": "happiness", "surprise": "surprise", "disgust": "disgust",
          "fear": "fear", "sadness": "sadness", "others": "others"}
MMEW_4 = {"happiness": "happiness", "disgust": "disgust", "surprise": "surprise",
          "others": "others"}
# CAS(ME)^3 part A: the sheet's seven emotions; four and three as its authors group them.
CASME3_7 = {"anger": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy",
            "sad": "sad", "surprise": "surprise", "others": "others"}
CASME3_4 = {"anger": "negative", "disgust": "negative", "fear": "negative", "sad": "negative",
            "happy": "positive", "surprise": "surprise", "others": "others"}
CASME3_3 = {k: v for k, v in CASME3_4.items() if v != "others"}
CASME3_FRAMES = FrameRules(exclude_apex_at_onset=False)
# CK+ codes 1-7 (0, neutral, labels none of the 327 sequences).
CKPLUS_7 = {"1": "anger", "2": "contempt", "3": "disgust", "4": "fear", "5": "happy",
            "6": "sadness", "7": "surprise"}

register = TASKS.register
DEFAULT_TASK = "synthetic-5"  # of `run` without --tasks or a grid: the synthetic default
register("synthetic-5", Task, name="synthetic-5", classes=tuple(CASME2_5),
         sources=(Source("synthetic", CASME2_5),),
         description="synthetic CASME II-layout clips, CASME II's five classes")
register("synthetic_macro-5", Task, name="synthetic_macro-5", classes=tuple(CASME2_5),
         sources=(Source("synthetic_macro", CASME2_5),),
         description="synthetic macro-expressions (4x the motion), a stand-in for CK+ pretraining")
register("synthetic_casme2-5", Task, name="synthetic_casme2-5", classes=tuple(CASME2_5),
         sources=(Source("synthetic_casme2", CASME2_5),),
         description="synthetic clips of CASME II's size (26 subjects), for GPU-scale runs")
register("casme2-5", Task, name="casme2-5", classes=tuple(CASME2_5),
         sources=(Source("casme2", CASME2_5, {"release": "2014"}),),
         description="CASME II, 2014 labels, five classes (fear and sadness excluded)")
register("casme2-3", Task, name="casme2-3", classes=MEGC_CLASSES, members=MEGC_LIST,
         frames=MEGC_FRAMES, sources=(Source("casme2", CASME2_3),),
         description="CASME II part of the MEGC 2019 composite list, three classes")
register("samm-3", Task, name="samm-3", classes=MEGC_CLASSES, members=MEGC_LIST,
         frames=MEGC_FRAMES, sources=(Source("samm", SAMM_3),),
         description="SAMM part of the MEGC 2019 composite list, three classes")
register("smic-3", Task, name="smic-3", classes=MEGC_CLASSES, members=MEGC_LIST,
         frames=MEGC_FRAMES, sources=(Source("smic", SMIC_3),),
         description="SMIC-HS part of the MEGC 2019 composite list, three classes")
register("composite-3", Task, name="composite-3", classes=MEGC_CLASSES, members=MEGC_LIST,
         frames=MEGC_FRAMES,
         sources=(Source("casme2", CASME2_3), Source("samm", SAMM_3), Source("smic", SMIC_3)),
         description="MEGC 2019 composite (CASME II + SAMM + SMIC-HS), three classes, LOSO "
                     "over (dataset, subject)")
register("composite-3-flows", Task, name="composite-3-flows", classes=MEGC_CLASSES,
         sources=(Source("composite_flows", {"0": "negative", "1": "positive",
                                             "2": "surprise"}),),
         description="MEGC 2019 composite from the flow images HTNet's authors released (the "
                     "same 442 clips and 68 LOSO folds as composite-3; flow views only)")
register("composite-3-causalnet", Task, name="composite-3-causalnet", classes=MEGC_CLASSES,
         sources=(Source("causalnet_flows", {"0": "negative", "1": "positive",
                                             "2": "surprise"}),),
         description="MEGC 2019 composite from the flow images CausalNet's authors released "
                     "(four per clip, another preprocessing than HTNet's; the same 442 clips and "
                     "68 LOSO folds as composite-3; flow views only)")
# Cross-database MER (CDMER) of Zong et al. ("Cross-Database Micro-Expression Recognition: A
# Benchmark", arXiv 1812.07742): CASME II relabelled to SMIC-HS's three classes: happiness
# positive; disgust, sadness and fear negative; surprise; repression and others left out.
# `cdmer-3@lodo` is its pair: CASME II -> SMIC-HS and SMIC-HS -> CASME II, one fold each.
CDMER_CASME2 = {"happiness": "positive", "disgust": "negative", "sadness": "negative",
                "fear": "negative", "surprise": "surprise"}
register("cdmer-3", Task, name="cdmer-3", classes=MEGC_CLASSES,
         sources=(Source("casme2", CDMER_CASME2, {"release": "2014"}), Source("smic", SMIC_3)),
         description="CDMER pair of Zong et al.: CASME II (2014 labels, relabelled) and "
                     "SMIC-HS, three classes; run as cdmer-3@lodo")
register("synthetic-3db-5", Task, name="synthetic-3db-5", classes=tuple(CASME2_5),
         sources=(Source("synthetic", CASME2_5), Source("synthetic_b", CASME2_5),
                  Source("synthetic_c", CASME2_5)),
         description="three synthetic datasets (the default and two smaller ones, other seeds "
                     "and motion), the stand-in of the cross-dataset protocols")
register("mmew-4", Task, name="mmew-4", classes=tuple(MMEW_4), sources=(Source("mmew", MMEW_4),),
         description="MMEW micro-expressions, the paper's four classes: happiness, disgust, "
                     "surprise, others (anger, fear, sadness excluded)")
register("mmew-6", Task, name="mmew-6", classes=tuple(MMEW_6), sources=(Source("mmew", MMEW_6),),
         description="MMEW micro-expressions, six classes (anger excluded)")
register("casme3-7", Task, name="casme3-7", classes=tuple(CASME3_7), frames=CASME3_FRAMES,
         sources=(Source("casme3", CASME3_7),),
         description="CAS(ME)^3 part A, the sheet's seven emotions")
register("casme3-4", Task, name="casme3-4", classes=("negative", "positive", "surprise", "others"),
         frames=CASME3_FRAMES, sources=(Source("casme3", CASME3_4),),
         description="CAS(ME)^3 part A, four classes (anger, disgust, fear, sad negative)")
register("casme3-3", Task, name="casme3-3", classes=MEGC_CLASSES, frames=CASME3_FRAMES,
         sources=(Source("casme3", CASME3_3),),
         description="CAS(ME)^3 part A, three classes (the four less others)")
register("ckplus-7", Task, name="ckplus-7", classes=tuple(dict.fromkeys(CKPLUS_7.values())),
         frames=FrameRules(require_apex_within=False), sources=(Source("ckplus", CKPLUS_7),),
         description="CK+ labelled sequences, seven emotions (pretraining); first frame = "
                     "onset = offset, last frame = apex")
