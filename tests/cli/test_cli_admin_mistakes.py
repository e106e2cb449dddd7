"""Black-box: the ``syncd`` command catches an admin's mistake before anything is written.

Two small SQLite apps (``left.contacts`` and ``right.people``) synced by a subprocess running
``syncd``; each test makes one mistake an admin makes (a column typo, a database path, a missing
config, a stray environment variable, a value typed by hand) and checks that syncd says what is
wrong, where, and writes nothing — or, for what a sync cannot avoid (failed reads, rejected
writes), that every summary says so.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
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

[fields.email]
transforms = ["email"]
apps.left = "email"
apps.right = "email_address"

[fields.first_name]
transforms = ["trim"]
apps.left = "first_name"
apps.right = "given_name"

[fields.phone]
transforms = [{ e164 = "US" }]
conflict = { policy = "review" }
apps.left = "phone"
apps.right = "mobile"
"""

CONFIG = """
state = "state/syncd.db"
mappings = ["contacts.toml"]
log_format = "json"
log_level = "error"

[apps.left]
connector = "sql"
[apps.left.settings]
url = "sqlite:///left.db"
table = "contacts"
busy_timeout_seconds = 0

[apps.right]
connector = "sql"
[apps.right.settings]
url = "sqlite:///right.db"
table = "people"
primary_key = "contact_id"
"""

LEFT = "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, phone TEXT)"
RIGHT = (
    "CREATE TABLE people (contact_id INTEGER PRIMARY KEY, email_address TEXT NOT NULL, "
    "given_name TEXT NOT NULL, mobile TEXT)"
)


