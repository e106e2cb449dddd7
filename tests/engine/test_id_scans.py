"""Id-only listings between full listings: a hard delete is found, and a scan that finds every
linked record listed changes nothing in the state (it used to rewrite every link, every scan)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .world import OBJ, World, person


def _seen_runs(w: World, app: str) -> dict[str, int | None]:
    with sqlite3.connect(w.db) as conn:
        rows = conn.execute("SELECT remote_id, seen_run FROM links WHERE app = ?", (app,)).fetchall()
    return {str(rid): seen for rid, seen in rows}


def _changes_of(w: World) -> int:
    with sqlite3.connect(w.db) as conn:
        return int(conn.execute("SELECT count(*) FROM changelog").fetchone()[0])


async def _world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.apps["a"].hard_deletes = True
    w.apps["a"].id_listing = True
    for i in range(12):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))
    await w.settle()
    assert len(w.records("b")) == 12
    return w


async def test_an_id_scan_listing_every_linked_record_writes_no_link(tmp_path: Path) -> None:
    w = await _world(tmp_path)
    before, changes = _seen_runs(w, "a"), _changes_of(w)
    await w.cycle()
    await w.cycle()
    scans = [call for call in w.apps["a"].calls if call[0] == "list_ids"]
    assert len(scans) >= 2, "each incremental cycle scanned the ids"
    assert _seen_runs(w, "a") == before
    assert _changes_of(w) == changes
    assert len(w.records("b")) == 12


async def test_an_id_scan_missing_a_linked_record_still_deletes_it_elsewhere(tmp_path: Path) -> None:
    w = await _world(tmp_path)
    del w.apps["a"].table(OBJ)[
        str(w.by_email("a")["p3@example.com"]["_id"])
    ]  # no tombstone: only a listing can tell
    await w.settle()
    assert "p3@example.com" not in w.by_email("b")
    assert "p3@example.com" not in w.by_email("c")
    assert len(w.records("b")) == 11
