"""Admin operations signal an admin's mistake with syncd's own errors, and change nothing then."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.errors import AdminError, ConflictClosed, ConflictNotFound, NotASide, SyncdError
from syncd.store import AsyncStore, Store
from syncd.sync.operations import drop_dead_letters, entity_view, resolve_conflict

from .world import OBJ, World, person


async def _open_conflict(tmp_path: Path) -> tuple[World, int]:
    """A world with one field conflict left for review (two names at first match)."""
    w = World(tmp_path, extra='initial_conflict = "review"')
    w.apps["a"].seed(OBJ, person("cy@example.com", "Cy"))
    w.apps["c"].seed(OBJ, person("cy@example.com", "Cyrus"))
    await w.settle()
    (conflict,) = w.conflicts()
    return w, int(conflict["id"])


async def test_admin_mistakes_in_resolving_raise_syncd_errors_and_change_nothing(tmp_path: Path) -> None:
    w, conflict_id = await _open_conflict(tmp_path)
    store = await AsyncStore(w.db).open()
    mappings = {w.mapping.name: w.mapping}
    try:
        with pytest.raises(ConflictNotFound, match="no conflict 999") as missing:
            await resolve_conflict(store, mappings, 999, take="a")
        assert missing.value.conflict_id == 999
        with pytest.raises(NotASide, match=r"'b' is not a side of conflict \d+ \(sides: ") as side:
            await resolve_conflict(store, mappings, conflict_id, take="b")
        assert sorted(side.value.sides) == ["a", "c"]
        assert [c["id"] for c in w.conflicts()] == [conflict_id]  # still open
        await resolve_conflict(store, mappings, conflict_id, take="c")
        with pytest.raises(ConflictClosed, match="is already resolved") as closed:
            await resolve_conflict(store, mappings, conflict_id, take="a")
        assert closed.value.status == "resolved"
    finally:
        await store.close()
    for error in (ConflictNotFound, ConflictClosed, NotASide):
        assert issubclass(error, AdminError)
        assert issubclass(error, SyncdError)
        assert not issubclass(error, (LookupError, ValueError))
    view = Store(w.db)
    try:
        found = entity_view(view, "CY@example.com ")
    finally:
        view.close()
    assert found is not None
    assert found["values"]["name"] == "Cyrus"


def test_dropping_ignores_ids_that_are_not_dead_letters(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        assert drop_dead_letters(store, [1, 2, 3]) == 0
    finally:
        store.close()
