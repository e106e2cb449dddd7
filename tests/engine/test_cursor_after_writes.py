"""After a cycle's writes, the runner lets each connector move its cursor past its own writes.

The runner saves what ``Connector.cursor_after_writes`` returns only once the outbox is drained,
only over the cursor the connector was shown (a cursor saved meanwhile wins), never in a dry run,
and a connector that cannot answer leaves the cursor as it was without failing the cycle.
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


async def test_a_connector_that_declines_keeps_the_cursor_read(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    b = advancing(w.apps["b"])
    b.answer = lambda cursor: None
    store = await _cycle(w, b)
    try:
        assert await _cursor(store, "b") == b.shown[-1]
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


async def test_a_connector_error_keeps_the_cursor_and_the_cycle_goes_on(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    b = advancing(w.apps["b"])

    def fail(cursor: Cursor) -> Cursor | None:
        raise TransientError("b: 503 while checking changes", status=503)

    b.answer = fail
    store = await _cycle(w, b)
    try:
        assert await _cursor(store, "b") == b.shown[-1]
        assert len(w.records("b")) == 1
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
