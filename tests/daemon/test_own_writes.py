"""``syncd run`` steps its cursors past its own writes, as ``syncd sync`` does after a cycle: the
daemon's next poll of an app it wrote to reads only what others changed there."""

from __future__ import annotations

from pathlib import Path

from syncd.daemon import Daemon

from .conftest import make_settings, started
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


async def _two_tables(tmp_path: Path) -> tuple[Daemon, SqlTable, SqlTable]:
    alpha = SqlTable.create(tmp_path / "alpha.db", 30, prefix="a", at=OLD)
    beta = SqlTable.create(tmp_path / "beta.db", 20, prefix="b", at=OLD)
    apps = {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}
    for app in apps.values():
        # Reads normally repeat the last seconds' rows (commits becoming visible late); these
        # polls follow at once, so without this every recent row would be read again by design.
        app["settings"]["overlap_seconds"] = 0
    settings = make_settings(tmp_path, apps, {"people": PEOPLE_MAPPING})
    daemon = await started(settings)
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
