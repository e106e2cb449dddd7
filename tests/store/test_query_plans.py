"""The state store's hot statements read through an index in the order they need, on both
backends: their cost follows the rows they return, not the size of the state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from syncd.store import connect
from syncd.store.db import Store
from syncd.store.postgres import PgStore


def _claim_statement(captured: list[str]) -> str:
    return next(sql for sql in captured if sql.lstrip().upper().startswith("SELECT") and "FROM outbox" in sql)


def test_sqlite_claim_walks_the_apps_intents_in_id_order_without_sorting(tmp_path: Path) -> None:
    store = connect(tmp_path / "state.db")
    try:
        captured: list[str] = []
        assert isinstance(store, Store)
        conn = store.conn
        conn.set_trace_callback(captured.append)
        store.claim("app", None, 500, owner="d1", epoch=1, ttl=30)
        store.claim("app", None, 500)
        conn.set_trace_callback(None)
        statements = [sql for sql in captured if "FROM outbox WHERE status IN" in sql]
        assert len(statements) == 2
        for sql in statements:
            # The traced statement has its values inlined: explain it as it ran.
            plan = " | ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "outbox_claim" in plan, plan
            assert "TEMP B-TREE" not in plan, f"the claim sorts the intents: {plan}"
    finally:
        store.close()


def test_postgres_claim_walks_the_apps_intents_in_id_order_without_sorting(postgres_url: str) -> None:
    PgStore(postgres_url, max_size=1).close()  # migrate
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        rows: list[Any] = conn.execute(
            "EXPLAIN SELECT id FROM outbox WHERE status IN ('pending', 'inflight') AND app = 'app' "
            "AND (not_before IS NULL OR not_before <= 'z') ORDER BY id LIMIT 500"
        ).fetchall()
    plan = " | ".join(str(row[0]) for row in rows)
    assert "outbox_claim" in plan, plan
    assert "Sort" not in plan, f"the claim sorts the intents: {plan}"


def test_sqlite_following_the_change_log_reads_through_its_indexes(tmp_path: Path) -> None:
    store = connect(tmp_path / "state.db")
    try:
        assert isinstance(store, Store)
        captured: list[str] = []
        store.conn.set_trace_callback(captured.append)
        store.changelog_position()
        store.changes_after(-1, 10)
        store.conn.set_trace_callback(None)
        statements = [sql for sql in captured if "FROM changelog" in sql]
        assert len(statements) == 5  # the position (twice), ids, folded rows, the rows
        for sql in statements:
            plan = " | ".join(str(row[3]) for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "SCAN changelog" not in plan.replace("SCAN changelog USING", ""), f"a full scan: {plan}"
            assert "TEMP B-TREE" not in plan, f"the follower sorts the change log: {plan}"
    finally:
        store.close()
