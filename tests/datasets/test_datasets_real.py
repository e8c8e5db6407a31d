"""Every adapter on a frame tree built from the real annotation files; the paper's counts.

The trees follow each dataset's real layout (tests/dataset_trees.py); the annotation files
are read from $MER_BENCH_ANNOTATIONS or ../shared/annotations and the tests that need one are
skipped, naming it, where it is absent.
"""

import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from mer_bench.benchmark.protocol.folds import loso_folds
from mer_bench.benchmark.execution.config import RunConfig
from mer_bench.benchmark.protocol.tasks import TASKS, Source, Task, build_task, load_task
from mer_bench.datasets.casme2 import CASME2
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.sheets import ANNOTATIONS_ENV
from tests import dataset_trees as trees
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def _annotations(monkeypatch):
    """Sheets and lists are found in the real annotations folder, as a user's --annotations."""
    monkeypatch.setenv(ANNOTATIONS_ENV, str(trees.annotations_dir()))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """One --data-root with a subfolder per dataset, each in its real layout."""
    root = tmp_path_factory.mktemp("data")
    return root


def _tree(data_root, name, build, *files):
    paths = [trees.real(f) for f in files]
    if not (data_root / name).exists():
        build(data_root / name, *paths)
    return data_root / name


@pytest.fixture
def casme2(data_root):
    return _tree(data_root, "casme2", trees.build_casme2, trees.CASME2_2014)


@pytest.fixture
def composite(data_root, casme2):
    _tree(data_root, "samm", trees.build_samm, trees.SAMM_SHEET)
    _tree(data_root, "smic", trees.build_smic, trees.MEGC_LIST, trees.SMIC_APEX)
    trees.real(trees.MEGC_LIST)
    return data_root


def load(name, data_root, empty_classes="refuse"):
    config = RunConfig(default_data_root=str(data_root))
    task = build_task(name)
    return load_task(task, {d: config.root_of(d) for d in task.datasets}, empty_classes)


def assert_loso(data, folds):
    subjects = [s.clip.subject_key for s in data.samples]
    assert len(loso_folds(subjects)) == folds
    for fold in loso_folds(subjects):
        train = {subjects[i] for i in fold.train}
        test = {subjects[i] for i in fold.test}
        assert test == {fold.subject} and fold.subject not in train
        assert len(fold.train) + len(fold.test) == len(subjects)


def test_casme2_5_from_the_2014_sheet(casme2, data_root):
    data = load("casme2-5", data_root)
    assert len(data.samples) == 244 and len(data.subjects()) == 26
    assert data.class_counts() == {"happiness": 32, "surprise": 25, "disgust": 61,
                                   "repression": 27, "others": 99}
    assert dict(data.exclusion_counts()) == {
        "emotion 'sadness' not in casme2-5": 7, "emotion 'fear' not in casme2-5": 2,
        "apex missing": 1, "apex equals onset": 1}
    excluded = dict(data.excluded)
    assert excluded["casme2/sub04/EP12_01f"] == "apex missing"  # written "/"
    assert excluded["casme2/sub05/EP09_05f"] == "apex equals onset"
    assert_loso(data, 26)
    first = next(s.clip for s in data.samples if s.clip.key == "casme2/sub01/EP02_01f")
    assert (first.onset, first.apex, first.offset) == (46, 59, 86)
    assert first.frame_path(46) == casme2 / "sub01" / "EP02_01f" / "img46.jpg"
    assert first.frame_path(46).is_file()


def test_casme2_2019_release_loads_with_its_three_relabelled_clips(casme2, tmp_path,
                                                                   monkeypatch):
    sheet = trees.real(trees.CASME2_2019)
    clips = {c.key: c for c in CASME2(casme2, sheet=sheet, release="2019").clips()}
    assert len(clips) == 255
    relabelled = ["casme2/sub24/EP07_01", "casme2/sub24/EP07_04f", "casme2/sub24/EP10_03"]
    assert [clips[key].emotion for key in relabelled] == ["surprise"] * 3
    old = {c.key: c for c in CASME2(casme2, sheet=trees.real(trees.CASME2_2014)).clips()}
    assert [old[key].emotion for key in relabelled] == ["sadness"] * 3
    task = TASKS.build("casme2-5")
    as_2019 = Task("casme2-5-2019", task.classes,
                   (Source("casme2", task.source("casme2").mapping, {"release": "2019"}),))
    data = load_task(as_2019, {"casme2": casme2})
    assert len(data.samples) == 247 and data.class_counts()["surprise"] == 28
    # casme2-5 says it uses the 2014 labels: with only the 2019 sheet at hand it says so.
    only_2019 = tmp_path / "annotations"
    only_2019.mkdir()
    shutil.copy(sheet, only_2019 / sheet.name)
    monkeypatch.setenv(ANNOTATIONS_ENV, str(only_2019))
    with pytest.raises(DatasetError, match="uses the 2014 CASME II labels.*20140508"):
        load_task(task, {"casme2": casme2})


