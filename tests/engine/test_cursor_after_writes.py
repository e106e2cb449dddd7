"""After a cycle's writes, the runner lets each connector move its cursor past its own writes.

The runner saves what ``Connector.cursor_after_writes`` returns only once the outbox is drained,
only over the cursor the connector was shown (a cursor saved meanwhile wins), never in a dry run,
and a connector that declines or cannot answer fails nothing: the runner's own catch-up (past
pages holding exactly what syncd recorded) applies instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncd.connector import Cursor, TransientError
from syncd.runner import Runner
from syncd.store import AsyncStore
from syncd.testing.memory import MemoryApp, MemoryConnector

from .world import OBJ, World, person


class Advancing(MemoryConnector):
    """A memory connector whose answer to ``cursor_after_writes`` the test chooses."""

    answer: Callable[[Cursor], Cursor | None] = staticmethod(lambda cursor: {**cursor, "past_writes": True})
    shown: list[Cursor]
    #: Runs before answering (e.g. another reader saving a newer cursor meanwhile).
    meanwhile: Callable[[], Any] | None = None

    async def cursor_after_writes(self, obj: str, cursor: Cursor) -> Cursor | None:
        self.shown.append(dict(cursor))
        if self.meanwhile is not None:
            await self.meanwhile()
        return self.answer(cursor)


def advancing(app: MemoryApp) -> Advancing:
    connector = Advancing(MemoryConnector.over(app).config, app=app.name, backend=app)
    connector.shown = []
    return connector


async def _cycle(w: World, b: Advancing, *, dry_run: bool = False) -> AsyncStore:
    store = await AsyncStore(w.db).open()
    connectors: dict[str, MemoryConnector] = {**w.connectors(), "b": b}
    runner = Runner(store, [w.mapping], connectors, retry_base=0.0, dry_run=dry_run)
    await runner.run_cycle()
    return store


async def _cursor(store: AsyncStore, app: str) -> dict[str, Any] | None:
    return await store.call(lambda s: s.get_cursor("people", app))


async def test_the_cursor_a_connector_returns_after_the_writes_is_saved(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    b = advancing(w.apps["b"])
    store = await _cycle(w, b)
    try:
        assert len(w.records("b")) == 1, "the cycle wrote to b"
        assert b.shown, "the connector was asked after the writes"
        saved = await _cursor(store, "b")
        assert saved == {**b.shown[-1], "past_writes": True}
    finally:
        await store.close()


async def _read_by_next_cycle(w: World, store: AsyncStore, app: str) -> int:
    """How many records of ``app`` the next cycle reads (its own writes are not re-read)."""
    runner = Runner(store, [w.mapping], w.connectors(), retry_base=0.0)
    stats = await runner.run_cycle()
    return int(stats.apps[app].read)


async def test_a_connector_that_declines_leaves_it_to_the_runners_own_catch_up(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    b = advancing(w.apps["b"])
    b.answer = lambda cursor: None
    store = await _cycle(w, b)
    try:
        assert b.shown, "the connector was asked first"
        # The runner then stepped the cursor past the page holding exactly what it wrote.
        assert await _cursor(store, "b") != b.shown[-1]
        assert await _read_by_next_cycle(w, store, "b") == 0
    finally:
        await store.close()


async def test_a_cursor_saved_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    b = advancing(w.apps["b"])
    newer = {"seq": 10_000, "by": "another reader"}

    async def save_newer() -> None:
        other = await AsyncStore(w.db).open()
        try:
            await other.call(lambda s: s.set_cursor("people", "b", newer))
        finally:
            await other.close()

    b.meanwhile = save_newer
    store = await _cycle(w, b)
    try:
        assert await _cursor(store, "b") == newer, "a newer cursor must never be replaced by an older one"
    finally:
        await store.close()


async def test_a_connector_error_fails_nothing_and_the_runners_catch_up_still_applies(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    b = advancing(w.apps["b"])

    def fail(cursor: Cursor) -> Cursor | None:
        raise TransientError("b: 503 while checking changes", status=503)

    b.answer = fail
    store = await _cycle(w, b)
    try:
        assert len(w.records("b")) == 1
        assert await _read_by_next_cycle(w, store, "b") == 0
    finally:
        await store.close()


async def test_a_dry_run_never_moves_a_cursor(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    b = advancing(w.apps["b"])
    store = await _cycle(w, b, dry_run=True)
    try:
        assert b.shown == []
    finally:
        await store.close()
