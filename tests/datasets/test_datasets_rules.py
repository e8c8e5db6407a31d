"""Dirty annotations: every rule an adapter applies is named, counted and carried per task.

Rules only, so tasks are read with `empty_classes="keep"` (a fixture lacks classes).
The fixtures under tests/fixtures/<dataset>/ are made-up files in each dataset's real format
(tests/fixtures/make_fixtures.py writes them), one row per rule.
"""

import shutil
from collections import Counter

import cv2
import numpy as np
import pytest
from openpyxl import Workbook

from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.execution.planning import prepare_task
from mer_bench.benchmark.protocol.tasks import TASKS, load_task
from mer_bench.datasets import DATASETS
from mer_bench.datasets.casme2 import CASME2
from mer_bench.datasets.casme3 import CASME3
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.samm import SAMM
from mer_bench.datasets.sheets import ANNOTATIONS_ENV
from mer_bench.datasets.smic import SMIC
from tests.conftest import REPO, face_frame
from tests.dataset_trees import build_ckplus, put

FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def _no_annotations_folder(monkeypatch):
    monkeypatch.delenv(ANNOTATIONS_ENV, raising=False)


def folders(root, *paths):
    for path in paths:
        (root / path).mkdir(parents=True, exist_ok=True)
    return root


def rules(notes, action=None):
    return Counter(n.rule for n in notes if action is None or n.action == action)


def test_casme2_dirty_sheet_every_rule_named_and_counted(tmp_path):
    root = folders(tmp_path / "casme2", "sub01", "sub02", "sub03")
    sheet = FIXTURES / "casme2" / "CASME2-coding-dirty.xlsx"
    adapter = CASME2(root, sheet=sheet)
    clips = {c.clip: c for c in adapter.clips()}
    assert set(clips) == {"EP02_01f", "EP03_02", "EP04_02", "EP01_11f", "EP02_04f", "EP03_02f",
                          "EP01_01", "EP05_05", "EP06_01"}
    assert clips["EP03_02"].apex is None  # written "/"
    assert (clips["EP02_04f"].apex, clips["EP02_04f"].emotion) == (79, "repression")  # first
    assert clips["EP03_02f"].offset == 81 and clips["EP01_01"].onset == 60
    assert clips["EP06_01"].onset == 1 and clips["EP01_11f"].emotion == "Repression"
    assert clips["EP02_01f"].row == 2  # the row a spreadsheet shows
    notes = adapter.notes()
    assert rules(notes, "dropped") == {
        "duplicate row (same clip, same values): later row dropped": 1,
        "duplicate row (same clip, other values): later row dropped, first kept": 1,
        "onset or offset is not a frame number": 1}
    assert rules(notes, "repaired") == {
        "offset before the apex: offset set to the apex": 1,
        "onset after the apex: onset set to the apex": 1,
        "frame number 0 read as 1 (frames are numbered from 1)": 1,
        "spaces around a cell stripped": 2,  # "Repression ", "EP06_01 "
        "emotion written in another case than the dataset's other rows": 1}
    duplicate = next(n for n in notes if n.rule.startswith("duplicate row (same clip, same"))
    assert duplicate.clip_key == "casme2/sub01/EP04_02"
    assert str(sheet) in duplicate.detail and "row 5 repeats row 4" in duplicate.detail

    # casme2-5 over the same sheet: every clip is a sample or excluded under a named reason,
    # and the rules applied to the samples travel with the task.
    shutil.copy(sheet, root / "CASME2-coding-20140508.xlsx")
    data = load_task(TASKS.build("casme2-5"), {"casme2": root}, "keep")
    assert sorted(s.clip.clip for s in data.samples) == [
        "EP01_11f", "EP02_01f", "EP02_04f", "EP03_02f", "EP04_02"]
    assert data.class_counts() == {"happiness": 1, "surprise": 0, "disgust": 1,
                                   "repression": 2, "others": 1}
    assert dict(data.exclusion_counts()) == {
        "apex missing": 1, "emotion 'fear' not in casme2-5": 1,
        "apex equals onset": 2,  # EP05_05 as written, EP01_01 once its onset is repaired
        "duplicate row (same clip, same values): later row dropped": 1,
        "duplicate row (same clip, other values): later row dropped, first kept": 1,
        "onset or offset is not a frame number": 1}
    assert {rule: n for (_, rule), n in data.note_counts().items()} == {
        "offset before the apex: offset set to the apex": 1,
        "spaces around a cell stripped": 1,
        "emotion written in another case than the dataset's other rows": 1}
    # The repair that made EP01_01's apex its onset is still on record.
    assert any(n.clip_key == "casme2/sub03/EP01_01" and n.rule.startswith("onset after")
               for n in data.notes)
    assert len(data.samples) + 7 == 12  # every one of the 12 rows is accounted for