def test_composite_3_is_exactly_the_megc_2019_list(composite):
    data = load("composite-3", composite)
    assert len(data.samples) == 442 and len(data.subjects()) == 68
    assert data.class_counts() == {"negative": 250, "positive": 109, "surprise": 83}
    per_dataset = Counter(s.clip.dataset for s in data.samples)
    assert per_dataset == {"casme2": 145, "samm": 133, "smic": 164}
    # Subjects are keyed by (dataset, subject) as the adapters name them: SAMM "006" (the list
    # writes "6"), SMIC "s1" (the list writes "s01").
    assert "samm/006" in data.subjects() and "smic/s1" in data.subjects()
    assert "casme2/sub01" in data.subjects()
    # Every row of the list is a sample, with the list's label.
    megc = [line.split(",") for line in trees.real(trees.MEGC_LIST).read_text().split()]
    labels = {s.clip.key: s.label for s in data.samples}

    def plain(dataset, subject, clip):  # the list pads SMIC subjects, not SAMM's
        return dataset, int(re.sub(r"\D", "", subject)), re.sub(r"^s0+", "s", clip.lower())

    as_named = {plain(s.clip.dataset, s.clip.subject, s.clip.clip): s.clip.key
                for s in data.samples}
    assert len(as_named) == len(megc) == 442
    for dataset, subject, clip, code in megc:
        assert labels[as_named[plain(dataset, subject, clip)]] == int(code)
    assert_loso(data, 68)
    assert data.exclusion_counts() == {"not in the MEGC 2019 composite list": 110 + 26}
    fallbacks = [n for n in data.notes if n.action == "fell back"]
    assert len(fallbacks) == 7 and all(n.clip_key.startswith("smic/") for n in fallbacks)


@pytest.mark.parametrize("name, samples, subjects, classes", [
    ("casme2-3", 145, 24, {"negative": 88, "positive": 32, "surprise": 25}),
    ("samm-3", 133, 28, {"negative": 92, "positive": 26, "surprise": 15}),
    ("smic-3", 164, 16, {"negative": 70, "positive": 51, "surprise": 43}),
])
def test_per_dataset_parts_of_the_megc_list(composite, name, samples, subjects, classes):
    data = load(name, composite)
    assert (len(data.samples), len(data.subjects()), data.class_counts()) == \
        (samples, subjects, classes)
    assert_loso(data, subjects)
    assert {s.clip.dataset for s in data.samples} == {name.split("-")[0]}


def test_smic_apexes_come_from_the_apex_list_matched_by_frame_number(composite):
    clips = {s.clip.key: s.clip for s in load("smic-3", composite).samples}
    clip = clips["smic/s20/s20_ne_01"]
    assert (clip.onset, clip.apex, clip.offset) == (17581039, 17581046, 17581055)
    assert clip.emotion == "negative"
    assert clip.frame_path(clip.apex) == \
        composite / "smic/HS/s20/micro/negative/s20_ne_01/image17581046.bmp"
    lacking = clips["smic/s1/s1_ne_02"]  # the MEGC list has it, the apex list does not
    assert (lacking.onset, lacking.apex, lacking.offset) == (1001, 1003, 1005)


@pytest.fixture
def casme3(data_root):
    return _tree(data_root, "casme3", trees.build_casme3, trees.CASME3_SHEET)


