"""Registry errors, laziness, and plugins from outside the repository."""

import sys

import pytest

from mer_bench.benchmark.protocol.registry import Registry, RegistryError, load_plugin


def test_duplicate_name_is_an_error():
    registry = Registry("method")
    registry.register("alpha", "json:dumps")
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("alpha", "json:loads")


def test_unknown_name_suggests_close_matches_and_lists_known():
    registry = Registry("method")
    registry.register("ststnet", "json:dumps")
    registry.register("majority", "json:dumps")
    with pytest.raises(RegistryError) as error:
        registry.entry("stsnet")
    assert "Did you mean ststnet" in str(error.value)
    assert "majority" in str(error.value)


def test_entries_are_imported_only_when_used(tmp_path, monkeypatch):
    (tmp_path / "lazy_target_mod.py").write_text("VALUE = 41\ndef make(**kw):\n    return kw\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("method")
    registry.register("lazy", "lazy_target_mod:make", size=3)
    assert "lazy_target_mod" not in sys.modules
    assert registry.build("lazy", extra=1) == {"size": 3, "extra": 1}
    assert "lazy_target_mod" in sys.modules


def test_bad_target_names_the_entry():
    registry = Registry("method")
    registry.register("broken", "json:no_such_thing")
    with pytest.raises(RegistryError, match="broken.*no attribute 'no_such_thing'"):
        registry.build("broken")


def test_builtin_registries_list_their_entries():
    from mer_bench.datasets import DATASETS
    from mer_bench.methods import METHODS

    assert {"majority", "stratified", "ststnet"} <= set(METHODS.names())
    assert {"synthetic", "casme2"} <= set(DATASETS.names())


def test_plugin_file_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        load_plugin(str(tmp_path / "nope.py"))


def test_plugin_module_that_cannot_import_is_a_clear_error():
    with pytest.raises(RegistryError, match="cannot be imported"):
        load_plugin("no_such_plugin_module_xyz")


def test_two_plugin_files_of_one_name_both_load_and_one_file_loads_once(tmp_path):
    """a/plugin.py and b/plugin.py each register their method; a/plugin.py given again (as a
    worker does) is not run twice (its register would fail as a duplicate)."""
    from mer_bench.methods import METHODS

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "plugin.py").write_text(
            "from mer_bench.api import register_method\n"
            f"register_method('same_file_name_{folder}', 'json:dumps')\n")
    try:
        for spec in ("a", "b", "a"):
            load_plugin(str(tmp_path / spec / "plugin.py"))
        assert {"same_file_name_a", "same_file_name_b"} <= set(METHODS.names())
    finally:
        for folder in ("a", "b"):
            METHODS._entries.pop(f"same_file_name_{folder}", None)
