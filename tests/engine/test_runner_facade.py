"""The runner is changed only through its methods: pause, resume, reload, set a connector."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.connector import AuthError
from syncd.mapping import load_mapping
from syncd.runner import Runner
from syncd.store import AsyncStore
from syncd.testing.memory import MemoryApp, MemoryConnector

from .world import OBJ, World, mapping_text, person


async def _runner(w: World) -> tuple[Runner, AsyncStore]:
    store = await AsyncStore(w.db).open()
    return Runner(store, [w.mapping], w.connectors(), retry_base=0.0), store


async def test_a_paused_app_is_neither_read_nor_written_until_resumed(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    runner, store = await _runner(w)
    try:
        runner.pause("b", AuthError("b: 401", status=401))
        assert runner.is_paused("b")
        assert runner.paused == {"b"}
        await runner.run_cycle()
        assert w.records("b") == {}
        assert len(w.records("c")) == 1
        assert runner.resume("b")
        assert not runner.resume("b")  # not paused any more
        await runner.run_cycle()
        assert len(w.records("b")) == 1
    finally:
        await store.close()


async def test_the_runners_collections_cannot_be_changed_from_outside(tmp_path: Path) -> None:
    w = World(tmp_path)
    runner, store = await _runner(w)
    try:
        with pytest.raises(TypeError):
            runner.connectors["b"] = runner.connectors["a"]  # type: ignore[index]
        with pytest.raises(AttributeError):
            runner.paused.add("a")  # type: ignore[attr-defined]
        with pytest.raises(TypeError):
            runner.by_name["other"] = w.mapping  # type: ignore[index]
        assert isinstance(runner.mappings, tuple)
    finally:
        await store.close()


async def test_a_reload_brings_new_mappings_and_the_new_apps_connectors(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    runner, store = await _runner(w)
    try:
        await runner.run_cycle()
        assert not runner.syncs("c")
        # The mapping file now names a third app: the reload brings its connector along.
        c = MemoryApp("c")
        path = tmp_path / "people.toml"
        path.write_text(mapping_text(("a", "b", "c"), "priority", "propagate", 'initial_conflict = "policy"'))
        mapping = load_mapping(path, known_apps=["a", "b", "c"])
        runner.reload([mapping], {"c": MemoryConnector.over(c)})
        assert runner.syncs("c")
        assert runner.mappings == (mapping,)
        assert runner.by_name["people"] is mapping
        w.apps["a"].seed(OBJ, person("bob@example.com", "Bob"))
        await runner.run_cycle()
        assert [r["email"] for r in c.live(OBJ).values()] == ["bob@example.com"]
    finally:
        await store.close()
