"""Black-box: one bad record never stops the flow. It is set aside as a dead letter that names the
app, the record and why (never its values), the rest of its table keeps syncing, and a replay
after the fix reads it again."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MAPPING = """
name = "people"
key = "email"

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
apps.right = "email"

[fields.name]
transforms = ["trim"]
apps.left = "name"
apps.right = "name"
"""

CONFIG = """
state = "state/syncd.db"
mappings = ["people.toml"]
log_format = "json"
log_level = "warning"

[apps.left]
connector = "sql"
[apps.left.settings]
url = "sqlite:///left.db"
table = "contacts"
updated_at = "updated_at"

[apps.right]
connector = "sql"
[apps.right.settings]
url = "sqlite:///right.db"
table = "people"
"""

SECRET_BYTES = "41EDA080"  # 'A' then an encoded lone surrogate: not valid UTF-8


def _syncd(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd.cli", "--config", str(root / "config.toml"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _sql(root: Path, db: str, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(root / db, isolation_level=None)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "people.toml").write_text(MAPPING)
    (tmp_path / "config.toml").write_text(CONFIG)
    _sql(
        tmp_path,
        "left.db",
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, name TEXT, updated_at TEXT)",
    )
    _sql(tmp_path, "right.db", "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, name TEXT)")
    for i in range(5):
        _sql(
            tmp_path,
            "left.db",
            f"INSERT INTO contacts (email, name, updated_at) VALUES ('p{i}@example.com', 'P{i}', "
            f"'2026-01-01T00:00:0{i}Z')",
        )
    _sql(
        tmp_path,
        "left.db",
        "INSERT INTO contacts (id, email, name, updated_at) VALUES "
        f"(99, 'bad@example.com', CAST(X'{SECRET_BYTES}' AS TEXT), '2026-01-01T00:00:09Z')",
    )
    return tmp_path


def test_row_with_invalid_utf8_is_quarantined_and_the_table_keeps_syncing(world: Path) -> None:
    first = _syncd(world, "sync", "--once", "--json")
    assert first.returncode == 1, first.stderr
    stats = json.loads(first.stdout)
    assert stats["quarantined"] == 1
    assert stats["apps"]["left"]["quarantined"] == 1
    emails = sorted(e for (e,) in _sql(world, "right.db", "SELECT email FROM people"))
    assert emails == [f"p{i}@example.com" for i in range(5)]
    letters = json.loads(_syncd(world, "deadletters", "list", "--json").stdout)
    assert len(letters) == 1
    letter = letters[0]
    assert letter["op"] == "read"
    assert letter["app"] == "left"
    assert letter["remote_id"] == "99"
    assert "not valid Unicode" in letter["last_error"]
    # The message names the record, never its data.
    assert "\\udc" not in json.dumps(letter)
    assert "A\ufffd" not in letter["last_error"]

    # Later edits of that table still sync.
    _sql(
        world,
        "left.db",
        "UPDATE contacts SET name = 'P0 edited', updated_at = '2026-01-02T00:00:00Z' WHERE id = 1",
    )
    again = _syncd(world, "sync", "--once", "--json")
    assert again.returncode == 0, again.stderr
    assert _sql(world, "right.db", "SELECT name FROM people WHERE email = 'p0@example.com'") == [
        ("P0 edited",)
    ]

    # The fix, then a replay: the record is read again and synced; the dead letter is over.
    _sql(world, "left.db", "UPDATE contacts SET name = 'Fixed' WHERE id = 99")
    replay = _syncd(world, "deadletters", "replay", "--all")
    assert replay.returncode == 0, replay.stderr
    done = _syncd(world, "sync", "--once", "--json")
    assert done.returncode == 0, done.stderr
    assert _sql(world, "right.db", "SELECT name FROM people WHERE email = 'bad@example.com'") == [("Fixed",)]
    assert json.loads(_syncd(world, "deadletters", "list", "--json").stdout) == []
