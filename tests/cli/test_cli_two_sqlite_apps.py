"""Black-box: the ``syncd`` command, as a subprocess, syncing two SQLite databases.

Two ``contacts`` tables with different column names, 5,000 rows each, 3,000 emails in both
(written with different case and spacing), synced with ``syncd sync --once``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

MAPPING = """
name = "contacts"
key = "email"
initial_conflict = "policy"

[apps.left]
object = "contacts"
[apps.right]
object = "people"

[conflict]
policy = "priority"
priority = ["left", "right"]

[delete]
policy = "propagate"
mass_delete_threshold = 0.2

[fields.email]
transforms = ["email"]
apps.left = "email"
apps.right = "email_address"

[fields.first_name]
transforms = ["trim"]
apps.left = "first_name"
apps.right = "given_name"

[fields.last_name]
transforms = ["trim"]
apps.left = "last_name"
apps.right = "family_name"

[fields.phone]
transforms = [{ e164 = "US" }]
apps.left = "phone"
apps.right = "mobile"

[fields.company]
conflict = { policy = "review" }
apps.left = "company"
apps.right = "employer"
"""

CONFIG = """
state = "state/syncd.db"
mappings = ["contacts.toml"]
log_format = "json"
log_level = "warning"

[apps.left]
connector = "sql"
[apps.left.settings]
url = "sqlite:///left.db"
table = "contacts"

