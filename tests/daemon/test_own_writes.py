"""``syncd run`` asks each connector it wrote to for a cursor past its own writes
(``Connector.cursor_after_writes``), as ``syncd sync`` does after a cycle: where the connector
vouches for them, the daemon's next poll of that app reads only what others changed there.

The SQL connector does not implement it; here its answer is what the app would tell: a cursor
past every change since the one shown (in these tests nobody else writes between our writes and
that question)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syncd.daemon import Daemon

from .conftest import make_settings
from .harness import PEOPLE_MAPPING, SqlTable, sql_app, wait_for

OLD = "2020-01-01T00:00:00.000000Z"


async def _settled(daemon: Daemon) -> None:
    """Every write queued so far is sent, and the daemon has stepped its cursors past them."""
    await wait_for(lambda: daemon.runner.total("writes") > 0, 10, what="the writes")
    while await daemon.store.call(lambda s: s.outbox_depth()):
        await daemon.dispatcher.next_round()
    await daemon.dispatcher.next_round()
    dispatcher = daemon.dispatcher
    await wait_for(lambda: not (dispatcher.unsettled or dispatcher.settling), 10, what="the settling")


async def _poll_reads(daemon: Daemon, app: str) -> int:
    """How many records one incremental poll of ``app`` reads."""
    before = daemon.runner.app_stats(app).read
    await daemon.poll(app)
    return daemon.runner.app_stats(app).read - before


def _vouching(daemon: Daemon, app: str) -> list[dict[str, Any]]:
    """Make ``app``'s connector vouch for its writes; returns the cursors it is asked about."""
    connector = daemon.runner.connectors[app]
    asked: list[dict[str, Any]] = []

    async def cursor_after_writes(obj: str, cursor: dict[str, Any]) -> dict[str, Any] | None:
        asked.append(cursor)
        last = None
        async for page in connector.read_changes(obj, cursor):
            last = page.cursor
        return last

    connector.cursor_after_writes = cursor_after_writes  # type: ignore[method-assign]
    return asked


async def _two_tables(tmp_path: Path, *, vouching: bool = True) -> tuple[Daemon, SqlTable, SqlTable]:
    alpha = SqlTable.create(tmp_path / "alpha.db", 30, prefix="a", at=OLD)
    beta = SqlTable.create(tmp_path / "beta.db", 20, prefix="b", at=OLD)
    apps = {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}
    for app in apps.values():
        # Reads normally repeat the last seconds' rows (commits becoming visible late); these
        # polls follow at once, so without this every recent row would be read again by design.
        app["settings"]["overlap_seconds"] = 0
    daemon = Daemon(make_settings(tmp_path, apps, {"people": PEOPLE_MAPPING}))
    await daemon.start()
    if vouching:  # before the first writes
        _vouching(daemon, "alpha")
        _vouching(daemon, "beta")
    await wait_for(lambda: set(daemon.metrics.last_poll) == {"alpha", "beta"}, 15, what="the first polls")
    await wait_for(lambda: alpha.names() == beta.names(), 10, what="the initial sync")
    return daemon, alpha, beta


async def test_the_next_poll_after_the_first_sync_reads_none_of_the_daemons_own_writes(
    tmp_path: Path,
) -> None:
    daemon, alpha, beta = await _two_tables(tmp_path)
    try:
        await _settled(daemon)
        # The first sync wrote 20 rows into alpha and 30 into beta: none is read back.
        assert await _poll_reads(daemon, "alpha") == 0
        assert await _poll_reads(daemon, "beta") == 0
        assert alpha.count() == beta.count() == 50
    finally:
        await daemon.stop()


async def test_writes_after_a_poll_are_not_read_back_but_others_changes_are(tmp_path: Path) -> None:
    daemon, alpha, beta = await _two_tables(tmp_path)
    try:
        await _settled(daemon)
        alpha.rename("a1@example.com", "Edited in alpha")
        alpha.insert("new@example.com", "New in alpha")
        assert await _poll_reads(daemon, "alpha") == 2
        await _settled(daemon)
        assert beta.name_of("a1@example.com") == "Edited in alpha"
        assert beta.name_of("new@example.com") == "New in alpha"
        # Someone edits beta after the daemon's writes there: only that change is read.
        beta.rename("b2@example.com", "Edited in beta")
        assert await _poll_reads(daemon, "beta") == 1
        await _settled(daemon)
        assert alpha.name_of("b2@example.com") == "Edited in beta"
        assert await _poll_reads(daemon, "alpha") == 0
    finally:
        await daemon.stop()


async def test_without_the_connectors_word_the_writes_are_read_back_not_skipped_on_a_version(
    tmp_path: Path,
) -> None:
    # Versions alone cannot tell an edit made in the second of our write where an app's
    # versions are coarse: the daemon reads such writes back and compares their values.
    daemon, _alpha, _beta = await _two_tables(tmp_path, vouching=False)
    try:
        await _settled(daemon)
        assert await _poll_reads(daemon, "beta") == 50
    finally:
        await daemon.stop()