def test_a_sheet_without_a_column_names_the_file_and_the_column(tmp_path):
    root = folders(tmp_path, "sub01")
    sheet = FIXTURES / "casme2" / "CASME2-coding-no-apex-column.xlsx"
    with pytest.raises(DatasetError) as error:
        CASME2(root, sheet=sheet).clips()
    assert str(sheet) in str(error.value) and "lacks column(s) ['ApexFrame']" in str(error.value)
    mmew = folders(tmp_path / "mmew", "Micro_Expression")
    csv = tmp_path / "MMEW_no_emotion.csv"
    csv.write_text("Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame\n1,S01-01-001,1,15,31\n")
    with pytest.raises(DatasetError, match=r"MMEW_no_emotion.csv lacks column\(s\) "
                                           r"\['Estimated Emotion'\]"):
        DATASETS.build("mmew", root=mmew, sheet=csv).clips()


def test_samm_header_below_notes_padded_subjects_and_frame_repairs(tmp_path):
    root = folders(tmp_path / "samm", "006", "007", "028", "032")
    adapter = SAMM(root, sheet=FIXTURES / "samm" / "SAMM_Micro_FACS_Codes_fixture.xlsx")
    clips = {c.clip: c for c in adapter.clips()}
    assert set(clips) == {"006_1_2", "006_1_3", "028_4_1", "032_3_1", "007_3_1", "007_5_3",
                          "007_6_1"}
    assert clips["006_1_2"].row == 15  # header on row 14, below 13 rows of notes
    assert clips["006_1_3"].subject == "006"  # written as the number 6
    assert clips["006_1_3"].frame_path(3948) == root / "006/006_1_3/006_03948.jpg"
    assert (clips["028_4_1"].apex, clips["028_4_1"].offset) == (1140, 1140)
    assert (clips["032_3_1"].onset, clips["032_3_1"].apex) == (4880, 4880)
    assert rules(adapter.notes()) == {
        "offset before the apex: offset set to the apex": 1,
        "onset after the apex: onset set to the apex": 1,
        "duplicate row (same clip, same values): later row dropped": 1,
        "emotion written in another case than the dataset's other rows": 1}


def test_casme3_shared_videos_zero_frames_and_case(tmp_path):
    root = folders(tmp_path / "casme3", "spNO.1/a", "spNO.1/e", "spNO.2/j", "spNO.2/d",
                   "spNO.2/f", "spNO.3/e", "spNO.3/g")
    sheet = FIXTURES / "casme3" / "cas(me)3_part_A_ME_label_fixture.xlsx"
    adapter = CASME3(root, sheet=sheet)
    clips = {c.key: c for c in adapter.clips()}
    frames = {key: (c.onset, c.apex, c.offset) for key, c in clips.items()}
    assert frames == {
        "casme3/spNO.1/a_355": (355, 359, 360), "casme3/spNO.1/e_62": (62, 68, 96),
        "casme3/spNO.1/e_96": (96, 102, 106), "casme3/spNO.2/j_10": (10, 15, 30),
        "casme3/spNO.2/d_112": (83, 83, 358), "casme3/spNO.2/f_0": (1, 1, 25),
        "casme3/spNO.3/e_1812": (1812, 1824, 1824), "casme3/spNO.3/g_7": (7, 7, 40)}
    assert clips["casme3/spNO.2/j_10"].frame_path(15) == root / "spNO.2/j/color/15.jpg"
    assert rules(adapter.notes()) == {
        "emotion written in another case than the dataset's other rows": 1,
        "duplicate row (same clip, same values): later row dropped": 1,
        "video folder named in another case than the sheet's Filename": 1,
        "onset after the apex: onset set to the apex": 1,
        "frame number 0 read as 1 (frames are numbered from 1)": 1,
        "offset before the apex: offset set to the apex": 1,
        "onset or offset is not a frame number": 1}
    shutil.copy(sheet, root / sheet.name)  # found in the root, as shipped
    data = load_task(TASKS.build("casme3-7"), {"casme3": root}, "keep")
    assert len(data.samples) == 8  # apex equals onset is kept in CAS(ME)^3 ...
    kept = [n.clip_key for n in data.notes if n.action == "kept"]
    assert sorted(kept) == ["casme3/spNO.2/d_112", "casme3/spNO.2/f_0", "casme3/spNO.3/g_7"]
    assert data.exclusion_counts() == {  # ... and only the rows that make no clip are out
        "duplicate row (same clip, same values): later row dropped": 1,
        "onset or offset is not a frame number": 1}