def _db(path: Path, ddl: str, rows: Sequence[tuple[Any, ...]] = (), insert: str = "") -> None:
    conn = sqlite3.connect(path)
    conn.execute(ddl)
    if rows:
        conn.executemany(insert, rows)
    conn.commit()
    conn.close()


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _world(root: Path, *, mapping: str = MAPPING, config: str = CONFIG, left_rows: int = 3) -> Path:
    """config.toml, contacts.toml, left.db (``left_rows`` people) and an empty right.db in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "contacts.toml").write_text(mapping)
    (root / "config.toml").write_text(config)
    _db(
        root / "left.db",
        LEFT,
        [(f"person{i}@example.com", f"First{i}", f"+1415555{i:04d}") for i in range(left_rows)],
        "INSERT INTO contacts (email, first_name, phone) VALUES (?, ?, ?)",
    )
    _db(root / "right.db", RIGHT)
    return root


def _syncd(
    cwd: Path, *args: str, config: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    clean.update(env or {})
    prefix = ["--config", str(config)] if config is not None else []
    return subprocess.run(
        [sys.executable, "-m", "syncd.cli", *prefix, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=clean,
        timeout=120,
    )


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


# -- 1. pre-flight: the apps are asked whether the mapped paths exist -----------------------------


def test_a_column_typo_is_reported_with_a_suggestion_and_plan_and_sync_refuse_to_start(
    tmp_path: Path,
) -> None:
    world = _world(
        tmp_path, mapping=MAPPING.replace('apps.right = "email_address"', 'apps.right = "emial_address"')
    )
    cfg = world / "config.toml"
    expected = (
        "contacts.toml: fields.email.apps.right: column 'emial_address' does not exist in table 'people' "
        "(did you mean 'email_address'?)"
    )
    for command in (["validate"], ["plan"], ["sync", "--once"]):
        proc = _syncd(world, *command, config=cfg)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert expected in proc.stderr, (command, proc.stderr)
    assert not (world / "state").exists(), "a refused sync must not create the state"
    assert _rows(world / "right.db", "SELECT count(*) FROM people") == [(0,)]
    # --offline checks the files only, as validate did before.
    assert "ok: " in _ok(_syncd(world, "validate", "--offline", config=cfg)).stdout


def test_a_missing_database_file_is_reported_and_not_created(tmp_path: Path) -> None:
    world = _world(tmp_path, config=CONFIG.replace("sqlite:///right.db", "sqlite:///rigth.db"))
    proc = _syncd(world, "validate", config=world / "config.toml")
    assert proc.returncode == 2, proc.stderr
    assert (
        f"config.toml: apps.right.settings: sql: the SQLite database file {world / 'rigth.db'} does not exist"
        in (proc.stderr)
    )
    assert not (world / "rigth.db").exists()


def test_a_wrong_table_and_an_object_that_is_not_the_table_are_reported(tmp_path: Path) -> None:
    config = CONFIG.replace('table = "people"', 'table = "peeple"')
    mapping = MAPPING.replace('object = "contacts"', 'object = "customers"')
    world = _world(tmp_path, config=config, mapping=mapping)
    proc = _syncd(world, "validate", config=world / "config.toml")
    assert proc.returncode == 2, proc.stderr
    assert (
        "contacts.toml: apps.left.object: this app syncs the table 'contacts', not 'customers': "
        "write object = 'contacts'" in proc.stderr
    )
    assert (
        f"config.toml: apps.right.settings: sql: table 'peeple' does not exist in SQLite database "
        f"{world / 'right.db'} (its tables: people)" in proc.stderr
    )


# -- 2. failed reads are failures, with their real cause -------------------------------------------


def test_plan_and_sync_exit_1_and_name_the_app_when_a_read_fails(tmp_path: Path) -> None:
    world = _world(tmp_path)
    cfg = world / "config.toml"
    # Another program holds an exclusive lock on the left database: it cannot be read now.
    lock = sqlite3.connect(world / "left.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        plan = _syncd(world, "plan", config=cfg)
        sync = _syncd(world, "sync", "--once", config=cfg)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    for proc in (plan, sync):
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert "ERROR: left: reading failed: it is unreachable or failing for now" in proc.stderr
        assert "locked" in proc.stderr
    assert "nothing to write from what could be read" in plan.stdout


# -- 3. a fixed mistake does not leave a silent backlog --------------------------------------------


def test_every_summary_shows_pending_dead_letters_and_the_replay_command(tmp_path: Path) -> None:
    world = _world(tmp_path, left_rows=4)
    cfg = world / "config.toml"
    conn = sqlite3.connect(world / "left.db")
    conn.execute("UPDATE contacts SET first_name = NULL WHERE id <= 3")  # right requires a given_name
    conn.commit()
    first = _syncd(world, "sync", "--once", "--json", config=cfg)
    assert json.loads(first.stdout)["dead_letters"] == 3
    # The admin fixes the data; the next run reads nothing new and writes nothing...
    conn.execute("UPDATE contacts SET first_name = 'Fixed' WHERE id <= 3")
    conn.commit()
    conn.close()
    plan = _ok(_syncd(world, "plan", config=cfg))
    sync = _ok(_syncd(world, "sync", "--once", config=cfg))
    # ...but says that 3 people are still missing, and how to send them.
    for proc in (plan, sync):
        assert (
            "dead letters: 3 pending (writes the apps rejected, not retried): fix the cause, then "
            "`syncd deadletters replay --all`" in proc.stdout
        ), proc.stdout
    assert "errors 0" in sync.stdout
    _ok(_syncd(world, "deadletters", "replay", "--all", config=cfg))
    after = json.loads(_ok(_syncd(world, "sync", "--once", "--json", config=cfg)).stdout)
    assert after["dead_letters"] == 0
    assert _rows(world / "right.db", "SELECT count(*) FROM people") == [(4,)]
    assert "dead letters" not in _ok(_syncd(world, "sync", "--once", config=cfg)).stdout


# -- 4. relative paths, a missing config, stray environment variables -------------------------------


def test_relative_paths_follow_the_config_file_not_the_working_directory(tmp_path: Path) -> None:
    world = _world(tmp_path / "conf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    stats = json.loads(
        _ok(_syncd(elsewhere, "sync", "--once", "--json", config=world / "config.toml")).stdout
    )
    assert stats["apps"]["right"]["created"] == 3
    assert _rows(world / "right.db", "SELECT count(*) FROM people") == [(3,)]
    assert (world / "state" / "syncd.db").exists()
    assert list(elsewhere.iterdir()) == [], "nothing may be created in the working directory"


def test_no_config_file_is_reported_as_such_and_creates_no_state(tmp_path: Path) -> None:
    for command in (["validate"], ["conflicts", "list"], ["sync", "--once"]):
        proc = _syncd(tmp_path, *command)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "config.toml not found" in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_environment_secret_for_an_app_the_config_lacks_is_ignored_with_a_warning(tmp_path: Path) -> None:
    world = _world(tmp_path)
    proc = _ok(
        _syncd(
            world, "validate", config=world / "config.toml", env={"SYNCD_APPS__GHOST__SETTINGS__TOKEN": "x"}
        )
    )
    assert "ok: " in proc.stdout
    assert "apps.ghost: SYNCD_APPS__GHOST__* is set in the environment" in proc.stderr
    assert "ignored" in proc.stderr


# -- 5. a value typed by hand goes through the field's transforms and checks -----------------------


@pytest.fixture
def phone_conflict(tmp_path: Path) -> tuple[Path, int]:
    """A world after a first sync, with an open review conflict on person0's phone."""
    world = _world(tmp_path, left_rows=1)
    cfg = world / "config.toml"
    _ok(_syncd(world, "sync", "--once", config=cfg))
    for db, sql in (
        ("left.db", "UPDATE contacts SET phone = '+14155550001'"),
        ("right.db", "UPDATE people SET mobile = '+14155550002'"),
    ):
        conn = sqlite3.connect(world / db)
        conn.execute(sql)
        conn.commit()
        conn.close()
    _ok(_syncd(world, "sync", "--once", config=cfg))
    listed = json.loads(_ok(_syncd(world, "conflicts", "list", "--json", config=cfg)).stdout)
    assert [c["field"] for c in listed] == ["phone"]
    return world, int(listed[0]["id"])


