"""`syncd state migrate`, black-box: a SQLite state to PostgreSQL and back, every row kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.engine.model import Candidate, Change, Conflict, Link, ReasonCode
from syncd.store import connect
from syncd.store.db import TABLES
from syncd.testing.store_contract import NESTED


def syncd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    return subprocess.run(
        [sys.executable, "-m", "syncd.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def fill(location: str | Path) -> dict[str, list[dict[str, object]]]:
    """A small state touching every table; returns its rows per table."""
    store = connect(location)
    try:
        run = store.begin_run("full:crm")
        a, b = store.new_entity("people", "zoë@x"), store.new_entity("people", None)
        a.values = dict(NESTED)
        store.save_entities([a], dirty=True)
        store.save_links("people", [Link(None, a.id, "crm", "r1", baseline=dict(NESTED), alias="x")], run)
        store.log_changes(
            "people",
            [Change(a.id, "name", None, "Zoë", "crm", "changed in crm", code=ReasonCode.CHANGED)],
            run,
        )
        store.add_conflicts("people", [Conflict(b.id, "name", [Candidate("crm", {"v": 2**70})], "manual")])
        store.enqueue([("k1", "people", "crm", "contact", "update", a.id, "r1", {"a": 1}, {"b": [2]}, None)])
        store.claim("crm", None, 1, owner="d1", epoch=2, ttl=30)
        store.set_cursor("people", "crm", {"after": "c"})
        store.inbox_add("crm", [("e1", "contact", "r1", True)])
        store.take_lease("state", "host:1", 100.0, 30)
        store.suppress(store.hash_key("gone@x"), store.save_erasure(None, "h", "done", {"crm": {}}))
        store.take_tokens("crm", 1, 1, 5, 100.0)
        store.heartbeat("host:1", {"v": 1}, 100.0, 30)
        store.record_read("crm", ok=False, failure={"kind": "auth", "error": "401"}, paused="credentials")
        store.finish_run(run, {"read": 1})
        return {t: store.read_table(t, None if TABLES[t] != ("id",) else 0, 1000) for t in TABLES}
    finally:
        store.close()


def rows(location: str | Path) -> dict[str, list[dict[str, object]]]:
    store = connect(location)
    try:
        return {t: store.read_table(t, None if TABLES[t] != ("id",) else 0, 1000) for t in TABLES}
    finally:
        store.close()


def test_state_migrates_to_postgresql_and_back_with_every_row(tmp_path: Path, postgres_url: str) -> None:
    original = fill(tmp_path / "state.db")
    assert all(original.values())
    done = syncd("state", "migrate", "--from", str(tmp_path / "state.db"), "--to", postgres_url)
    assert done.returncode == 0, done.stderr
    assert "MISMATCH" not in done.stdout
    assert "links" in done.stdout
    assert "copied" in done.stdout
    assert rows(postgres_url) == original
    back = syncd("state", "migrate", "--from", postgres_url, "--to", str(tmp_path / "back.db"))
    assert back.returncode == 0, back.stderr
    assert rows(tmp_path / "back.db") == original
    # a copied PostgreSQL state goes on with new ids after the copied ones
    store = connect(postgres_url)
    try:
        assert store.new_entity("people", "new@x").id == 3
    finally:
        store.close()


def test_state_migrate_refuses_a_non_empty_target_unless_forced(tmp_path: Path, postgres_url: str) -> None:
    fill(tmp_path / "a.db")
    fill(postgres_url)
    refused = syncd("state", "migrate", "--from", str(tmp_path / "a.db"), "--to", postgres_url)
    assert refused.returncode == 1
    assert "not empty" in refused.stderr
    assert "--force" in refused.stderr
    forced = syncd("state", "migrate", "--from", str(tmp_path / "a.db"), "--to", postgres_url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert rows(postgres_url) == rows(tmp_path / "a.db")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://u:secret@host/db", "password"),
        ("postgresql://u@host", "names no database"),
        ("postgresql://u@host:notaport/db", "not a valid"),
    ],
)
def test_state_migrate_rejects_a_bad_url_without_echoing_a_password(
    tmp_path: Path, url: str, problem: str
) -> None:
    fill(tmp_path / "a.db")
    done = syncd("state", "migrate", "--from", str(tmp_path / "a.db"), "--to", url)
    assert done.returncode == 2
    assert problem in done.stderr
    assert "secret" not in done.stderr + done.stdout