def test_mmew_emotion_folders_case_and_duplicates(tmp_path):
    root = folders(tmp_path / "mmew", *(f"Micro_Expression/{e}" for e in
                                        ("happiness", "surprise", "anger", "others", "disgust")))
    shutil.copy(FIXTURES / "mmew" / "MMEW_fixture.csv", root / "MMEW_fixture.csv")
    data = load_task(TASKS.build("mmew-6"), {"mmew": root}, "keep")
    samples = {s.clip.clip: s.clip for s in data.samples}
    assert set(samples) == {"S01-01-001", "S01-02-001", "S02-04-001"}
    assert samples["S01-02-001"].frame_path(17) == \
        root / "Micro_Expression/surprise/S01-02-001/17.jpg"  # the sheet says "Surprise"
    assert samples["S01-01-001"].subject == "S01"
    assert dict(data.exclusion_counts()) == {
        "emotion 'anger' not in mmew-6": 1, "apex missing": 1,
        "duplicate row (same clip, same values): later row dropped": 1}
    assert rules(data.notes, "repaired") == {
        "emotion folder named in another case than the sheet's emotion": 1}


def test_smic_apex_list_fallbacks_are_counted_and_shown(tmp_path):
    hs = tmp_path / "smic" / "HS"
    for n in range(100, 107):
        put(hs / "s1/micro/negative/s1_ne_01" / f"image{n}.bmp")
    for n in range(200, 207):
        put(hs / "s1/micro/positive/s1_po_01" / f"image{n}.bmp")
    for n in range(300, 306):
        put(hs / "s2/micro/surprise/s2_sur_01" / f"image{n}.bmp")
    for n in range(1, 6):
        put(hs / "s2/micro/surprise/s2_sur_02" / f"image{n:04d}.bmp")
    (hs / "s2/micro/surprise/s2_sur_02/Thumbs.db").write_bytes(b"not a frame")
    (hs / "s2/micro/negative/s2_ne_01").mkdir(parents=True)  # no frames at all
    (hs / "s2/non_micro").mkdir()
    adapter = SMIC(tmp_path / "smic", apex_list=FIXTURES / "smic" / "smic_apex_fixture.csv")
    clips = {c.key: c for c in adapter.clips()}
    frames = {key: (c.emotion, c.onset, c.apex, c.offset) for key, c in clips.items()}
    assert frames == {"smic/s1/s1_ne_01": ("negative", 100, 103, 106),
                      "smic/s1/s1_po_01": ("positive", 200, 203, 206),
                      "smic/s2/s2_sur_01": ("surprise", 300, 302, 305),
                      "smic/s2/s2_sur_02": ("surprise", 1, 3, 5)}
    assert clips["smic/s2/s2_sur_02"].frame_path(3) == \
        hs / "s2/micro/surprise/s2_sur_02/image0003.bmp"  # zero-padded names
    notes = {n.clip_key: n for n in adapter.notes()}
    assert notes["smic/s1/s1_po_01"].rule == \
        "listed apex is none of the clip's frames: apex = middle frame"
    assert "apex 250" in notes["smic/s1/s1_po_01"].detail
    assert notes["smic/s2/s2_sur_02"].rule == "not in the apex list: apex = middle frame"
    assert (notes["smic/s2/s2_ne_01"].action, notes["smic/s2/s2_ne_01"].rule) == \
        ("dropped", "clip folder holds no frame images")
    with pytest.raises(DatasetError, match="no SMIC apex list .*smic_apex"):
        SMIC(tmp_path / "smic")  # no list in the root, its parent or an annotations folder