def test_casme3_tasks_keep_all_860_clips_and_name_every_repair(casme3, data_root):
    seven = load("casme3-7", data_root)
    assert len(seven.samples) == 860 and len(seven.subjects()) == 94
    assert seven.class_counts() == {"anger": 64, "disgust": 250, "fear": 86, "happy": 55,
                                    "sad": 57, "surprise": 187, "others": 161}
    assert seven.excluded == []
    four = load("casme3-4", data_root)
    assert four.class_counts() == {"negative": 457, "positive": 55, "surprise": 187,
                                   "others": 161}
    three = load("casme3-3", data_root)
    assert len(three.samples) == 699
    assert three.exclusion_counts() == {"emotion 'others' not in casme3-3": 161}
    rules = {rule: n for (_, rule), n in seven.note_counts().items()}
    assert rules == {
        "onset after the apex: onset set to the apex": 2,  # spNO.149 d, spNO.216 d
        "offset before the apex: offset set to the apex": 2,  # spNO.40 e (offset 0), twice
        "frame number 0 read as 1 (frames are numbered from 1)": 1,  # spNO.216 e
        "emotion written in another case than the dataset's other rows": 3,  # "Others"
        "video folder named in another case than the sheet's Filename": 1,  # spNO.14 "J"
        "apex equals onset (kept: the onset->apex flow is zero)": 57,
    }
    clips = {s.clip.key: s.clip for s in seven.samples}
    # Several micro-expressions share a video: the clip id carries the onset.
    assert {"casme3/spNO.1/e_62", "casme3/spNO.1/e_96"} <= set(clips)
    repaired = clips["casme3/spNO.149/d_112"]
    assert (repaired.onset, repaired.apex, repaired.offset) == (83, 83, 358)
    assert clips["casme3/spNO.14/j_1012"].frame_path(1019) == \
        casme3 / "spNO.14" / "j" / "color" / "1019.jpg"
    assert_loso(seven, 94)


def test_mmew_tasks_from_the_sheet_without_others(data_root):
    """The only MMEW sheet here has no "others": both tasks refuse to run (an empty class
    caps UF1 and UAR); read anyway for listing, they show the counts."""
    _tree(data_root, "mmew", trees.build_mmew, trees.MMEW_SHEET)
    for name in ("mmew-6", "mmew-4"):
        with pytest.raises(DatasetError, match=rf"task {name}: class others has no samples.*"
                                               r"caps UF1 and UAR at \d/\d, so the task refuses"):
            load_task(TASKS.build(name), {"mmew": data_root / "mmew"})
    six = load("mmew-6", data_root, "keep")
    assert six.class_counts() == {"happiness": 36, "surprise": 89, "disgust": 72, "fear": 16,
                                  "sadness": 13, "others": 0}
    assert six.exclusion_counts() == {"emotion 'anger' not in mmew-6": 8}
    four = load("mmew-4", data_root, "keep")
    assert four.class_counts() == {"happiness": 36, "disgust": 72, "surprise": 89,
                                   "others": 0}  # the paper's four; this sheet has no others
    assert len(four.subjects()) == 29  # one subject has only anger, fear or sadness clips
    clip = next(s.clip for s in four.samples if s.clip.clip == "S01-01-001")
    assert clip.frame_path(15) == data_root / "mmew/Micro_Expression/happiness/S01-01-001/15.jpg"


def test_mmew_6_drops_its_empty_class_only_when_asked_and_says_so(data_root):
    _tree(data_root, "mmew", trees.build_mmew, trees.MMEW_SHEET)
    six = load("mmew-6", data_root, "keep")
    dropped = load("mmew-6+drop-empty", data_root)
    assert dropped.task.name == "mmew-6+drop-empty" and dropped.dropped_classes == ("others",)
    assert dropped.task.classes == ("happiness", "surprise", "disgust", "fear", "sadness")
    assert dropped.class_counts() == {c: n for c, n in six.class_counts().items() if n}
    # the labels renumbered, every clip keeping its class
    assert [dropped.task.classes[s.label] for s in dropped.samples] == \
        [six.task.classes[s.label] for s in six.samples]
    assert dropped.run_notes[-1] == ("class others has no samples: dropped on request "
                                     "(+drop-empty); scores are over 5 classes")


def test_ckplus_7_is_the_327_labelled_sequences(tmp_path):
    codes = trees.build_ckplus(tmp_path / "ck")
    data = load_task(TASKS.build("ckplus-7"), {"ckplus": tmp_path / "ck"})
    assert len(data.samples) == 327 and data.excluded == []
    names = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
    assert data.class_counts() == {names[int(c) - 1]: n for c, n in sorted(codes.items())}
    clip = data.samples[0].clip
    assert clip.onset == clip.offset == 1 and clip.apex > 1  # the paper's rule
    assert clip.frame_path(clip.apex).is_file() and clip.frame_path(1).is_file()


