"""``syncd run`` shows the progress of its first sync (JSON lines on stderr when not on a
terminal), then ends the display once the apps were read and the writes sent; later polls add
no progress lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from syncd.daemon import Daemon

from .conftest import make_settings
from .harness import PEOPLE_MAPPING, SqlTable, sql_app, wait_for


def _lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in err.splitlines() if x.startswith("{") and '"event": "progress"' in x]


async def test_first_sync_progress_ends_after_the_first_reads_and_their_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alpha = SqlTable.create(tmp_path / "alpha.db", rows=60)
    beta = SqlTable.create(tmp_path / "beta.db", rows=5, prefix="beta")
    settings = make_settings(
        tmp_path, {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}, {"people": PEOPLE_MAPPING}
    )
    daemon = Daemon(settings, progress_every=0.0001)
    await daemon.start()
    try:
        seen = ""

        def finished() -> bool:
            nonlocal seen
            seen += capsys.readouterr().err
            return any(line["done"] for line in _lines(seen))

        await wait_for(finished, 20, what="the first sync's last progress line")
        [last] = [line for line in _lines(seen) if line["done"]]
        assert last["title"] == "first sync"
        assert last["apps"]["alpha"]["read"] == 60
        assert last["apps"]["beta"]["read"] == 5
        assert last["writes"] == {"done": 65, "planned": 65}
        assert alpha.names() == beta.names()
        # A later poll is not a first sync: no more progress lines.
        await daemon.poll("alpha")
        assert _lines(capsys.readouterr().err) == []
    finally:
        await daemon.stop()


async def test_a_daemon_on_a_state_that_was_synced_before_shows_no_first_sync(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alpha = SqlTable.create(tmp_path / "alpha.db", rows=3)
    beta = SqlTable.create(tmp_path / "beta.db")
    settings = make_settings(
        tmp_path, {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}, {"people": PEOPLE_MAPPING}
    )
    first = Daemon(settings)
    await first.start()
    try:
        await wait_for(lambda: alpha.names() == beta.names(), 15, what="the initial sync")
    finally:
        await first.stop()
    capsys.readouterr()
    again = Daemon(settings, progress_every=0.0001)
    await again.start()
    try:
        await wait_for(lambda: set(again.metrics.last_poll) >= {"alpha", "beta"}, 15, what="the polls")
        assert _lines(capsys.readouterr().err) == []
    finally:
        await again.stop()