def test_composite_list_rows_missing_from_a_dataset_and_bad_lists(tmp_path):
    root = folders(tmp_path / "casme2", "sub01", "sub02", "sub03")
    shutil.copy(FIXTURES / "casme2" / "CASME2-coding-dirty.xlsx",
                root / "CASME2-coding-20140508.xlsx")
    listed = tmp_path / "combined_3class_gt.csv"  # found in the data root's parent
    listed.write_text("casme2,sub01,EP02_01f,1\ncasme2,sub02,EP02_04f,0\n"
                      "casme2,sub03,EP01_01,0\ncasme2,sub09,EP09_09,2\nsamm,6,006_1_2,0\n")
    data = load_task(TASKS.build("casme2-3"), {"casme2": root}, "keep")
    assert sorted(s.clip.clip for s in data.samples) == ["EP01_01", "EP02_01f", "EP02_04f"]
    excluded = dict(data.excluded)
    assert excluded["casme2/sub09/EP09_09"] == \
        "in the MEGC 2019 composite list but not in the dataset"
    relabelled = [n for n in data.notes if n.action == "relabelled"]
    assert [n.clip_key for n in relabelled] == ["casme2/sub03/EP01_01"]  # surprise, listed 0
    assert data.class_counts() == {"negative": 2, "positive": 1, "surprise": 0}
    listed.write_text("casme2,sub01,EP02_01f,1\ncasme2,sub02,EP02_04f,7\n")
    with pytest.raises(DatasetError, match=r"combined_3class_gt.csv line 2: label '7'"):
        load_task(TASKS.build("casme2-3"), {"casme2": root})
    listed.unlink()
    with pytest.raises(DatasetError, match="no MEGC 2019 composite list"):
        load_task(TASKS.build("composite-3"), {"casme2": root, "samm": root, "smic": root})


def test_ckplus_label_files(tmp_path):
    build_ckplus(tmp_path / "ck", labelled=3, unlabelled=2)
    label = next((tmp_path / "ck" / "Emotion").glob("*/*/*_emotion.txt"))
    label.write_text("   0.0000000e+00\n")
    data = load_task(TASKS.build("ckplus-7"), {"ckplus": tmp_path / "ck"}, "keep")
    assert len(data.samples) == 2 and data.exclusion_counts() == {
        "emotion '0' not in ckplus-7": 1}
    label.write_text("happy\n")
    with pytest.raises(DatasetError, match=f"{label}.*expected one number 0-7"):
        DATASETS.build("ckplus", root=tmp_path / "ck").clips()


def write_casme2_sheet(path, rows):
    book = Workbook()
    sheet = book.active
    sheet.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                  "Action Units", "Estimated Emotion"])
    for subject, name, onset, apex, offset, emotion in rows:
        sheet.append([subject, name, None, onset, apex, offset, None, "12", emotion])
    book.save(path)