def test_data_root_subfolders_serve_a_task_over_several_datasets(tmp_path):
    (tmp_path / "CASME2").mkdir()
    (tmp_path / "samm").mkdir()
    config = RunConfig(default_data_root=str(tmp_path), data_roots=(("smic", "/elsewhere"),))
    assert config.root_of("casme2") == tmp_path / "CASME2"
    assert config.root_of("samm") == tmp_path / "samm"
    assert config.root_of("smic", must_exist=False).as_posix() == "/elsewhere"
    with pytest.raises(DatasetError, match="--data smic=DIR: /elsewhere does not exist"):
        config.root_of("smic")
    assert config.root_of("mmew") == tmp_path  # no subfolder: the root itself
    assert RunConfig(results=tmp_path).root_of("casme3") == tmp_path / "data" / "casme3"


@pytest.mark.parametrize("dataset, expected", [
    ("casme2", "sub01/EP02_01f/img46.jpg"), ("samm", "006/006_1_2/006_05562.jpg"),
    ("smic", "HS/s1/micro/negative/s1_ne_01"), ("mmew", "Micro_Expression"),
    ("casme3", "spNO.1/b/color/175.jpg"), ("ckplus", "cohn-kanade-images"),
])
@pytest.mark.parametrize("annotations", [True, False])
def test_a_wrong_root_says_what_was_looked_for(tmp_path, monkeypatch, dataset, expected,
                                               annotations):
    from mer_bench.datasets import DATASETS

    if not annotations:  # the sheet is not found either
        monkeypatch.delenv(ANNOTATIONS_ENV)
    for root in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(DatasetError) as error:
            DATASETS.build(dataset, root=root).clips()
        assert str(root) in str(error.value) and expected in str(error.value)


def test_list_tasks_prints_clips_subjects_classes_and_every_rule(composite, casme3):
    listed = subprocess.run(
        [sys.executable, str(REPO / "run_benchmark.py"), "list", "tasks", "--data-root",
         str(composite), "--annotations", str(trees.annotations_dir()), "--results",
         str(composite / "results")], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    blocks = {block.split(":", 1)[0]: block for block in listed.stdout.split("\n\n")}
    assert ("244 samples (real), 26 subjects: happiness 32, surprise 25, disgust 61, "
            "repression 27, others 99") in blocks["casme2-5"]
    assert "excluded 1: apex missing" in blocks["casme2-5"]
    assert "excluded 7: emotion 'sadness' not in casme2-5" in blocks["casme2-5"]
    assert "442 samples (real), 68 subjects: negative 250, positive 109, surprise 83" in \
        blocks["composite-3"]
    assert "fell back 7: not in the apex list: apex = middle frame" in blocks["smic-3"]
    assert "repaired 2: onset after the apex: onset set to the apex" in blocks["casme3-7"]
    assert "data not available: ckplus" in blocks["ckplus-7"]  # no CK+ in this root


def test_cdmer_pair_folds_casme2_and_smic_each_tested_by_the_other(composite):
    """Zong et al.'s CDMER pair as `cdmer-3@lodo`: two folds, one a direction; CASME II's
    2014 labels relabelled (repression and others out, each exclusion counted)."""
    data = load("cdmer-3@lodo", composite)
    assert data.folds() == ["casme2", "smic"]
    assert Counter(data.fold_keys()) == {"casme2": 127, "smic": 164}
    casme2 = Counter(data.task.classes[s.label] for s in data.samples
                     if s.clip.dataset == "casme2")
    assert casme2 == {"negative": 70, "positive": 32, "surprise": 25}
    counts = data.exclusion_counts()
    assert counts["emotion 'repression' not in cdmer-3@lodo"] == 27
    assert counts["emotion 'others' not in cdmer-3@lodo"] == 99
    for dataset in data.folds():
        fold = loso_folds(data.fold_keys())[data.folds().index(dataset)]
        assert {data.samples[i].clip.dataset for i in fold.test} == {dataset}
        assert {data.samples[i].clip.dataset for i in fold.train} == {"casme2", "smic"} - {dataset}


def test_holdout_database_folds_of_the_composite(composite):
    data = load("composite-3@lodo", composite)
    assert Counter(data.fold_keys()) == {"casme2": 145, "samm": 133, "smic": 164}
    assert sorted(s.clip.key for s in data.samples) == \
        sorted(s.clip.key for s in load("composite-3", composite).samples)
