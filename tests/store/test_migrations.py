"""Schema migrations of both backends: an older state is brought up to date, nothing is lost,
and two daemons starting at once on an empty PostgreSQL apply each step once."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from syncd.store import connect, pg_migrations
from syncd.store import migrations as sqlite_steps
from syncd.store.postgres import PgStore


def test_sqlite_state_from_before_coordination_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    older = Migrations("syncd")
    steps = [m.name for m in sqlite_steps.migrations._migrations]
    before = steps.index("m008_coordination")
    older._migrations = sqlite_steps.migrations._migrations[:before]
    conn = sqlite3.connect(path)
    older.apply(Database(conn))
    conn.execute("INSERT INTO leases VALUES ('state', 'a', 1.0, 't')")
    conn.commit()
    conn.close()
    store = connect(path)
    try:
        assert store.take_lease("state", "b", 2.0, 10)["epoch"] == 2  # the old row counted as epoch 1
        assert store.count_rows("token_buckets") == 0
    finally:
        store.close()
    names = [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names[before:] == steps[before:]
    assert len(names) == len(set(names)) == len(sqlite_steps.migrations._migrations)


def test_postgres_state_from_before_coordination_gains_the_new_columns(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        before = [name for name, _ in pg_migrations.STEPS].index("m008_coordination")
        monkeypatch.setattr(pg_migrations, "STEPS", pg_migrations.STEPS[:before])
        assert pg_migrations.apply(conn, "t")[-1] == "m007_change_codes"
        conn.execute("INSERT INTO leases VALUES ('state', 'a', 1.0, 't')")
        monkeypatch.undo()
    store = PgStore(postgres_url)
    try:
        assert store.take_lease("state", "b", 2.0, 10)["epoch"] == 2
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        assert pg_migrations.applied(conn) == [name for name, _ in pg_migrations.STEPS]


def test_postgres_daemons_starting_at_once_apply_each_step_once(postgres_url: str) -> None:
    def start(_: int) -> None:
        PgStore(postgres_url, max_size=1).close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(start, range(4)))
    with psycopg.connect(postgres_url) as conn:
        assert pg_migrations.applied(conn) == [name for name, _ in pg_migrations.STEPS]
        count = conn.execute("SELECT count(*) FROM syncd_migrations").fetchone()
        assert count == (len(pg_migrations.STEPS),)