def test_missing_and_unreadable_frames_drop_only_their_clip(tmp_path):
    root = tmp_path / "casme2"
    rows = [("01", "EP01_01", 1, 3, 5, "happiness"), ("01", "EP01_02", 1, 3, 5, "others"),
            ("02", "EP02_01", 1, 3, 5, "disgust"), ("02", "EP02_02", 1, 3, 5, "surprise"),
            ("02", "EP02_03", 1, 3, 5, "repression")]  # every class: the task reads
    root.mkdir()
    write_casme2_sheet(root / "CASME2-coding-20140508.xlsx", rows)
    for subject, name, *_ in rows:
        for n in (1, 3, 5):
            put(root / f"sub{subject}" / name / f"img{n}.jpg",
                cv2.imencode(".jpg", face_frame(shift=1.0 if n == 3 else 0.0))[1].tobytes())
    (root / "sub01/EP01_02/img3.jpg").unlink()
    (root / "sub02/EP02_02/img5.jpg").write_bytes(b"not a jpeg")
    config = RunConfig(results=tmp_path / "results", data_roots=(("casme2", str(root)),),
                       progress=False)
    prepared = prepare_task("casme2-5", config)
    assert sorted(s.clip.clip for s in prepared.data.samples) == ["EP01_01", "EP02_01",
                                                                  "EP02_03"]
    excluded = dict(prepared.data.excluded)
    assert excluded["casme2/sub01/EP01_02"].startswith("preprocessing: apex frame 3 missing")
    assert str(root / "sub01/EP01_02/img3.jpg") in excluded["casme2/sub01/EP01_02"]
    assert "offset frame 5 is not a readable image" in excluded["casme2/sub02/EP02_02"]
    assert np.all([key in prepared.bundle_keys for key in
                   ("casme2/sub01/EP01_01", "casme2/sub02/EP02_01")])


def test_a_task_with_an_empty_class_refuses_and_lists_with_a_warning(tmp_path, capsys):
    """A class without samples would score 0 and cap UF1/UAR at 4/5: refused by default;
    `list tasks` still shows the counts and says it refuses."""
    from mer_bench.benchmark.cli import main

    root = tmp_path / "casme2"
    rows = [("01", "EP01_01", 1, 3, 5, "happiness"), ("02", "EP02_01", 1, 3, 5, "disgust"),
            ("02", "EP02_02", 1, 3, 5, "surprise"), ("01", "EP01_02", 1, 3, 5, "others")]
    root.mkdir()
    write_casme2_sheet(root / "CASME2-coding-20140508.xlsx", rows)
    for subject, name, *_ in rows:
        for n in (1, 3, 5):
            put(root / f"sub{subject}" / name / f"img{n}.jpg")
    with pytest.raises(DatasetError, match=r"task casme2-5: class repression has no samples "
                                           r".*caps UF1 and UAR at 4/5, so the task refuses"):
        load_task(TASKS.build("casme2-5"), {"casme2": root})
    kept = load_task(TASKS.build("casme2-5"), {"casme2": root}, "keep")
    assert kept.empty_classes() == ["repression"] and len(kept.samples) == 4
    assert main(["list", "tasks", "--data", f"casme2={root}", "--results",
                 str(tmp_path / "results")]) == 0
    listed = capsys.readouterr().out
    assert "REFUSES TO RUN: class repression has no samples" in listed
    config = RunConfig(results=tmp_path / "results", data_roots=(("casme2", str(root)),),
                       progress=False)
    with pytest.raises(DatasetError, match="repression has no samples"):
        prepare_task("casme2-5", config)


def test_a_class_the_data_lack_refuses_unless_the_task_is_asked_to_drop_it(
        _prepared_synthetic):
    from dataclasses import replace

    from mer_bench.benchmark.protocol.tasks import build_task

    config = RunConfig(results=_prepared_synthetic)  # its generated set, read (not written)
    five = build_task("synthetic-5")
    six = replace(five, name="synthetic-6", classes=five.classes + ("contempt",))
    roots = {d: config.root_of(d) for d in six.datasets}
    with pytest.raises(DatasetError, match=r"class contempt has no samples.*"
                                           r"run synthetic-6\+drop-empty to drop it"):
        load_task(six, roots)
    dropped = load_task(replace(six, drop_empty=True), roots)
    assert dropped.task.classes == five.classes and dropped.dropped_classes == ("contempt",)
    assert [s.label for s in dropped.samples] == [s.label for s in load_task(five, roots).samples]
    asked = build_task("synthetic-5+drop-empty")
    assert (asked.name, asked.drop_empty, asked.classes) == ("synthetic-5+drop-empty", True,
                                                            five.classes)
    assert load_task(asked, roots).dropped_classes == ()  # nothing empty: nothing dropped