[apps.right]
connector = "sql"
[apps.right.settings]
url = "sqlite:///right.db"
table = "people"
primary_key = "contact_id"
"""


def _make_dbs(root: Path, *, each: int = 5000, overlap: int = 3000) -> None:
    left = sqlite3.connect(root / "left.db")
    left.execute(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, phone TEXT, company TEXT)"
    )
    left.executemany(
        "INSERT INTO contacts (email, first_name, last_name, phone, company) VALUES (?, ?, ?, ?, ?)",
        [
            (f"person{i}@example.com", f"First{i}", f"Last{i}", f"+1415555{i % 10000:04d}", "Acme")
            for i in range(each)
        ],
    )
    left.commit()
    left.close()
    right = sqlite3.connect(root / "right.db")
    right.execute(
        "CREATE TABLE people (contact_id INTEGER PRIMARY KEY, email_address TEXT NOT NULL, given_name TEXT, "
        "family_name TEXT, mobile TEXT, employer TEXT)"
    )
    shared = [
        (f"  Person{i}@EXAMPLE.com ", f"First{i}", f"Last{i}", f"(415) 555-{i % 10000:04d}", "Acme")
        for i in range(each - overlap, each)
    ]
    own = [(f"other{i}@example.org", f"Other{i}", f"Person{i}", None, None) for i in range(each - overlap)]
    right.executemany(
        "INSERT INTO people (email_address, given_name, family_name, mobile, employer) VALUES (?, ?, ?, ?, ?)",
        shared + own,
    )
    right.commit()
    right.close()


def _syncd(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    proc = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "--config", str(root / "config.toml"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"syncd {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _sync(root: Path, *extra: str) -> dict[str, Any]:
    return json.loads(_syncd(root, "sync", "--once", "--json", *extra).stdout)


def _rows(root: Path, db: str, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(root / db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _emails(root: Path, db: str, table: str, column: str) -> list[str]:
    return [r[0].strip().lower() for r in _rows(root, db, f"SELECT {column} FROM {table}")]


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "contacts.toml").write_text(MAPPING)
    (tmp_path / "config.toml").write_text(CONFIG)
    _make_dbs(tmp_path)
    return tmp_path


def test_initial_sync_links_overlaps_creates_the_rest_and_second_run_writes_nothing(world: Path) -> None:
    assert _syncd(world, "validate").returncode == 0
    first = _sync(world)
    assert (first["linked"], first["apps"]["left"]["created"], first["apps"]["right"]["created"]) == (
        3000,
        2000,
        2000,
    )
    for db, table, col in (("left.db", "contacts", "email"), ("right.db", "people", "email_address")):
        emails = _emails(world, db, table, col)
        assert len(emails) == 7000
        assert len(set(emails)) == 7000, f"duplicates in {db}"
    second = _sync(world)
    assert second["writes"] == 0


def test_edits_merge_conflicts_follow_policy_and_review_is_resolved_by_cli(world: Path) -> None:
    _sync(world)
    left = sqlite3.connect(world / "left.db")
    right = sqlite3.connect(world / "right.db")
    # different fields on both sides: both survive
    left.execute("UPDATE contacts SET first_name = 'Lefty' WHERE email = 'person4000@example.com'")
    right.execute(
        "UPDATE people SET family_name = 'Righty' WHERE lower(trim(email_address)) = 'person4000@example.com'"
    )
    # same field on both sides: priority says left wins, right's value is kept in the change log
    left.execute("UPDATE contacts SET last_name = 'FromLeft' WHERE email = 'person4001@example.com'")
    right.execute(
        "UPDATE people SET family_name = 'FromRight' WHERE lower(trim(email_address)) = 'person4001@example.com'"
    )
    # a review field edited on both sides
    left.execute("UPDATE contacts SET company = 'Left Inc' WHERE email = 'person4002@example.com'")
    right.execute(
        "UPDATE people SET employer = 'Right Ltd' WHERE lower(trim(email_address)) = 'person4002@example.com'"
    )
    left.commit()
    right.commit()
    left.close()
    right.close()

    stats = _sync(world)
    assert stats["conflicts"] == 2
    assert _rows(
        world,
        "right.db",
        "SELECT given_name, family_name FROM people WHERE lower(trim(email_address)) = 'person4000@example.com'",
    ) == [("Lefty", "Righty")]
    assert _rows(
        world, "left.db", "SELECT first_name, last_name FROM contacts WHERE email = 'person4000@example.com'"
    ) == [("Lefty", "Righty")]
    assert _rows(
        world,
        "right.db",
        "SELECT family_name FROM people WHERE lower(trim(email_address)) = 'person4001@example.com'",
    ) == [("FromLeft",)]
    shown = json.loads(_syncd(world, "show", "person4001@example.com", "--json").stdout)
    lost = [c for c in shown["changes"] if c["reason"].startswith("conflict lost")]
    assert [(c["app"], c["new"]) for c in lost] == [("right", "FromRight")]

    listed = json.loads(_syncd(world, "conflicts", "list", "--json").stdout)
    assert [(c["entity_key"], c["field"]) for c in listed] == [("person4002@example.com", "company")]
    _syncd(world, "conflicts", "resolve", str(listed[0]["id"]), "--take", "right")
    _sync(world)
    assert _rows(world, "left.db", "SELECT company FROM contacts WHERE email = 'person4002@example.com'") == [
        ("Right Ltd",)
    ]
    assert json.loads(_syncd(world, "conflicts", "list", "--json").stdout) == []
    assert _sync(world)["writes"] == 0


def test_deleted_row_is_propagated_but_an_emptied_table_deletes_nothing(world: Path) -> None:
    _sync(world)
    left = sqlite3.connect(world / "left.db")
    left.execute("DELETE FROM contacts WHERE email = 'person10@example.com'")
    left.commit()
    stats = _sync(world)
    assert stats["apps"]["right"]["deleted"] == 1
    assert "person10@example.com" not in _emails(world, "right.db", "people", "email_address")

    left.execute("DELETE FROM contacts")
    left.commit()
    left.close()
    proc = _syncd(world, "sync", "--once", "--json", check=False)
    stats = json.loads(proc.stdout)
    assert stats["delete_guard"], proc.stderr
    assert "ALERT" not in proc.stdout
    assert len(_emails(world, "right.db", "people", "email_address")) == 6999


def test_plan_lists_exactly_the_writes_the_next_sync_makes(world: Path) -> None:
    _sync(world)
    left = sqlite3.connect(world / "left.db")
    left.execute("UPDATE contacts SET phone = '+14155559999' WHERE id <= 3")
    left.execute("INSERT INTO contacts (email, first_name) VALUES ('new@example.com', 'New')")
    left.commit()
    left.close()
    planned = json.loads(_syncd(world, "plan", "--json").stdout)["writes"]
    assert sorted((w["app"], w["op"]) for w in planned) == [("right", "create")] + [("right", "update")] * 3
    stats = _sync(world)
    assert stats["writes"] == len(planned)
    assert stats["apps"]["right"]["created"] == 1
    assert stats["apps"]["right"]["updated"] == 3


def test_kill_9_during_a_20000_row_sync_then_rerun_leaves_no_duplicate(tmp_path: Path) -> None:
    (tmp_path / "contacts.toml").write_text(MAPPING)
    (tmp_path / "config.toml").write_text(CONFIG)
    _make_dbs(tmp_path, each=20000, overlap=5000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd.cli", "--config", str(tmp_path / "config.toml"), "sync", "--once"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # wait (with a deadline) until writes have begun in one of the databases, then kill -9
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_rows(tmp_path, "right.db", "SELECT 1 FROM people")) > 20000:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sync finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stats = _sync(tmp_path)
    assert stats["errors"] == 0
    for db, table, col in (("left.db", "contacts", "email"), ("right.db", "people", "email_address")):
        emails = _emails(tmp_path, db, table, col)
        assert len(emails) == 35000
        assert len(set(emails)) == 35000, f"duplicates in {db}"
    assert _sync(tmp_path)["writes"] == 0


async def test_sync_once_refuses_to_run_beside_another_writer(world: Path) -> None:
    from syncd.daemon import Lease
    from syncd.store import AsyncStore

    store = await AsyncStore(world / "state" / "syncd.db").open()
    lease = Lease(store, ttl=60, state="state/syncd.db")
    await lease.acquire()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syncd.cli",
            "--config",
            str(world / "config.toml"),
            "sync",
            "--once",
            cwd=world,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    finally:
        await lease.release()
        await store.close()
    assert proc.returncode == 1, out.decode() + err.decode()
    assert "another syncd" in err.decode()
    assert len(_rows(world, "right.db", "SELECT 1 FROM people")) == 5000  # nothing was written
