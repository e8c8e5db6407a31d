"""Published per-clip logs (`<dataset> <subject>` headers, `<clip> <true> <predicted>` lines)
scored by `score` as shipped: on logs made here in that format, and on the two real ones
(STSTNet's MATLAB log, CapsuleNet's), which skip with a reason where ../shared is absent."""

from __future__ import annotations

import pytest

from mer_bench.benchmark.cli import main
from mer_bench.benchmark.protocol.tasks import TASKS, load_task
from mer_bench.benchmark.stats.prediction_logs import looks_like_log, read_log
from mer_bench.benchmark.stats.scoring import score_file
from tests.released import FLOWS, WEIGHTS, released, write_release

CAPSULENET = "capsulenet_log"
# What CapsuleNet's log lacks of the composite's 442 clips, read from the log itself: its
# README names 5 of these and 2 SAMM clips (028_4_1, 032_3_1) that the log does hold.
CAPSULENET_LACKS = ["s1_ne_02", "s2_sur_05", "s3_ne_03", "s3_ne_20", "s4_ne_05", "s4_ne_06",
                    "s9_sur_02"]
README_NAMES = ["s3_ne_03", "s3_ne_20", "s4_ne_05", "s4_ne_06", "s9_sur_02", "028_4_1",
                "032_3_1"]

# The eight clips of tests/released.py ROWS, as a log writes them (SMIC's subject as `1`, the
# way CapsuleNet's log spells it); sub02's clip predicted wrong, one true class differing.
LOG = """casme2 sub01
EP02_01f 1 1
EP19_05f 0 0
casme2 sub02
EP01_11f 2 0
samm 006
006_1_2 0 0
samm 7
007_3_1 1 1
smic 1
s01_ne_01 0 0
s01_po_02 0 1
"""


@pytest.fixture
def task(tmp_path):
    return load_task(TASKS.build("composite-3-flows"),
                     {"composite_flows": write_release(tmp_path / "flows")})


