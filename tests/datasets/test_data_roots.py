"""A dataset's folder as it unpacks: the subject folders are found one level down, the folder
read is said, and two candidates are an error that names both."""

import shutil

import pytest

from mer_bench.benchmark.protocol.tasks import TASKS, load_task
from mer_bench.datasets.casme3 import CASME3
from mer_bench.datasets.errors import DatasetError
from mer_bench.datasets.sheets import ANNOTATIONS_ENV
from tests import dataset_trees as trees
from tests.conftest import REPO


@pytest.fixture
def unpacked(tmp_path, monkeypatch):
    """CASME2/ as its archives unpack: CASME2_RAW_selected/sub01/..., the sheets beside it."""
    sheet = trees.real(trees.CASME2_2014)
    monkeypatch.delenv(ANNOTATIONS_ENV, raising=False)
    top = tmp_path / "CASME2"
    trees.build_casme2(top / "CASME2_RAW_selected", sheet)
    shutil.copy(sheet, top / sheet.name)
    return top


def test_casme2_given_its_unpacked_folder_reads_the_subject_folders_below_and_says_so(unpacked):
    task = TASKS.build("casme2-5")
    direct = load_task(task, {"casme2": unpacked / "CASME2_RAW_selected"})
    found = load_task(task, {"casme2": unpacked})
    assert len(found.samples) == len(direct.samples) == 255 - len(direct.excluded)
    assert [s.clip.frame_path(s.clip.apex) for s in found.samples] == \
        [s.clip.frame_path(s.clip.apex) for s in direct.samples]
    assert direct.root_notes == ()
    (note,) = found.root_notes
    assert str(unpacked / "CASME2_RAW_selected") in note and "one level below" in note


def test_casme2_cropped_faces_read_their_reg_img_frames(unpacked):
    cropped = unpacked / "Cropped"
    shutil.copytree(unpacked / "CASME2_RAW_selected", cropped)
    for frame in list(cropped.rglob("img*.jpg")):
        frame.rename(frame.with_name("reg_" + frame.name))
    data = load_task(TASKS.build("casme2-5"), {"casme2": cropped})
    apexes = [s.clip.frame_path(s.clip.apex) for s in data.samples]
    assert len(apexes) > 200 and all(p.name.startswith("reg_img") and p.is_file() for p in apexes)


def test_two_folders_of_subject_folders_below_the_root_is_an_error_naming_both(unpacked):
    shutil.copytree(unpacked / "CASME2_RAW_selected" / "sub01",
                    unpacked / "Cropped" / "sub01")
    with pytest.raises(DatasetError, match=r"several folders .*\(CASME2_RAW_selected, Cropped\)"
                                           r".*--data casme2=DIR"):
        load_task(TASKS.build("casme2-5"), {"casme2": unpacked})


def test_casme3_part_a_folder_as_it_unpacks(tmp_path):
    sheet = REPO / "tests" / "fixtures" / "casme3" / "cas(me)3_part_A_ME_label_fixture.xlsx"
    trees.build_casme3(tmp_path / "part_A", sheet)
    adapter = CASME3(tmp_path, sheet=sheet)
    assert adapter.root == tmp_path / "part_A" and "part_A" in adapter.root_note
    assert adapter.clips() and all(c.frame_path(c.onset).is_file() for c in adapter.clips())


TINY_PLUGIN = '''
from mer_bench.benchmark.protocol.tasks import TASKS, Source, Task
from mer_bench.datasets.tasks import CASME2_5
from mer_bench.datasets import register

register("tiny", "mer_bench.datasets.synthetic:Synthetic", name="tiny", seed=3, subjects=1,
         clips_per_subject=5, frame_size=(96, 96))
TASKS.register("tiny-5", Task, name="tiny-5", classes=tuple(CASME2_5),
               sources=(Source("tiny", CASME2_5),))
'''


def test_a_generated_synthetic_set_names_its_folder_once_and_not_under_quiet(tmp_path):
    import subprocess
    import sys

    from mer_bench.datasets.synthetic import Synthetic

    plugin = tmp_path / "tiny_plugin.py"
    plugin.write_text(TINY_PLUGIN)

    def prepare(results, *options) -> str:
        done = subprocess.run([sys.executable, str(REPO / "run_benchmark.py"), "prepare",
                               "--task", "tiny-5", "--plugin", str(plugin), "--results",
                               str(results), "--prepare-workers", "1", *options],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    said = f"tiny: generated the SYNTHETIC dataset (not real data) in {tmp_path / 'r' / 'data'}"
    assert said in prepare(tmp_path / "r")  # the first use generates it, and says where
    assert "generated" not in prepare(tmp_path / "r")  # already there: nothing to say
    assert "generated" not in prepare(tmp_path / "quiet", "--quiet")
    assert (tmp_path / "quiet" / "data" / "tiny").is_dir()  # generated all the same
    again = Synthetic(tmp_path / "r" / "data" / "tiny", name="tiny", seed=3, subjects=1,
                      clips_per_subject=5, frame_size=(96, 96))
    assert again.root_note == ""
