"""The tests' own cache of prepared sets, shared by pytest sessions, deletes only what it made."""

import os

from tests.conftest import PREPARED_MARKER, sweep_prepared


def test_the_prepared_set_sweep_removes_only_what_the_fixture_marked(tmp_path):
    """The tests' cache of prepared sets (tests/conftest.py) removes old keys it made, never a
    folder without its marker, nor the key in use."""
    for name in ("old", "current", "users"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "kept.txt").write_text("a file of someone's")
    for name in ("old", "current"):
        (tmp_path / name / PREPARED_MARKER).touch()
        os.utime(tmp_path / name / PREPARED_MARKER, (0, 0))  # left long ago
    sweep_prepared(tmp_path, keep="current")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "users"]
    assert (tmp_path / "users" / "kept.txt").read_text() == "a file of someone's"