def test_a_log_is_read_as_shipped_and_a_broken_line_is_named(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(LOG)
    assert looks_like_log(path)
    log = read_log(path)
    assert len(log) == 7 and tuple(log.iloc[5]) == ("smic", "1", "s01_ne_01", "0", "0")
    (tmp_path / "p.csv").write_text("clip,predicted\nEP02_01f,1\n")
    assert not looks_like_log(tmp_path / "p.csv")
    path.write_text(LOG.replace("006_1_2 0 0", "006_1_2 0 0 0"))
    with pytest.raises(ValueError, match=r"log.txt line 7: '006_1_2 0 0 0'"):
        read_log(path)
    path.write_text("EP02_01f 1 1\n")
    with pytest.raises(ValueError, match="line 1.*header first"):
        read_log(path)


def test_a_log_covering_part_of_a_task_scores_only_with_its_missing_clips_declared(task,
                                                                                  tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(LOG)
    report = score_file(path, task)
    assert report.matched == 7 and not report.unmatched  # `smic 1` is s1, `samm 7` is 007
    assert report.missing == ["smic/s2/s2_sur_01"] and not report.whole
    declared = score_file(path, task, declared=["s02_sur_01"])
    assert declared.whole and declared.declared == ["smic/s2/s2_sur_01"]
    # a fold has every clip or not whatever was declared: the count means one thing
    assert declared.folds_complete == report.folds_complete == report.folds - 1
    assert score_file(path, task, allow_missing=True).declared == ["smic/s2/s2_sur_01"]
    wrong = score_file(path, task, declared=["EP02_01f", "s02_sur_01"])
    assert wrong.declared_present == ["EP02_01f"] and not wrong.whole
    with pytest.raises(ValueError, match="'EP99_99' is not a clip of task composite-3-flows"):
        score_file(path, task, declared=["EP99_99"])


def test_a_partial_file_names_the_options_that_score_it_and_counts_folds_alike(tmp_path,
                                                                                capsys):
    path, flows = tmp_path / "log.txt", write_release(tmp_path / "flows")
    path.write_text(LOG)
    common = ["score", "--task", "composite-3-flows", "--data", f"composite_flows={flows}",
              "--predictions", str(path), "--results", str(tmp_path / "results")]
    assert main(common) == 1
    refused = capsys.readouterr()
    assert "lacks 1 clip(s) of task composite-3-flows" in refused.err
    assert "give --allow-missing, or --missing FILE" in refused.err
    assert main([*common, "--allow-missing"]) == 0
    allowed = capsys.readouterr()
    assert "--allow-missing" not in allowed.err
    folds = "5 of 6 folds have every clip"  # smic s2's one clip is absent either way
    assert folds in refused.out and folds in allowed.out
    declared = tmp_path / "lacks.txt"
    declared.write_text("s02_sur_01\nEP02_01f\n")
    assert main([*common, "--missing", str(declared)]) == 1
    assert "names 1 clip(s) that" in capsys.readouterr().err


def test_a_log_whose_true_classes_differ_is_scored_under_both(task, tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(LOG)
    report = score_file(path, task, allow_missing=True)
    assert report.label_disagreements == ["smic/s1/s1_po_02"]  # the task says positive
    # under the task's labels 6 of 7 are right; under the log's, s01_po_02 (predicted
    # positive) is wrong against its negative
    assert report.scores.accuracy == pytest.approx(6 / 7)
    assert report.own_labels.accuracy == pytest.approx(5 / 7)
    lines = "\n".join(report.lines())
    assert "under the file's own true classes (1 clip differs from the task's)" in lines


def composite(capsys, log, *extra) -> tuple[int, str]:
    code = main(["score", "--task", "composite-3-flows", "--data",
                 f"composite_flows={released(FLOWS)}", "--predictions", str(log),
                 "--results", str(log.parent / "never-written"), *extra])  # a later one wins
    return code, capsys.readouterr().out


def test_capsulenets_log_gives_its_papers_composite_and_parts_over_435_declared_clips(
        capsys, tmp_path):
    log = released(CAPSULENET) / "result_log.csv"
    code, out = composite(capsys, log)
    assert code == 1 and "7 clip(s) missing from the file" in out
    lacks = tmp_path / "lacks.txt"
    lacks.write_text("# what the log lacks\n" + "\n".join(CAPSULENET_LACKS) + "\n")
    code, out = composite(capsys, log, "--missing", str(lacks))
    assert code == 0, out
    assert "435 of 442 clips scored (7 declared missing)" in out
    own = out[out.index("under the file's own true classes (1 clip differs"):]
    for line in ("composite-3-flows: UF1 0.6520, UAR 0.6506",  # the paper's (FG 2019)
                 "composite-3-flows[casme2]: UF1 0.7068, UAR 0.7018",
                 "composite-3-flows[samm]: UF1 0.6209, UAR 0.5990",
                 "composite-3-flows[smic]: UF1 0.5820, UAR 0.5877"):
        assert line in own
    assert "composite-3-flows: UF1 0.6554, UAR 0.6534" in out  # under the composite's labels
    named = tmp_path / "readme.txt"
    named.write_text("\n".join(README_NAMES) + "\n")
    code, out = composite(capsys, log, "--missing", str(named))
    assert code == 1
    assert "2 clip(s) declared missing, yet in the file: 028_4_1, 032_3_1" in out
    assert "2 clip(s) missing from the file: smic/s1/s1_ne_02, smic/s2/s2_sur_05" in out
    code, out = composite(capsys, log, "--allow-missing")
    assert code == 0 and "7 clip(s) declared missing, not scored" in out


def test_ststnets_matlab_log_gives_the_papers_composite_and_its_parts(capsys):
    log = released(WEIGHTS) / "STSTNet_logfile.txt"
    code, out = composite(capsys, log)
    assert not (log.parent / "never-written").exists()  # scoring writes nothing
    assert code == 0, out
    assert "442 of 442 clips scored; 68 of 68 folds have every clip" in out
    for line in ("composite-3-flows: UF1 0.7353, UAR 0.7186",  # the paper's 0.7353
                 "composite-3-flows[casme2]: UF1 0.8382, UAR 0.8190",
                 "composite-3-flows[samm]: UF1 0.6588, UAR 0.6415",
                 "composite-3-flows[smic]: UF1 0.6801, UAR 0.6703"):
        assert line in out
    assert "own true classes" not in out  # its true classes are the composite's


def test_a_stored_log_is_a_row_of_its_own_paired_on_the_clips_both_cover(tmp_path, capsys):
    from mer_bench.benchmark.stats.runs import run_scores
    from mer_bench.benchmark.stats.uncertainty import on_shared_clips
    from mer_bench.benchmark.storage.store import Store

    flows, results = write_release(tmp_path / "flows"), tmp_path / "results"
    partial, whole = tmp_path / "partial.txt", tmp_path / "whole.txt"
    partial.write_text(LOG)
    whole.write_text(LOG.replace("s01_po_02 0 1", "s01_po_02 1 1") + "smic s02\ns02_sur_01 2 0\n")
    common = ["score", "--task", "composite-3-flows", "--data", f"composite_flows={flows}",
              "--results", str(results)]
    assert main([*common, "--predictions", str(partial), "--store", "mine"]) == 1
    assert "not stored" in capsys.readouterr().err and not (results / "runs").exists()
    assert main([*common, "--predictions", str(partial), "--allow-missing", "--store",
                 "mine"]) == 0
    assert "stored as run published[source=mine] (5 folds)" in capsys.readouterr().out
    assert main([*common, "--predictions", str(whole), "--store", "theirs"]) == 0
    capsys.readouterr()
    rows = {r.method: r for r in run_scores(list(Store(results).records()))
            if "[" not in r.task}
    mine, theirs = rows["published[source=mine]"], rows["published[source=theirs]"]
    assert mine.complete and mine.folds == 5 and theirs.folds == 6  # s2's only clip declared
    assert mine.data == theirs.data == "published predictions"
    assert mine.per_seed[0].accuracy == pytest.approx(6 / 7)  # under the task's labels
    assert theirs.per_seed[0].accuracy == pytest.approx(6 / 8)  # EP01_11f, s02_sur_01 wrong
    paired = on_shared_clips(list(mine.pooled), list(theirs.pooled))
    assert [len(p.labels) for p in [*paired[0], *paired[1]]] == [7, 7]
    assert mine.p_value(theirs) is not None  # the 7 clips both cover, subject by subject
    assert main(["tables", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "published[source=mine]" in line)
    assert [c.strip() for c in row.split("|")[3:6]] == \
        ["published", "—", f"{100 * mine.per_seed[0].uf1:.2f}"]
    assert "Selection `published`: predictions their authors published" in out


def test_published_logs_stored_as_rows_pair_on_the_435_clips_both_cover(capsys, tmp_path):
    from mer_bench.benchmark.stats.runs import run_scores
    from mer_bench.benchmark.storage.store import Store

    results = tmp_path / "results"
    for log, name, extra in ((released(CAPSULENET) / "result_log.csv", "capsulenet",
                              ["--allow-missing"]),
                             (released(WEIGHTS) / "STSTNet_logfile.txt", "ststnet_matlab", [])):
        code, _ = composite(capsys, log, *extra, "--store", name, "--results", str(results))
        assert code == 0
    rows = {(r.method, r.task): r for r in run_scores(list(Store(results).records()))}
    capsule = rows[("published[source=capsulenet]", "composite-3-flows")]
    matlab = rows[("published[source=ststnet_matlab]", "composite-3-flows")]
    assert capsule.complete and capsule.folds == matlab.folds == 68
    assert round(100 * capsule.per_seed[0].uf1, 2) == 65.54  # under the composite's labels
    assert round(100 * matlab.per_seed[0].uf1, 2) == 73.53
    p = capsule.p_value(matlab)
    assert p is not None and 0 < p <= 1