def test_resolve_value_is_normalised_like_a_value_read_from_an_app(phone_conflict: tuple[Path, int]) -> None:
    world, conflict = phone_conflict
    cfg = world / "config.toml"
    _ok(_syncd(world, "conflicts", "resolve", str(conflict), "--value", "(503) 555-0199", config=cfg))
    _ok(_syncd(world, "sync", "--once", config=cfg))
    assert _rows(world / "left.db", "SELECT phone FROM contacts") == [("+15035550199",)]
    assert _rows(world / "right.db", "SELECT mobile FROM people") == [("+15035550199",)]


def test_resolve_refuses_an_invalid_value_and_an_empty_one_unless_allowed(
    phone_conflict: tuple[Path, int],
) -> None:
    world, conflict = phone_conflict
    cfg = world / "config.toml"
    bad = _syncd(world, "conflicts", "resolve", str(conflict), "--value", "call me", config=cfg)
    assert bad.returncode == 2
    assert "phone: 'call me' is not a phone number" in bad.stderr
    empty = _syncd(world, "conflicts", "resolve", str(conflict), "--value", "", config=cfg)
    assert empty.returncode == 2
    assert "--allow-empty" in empty.stderr
    still_open = json.loads(_ok(_syncd(world, "conflicts", "list", "--json", config=cfg)).stdout)
    assert [c["id"] for c in still_open] == [conflict], "a refused value changes nothing"
    _ok(_syncd(world, "conflicts", "resolve", str(conflict), "--value", "", "--allow-empty", config=cfg))
    _ok(_syncd(world, "sync", "--once", config=cfg))
    assert _rows(world / "left.db", "SELECT phone FROM contacts") == [(None,)]
    assert _rows(world / "right.db", "SELECT mobile FROM people") == [(None,)]
