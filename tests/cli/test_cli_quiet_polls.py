"""A table nobody touches costs nothing to poll: seen through the ``syncd`` command and the files.

After a sync that wrote hundreds of rows, the runs that follow must not read those rows again
and again (the SQL cursor's overlap window once repeated the last 2 s of syncd's own writes at
every run), nor rewrite the state (an id scan once marked every link at every run) — and a real
edit made after all that is still read and mirrored.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .sqlworld import SqlWorld, mapping, stamp


def _sync(world: SqlWorld) -> dict[str, Any]:
    return dict(json.loads(world.syncd("sync", "--once", "--json").stdout))


def _links(world: SqlWorld) -> list[dict[str, Any]]:
    return world.state("SELECT * FROM links ORDER BY id")


def test_runs_after_a_bulk_sync_read_nothing_and_write_nothing_until_someone_edits(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping())
    for i in range(300):
        world.insert("a", email=f"a{i}@example.com", name=f"A{i}")
    for i in range(150):
        world.insert("b", email=f"b{i}@example.com", name=f"B{i}")
    first = _sync(world)
    assert first["writes"] == 450
    # Past the 2 s overlap since syncd's last write, one run may still repeat what the run
    # before it read within the window; from the next one on, nothing is read again.
    time.sleep(2.5)
    assert _sync(world)["writes"] == 0
    links, tables = _links(world), (world.rows("a"), world.rows("b"))
    for _ in range(2):
        quiet = _sync(world)
        assert (quiet["read"], quiet["writes"]) == (0, 0), quiet
    assert _links(world) == links, "a quiet run rewrote the state's links"
    assert (world.rows("a"), world.rows("b")) == tables

    world.update("a", "a7@example.com", at=stamp(), name="Edited")
    edited = _sync(world)
    assert (edited["apps"]["a"]["read"], edited["apps"]["b"]["writes"]) == (1, 1), edited
    assert world.row("b", "a7@example.com")["name"] == "Edited"
