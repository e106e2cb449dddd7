"""m012_compact_state on both backends: a state written by the older schema reads back the same
after the migration packs its provenance, and only finished intents lose their payload."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from syncd.engine.model import Change, Entity, Link, ReasonCode
from syncd.store import StateStore, connect, pg_migrations
from syncd.store import migrations as sqlite_steps
from syncd.store.postgres import PgStore

VALUES = {"email": "zoë@example.com", "first_name": "Zoë", "tags": ["a", 2**70], "phone": None}
ONE_READ = {"app": "left", "at": "2026-01-01T00:00:00.000Z", "run": 1}
#: Provenance as the older schema stored it: a full mapping per field.
OLD_PROVENANCE = [
    {name: dict(ONE_READ) for name in VALUES},
    {
        "email": dict(ONE_READ),
        "first_name": {"app": "right", "at": "2026-01-02T00:00:00Z", "run": 2, "prev": "Zoe", "flips": 1},
        "tags": {"app": "admin", "at": "2026-01-03T00:00:00Z", "run": None},
    },
    {},
]
STAMP = "2026-01-01T00:00:00.000000Z"


def _old_rows(execute: Any, mark: str) -> None:
    """Rows as the older schema wrote them (JSON text with sorted keys, as both stores write)."""
    for n, provenance in enumerate(OLD_PROVENANCE, start=1):
        execute(
            f'INSERT INTO entities (id, sync, key, "values", provenance, created_at, updated_at) '
            f"VALUES ({mark}, 'people', {mark}, {mark}, {mark}, {mark}, {mark})",
            (
                n,
                f"k{n}",
                json.dumps(VALUES, sort_keys=True),
                json.dumps(provenance, sort_keys=True),
                STAMP,
                STAMP,
            ),
        )
    execute(
        "INSERT INTO links (sync, app, remote_id, entity_id, baseline) "
        f"VALUES ('people', 'right', 'r-1', 2, {mark}), ('people', 'mail', 'm-1', 2, {mark})",
        (json.dumps(VALUES, sort_keys=True), json.dumps({"email": "old"})),
    )
    for key, status in (
        ("sent", "done"),
        ("waiting", "pending"),
        ("refused", "dead"),
        ("replaced", "superseded"),
    ):
        execute(
            'INSERT INTO outbox (key, sync, app, object, op, entity_id, "values", payload, status, created_at, '
            f"updated_at) VALUES ({mark}, 'people', 'right', 'people', 'update', 1, {mark}, {mark}, {mark}, "
            f"{mark}, {mark})",
            (key, json.dumps({"email": key}), json.dumps({"email_address": key}), status, STAMP, STAMP),
        )
    for field, code in (("email", "changed"), ("*", "new_record")):
        execute(
            "INSERT INTO changelog (at, run_id, sync, entity_id, field, old, new, app, reason, code) "
            f"VALUES ({mark}, 1, 'people', 1, {mark}, 'null', '1', 'left', 'x', {mark})",
            (STAMP, field, code),
        )


def _reads_back_the_same(store: StateStore) -> None:
    got = store.entities([1, 2, 3])
    for n, provenance in enumerate(OLD_PROVENANCE, start=1):
        assert got[n] == Entity(id=n, sync="people", key=f"k{n}", values=VALUES, provenance=provenance)
    intents = {i.key: i for i in (store.intent(n) for n in range(1, 5)) if i is not None}
    for key in ("waiting", "refused"):  # still to send, or to replay: everything kept
        assert (intents[key].values, intents[key].payload) == ({"email": key}, {"email_address": key})
    for key in ("sent", "replaced"):  # over: the key and the outcome stay
        assert (intents[key].values, intents[key].payload) == ({}, {})
    links = store.links_of([2])[2]
    assert (links["right"].baseline, links["mail"].baseline) == (VALUES, {"email": "old"})
    entity = got[2]
    entity.values = {"email": "new"}
    store.save_entities([entity])  # the records keep what they held
    links = store.links_of([2])[2]
    assert (links["right"].baseline, links["mail"].baseline) == (VALUES, {"email": "old"})
    assert store.count_drift(1, "left") == 1
    assert [r["code"] for r in store.changelog(entity_id=1)] == ["new_record", "changed"]
    # Rows from before m012 are followed at their ids; a fold into one of them comes after them.
    old_rows, after = store.changes_after(0)
    assert [r["code"] for r in old_rows] == ["changed", "new_record"]
    store.log_changes(
        "people", [Change(1, "*", None, "m-1", "mail", "created in mail", code=ReasonCode.CREATED)], 1
    )
    assert store.count_rows("changelog") == 2
    folded, _ = store.changes_after(after)
    assert [(r["code"], r["id"]) for r in folded] == [("created", old_rows[1]["id"])]
    assert store.prune_changelog("2026-01-02") == 2


def test_sqlite_state_from_before_m012_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    older = Migrations("syncd")
    steps = sqlite_steps.migrations._migrations
    older._migrations = steps[: [m.name for m in steps].index("m012_compact_state")]
    conn = sqlite3.connect(path)
    older.apply(Database(conn))
    _old_rows(conn.execute, "?")
    conn.commit()
    conn.close()
    store = connect(path)
    try:
        _reads_back_the_same(store)
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        packed = conn.execute("SELECT provenance FROM entities WHERE id = 1").fetchone()[0]
    finally:
        conn.close()
    assert "changelog_at" not in indexes
    assert "changelog_run" not in indexes
    assert "changelog_drift" in indexes
    assert json.loads(packed) == [["left", "2026-01-01T00:00:00.000Z", 1, "*"]]


def test_sqlite_stores_a_baseline_equal_to_the_entitys_values_once(tmp_path: Path) -> None:
    store = connect(tmp_path / "state.db")
    try:
        entity = store.new_entity("people", "a")
        entity.values = dict(VALUES)
        store.save_entities([entity])
        same = Link(None, entity.id, "crm", "r-1", baseline=dict(VALUES))
        other = Link(None, entity.id, "mail", "m-1", baseline={**VALUES, "phone": "+1"})
        store.save_links("people", [same, other])
        stored = dict(store.conn.execute("SELECT app, baseline FROM links").fetchall())
        assert stored["crm"] == ""
        assert json.loads(stored["mail"])["phone"] == "+1"
        assert store.links_of([entity.id])[entity.id] == {"crm": same, "mail": other}
    finally:
        store.close()


def test_postgres_state_from_before_m012_reads_back_the_same(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        before = [name for name, _ in pg_migrations.STEPS].index("m012_compact_state")
        monkeypatch.setattr(pg_migrations, "STEPS", pg_migrations.STEPS[:before])
        assert pg_migrations.apply(conn, "t")[-1] == "m011_claim_order"
        _old_rows(conn.execute, "%s")
        conn.execute("SELECT setval(pg_get_serial_sequence('entities', 'id'), 3)")
        monkeypatch.undo()
    store = PgStore(postgres_url)
    try:
        _reads_back_the_same(store)
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        assert pg_migrations.applied(conn) == [name for name, _ in pg_migrations.STEPS]
        indexes = {
            r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'changelog'")
        }
        assert indexes >= {"changelog_drift"}
        assert not indexes & {"changelog_at", "changelog_run"}
