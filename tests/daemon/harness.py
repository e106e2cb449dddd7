"""Test harness for the daemon: product tables in real SQLite files and config files; ``syncd
run`` as a real subprocess comes from ``syncd.testing.process`` (re-exported here).
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.testing.process import ADMIN_TOKEN, DaemonProcess, base_env, wait_for

__all__ = [
    "ADMIN_TOKEN",
    "CRM_MAPPING",
    "PEOPLE_MAPPING",
    "USERS_DDL",
    "DaemonProcess",
    "SqlTable",
    "base_env",
    "sql_app",
    "stamp",
    "wait_for",
    "write_config",
]

USERS_DDL = """CREATE TABLE users (
    id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, updated_at TEXT, deleted_at TEXT)"""

#: Two SQL apps syncing users by email (``name`` both ways); newest edit wins.
PEOPLE_MAPPING = """
name = "people"
key = "email"
[apps.alpha]
object = "users"
[apps.beta]
object = "users"
[conflict]
policy = "newest"
priority = ["alpha", "beta"]
[delete]
policy = "propagate"
mass_delete_threshold = 0.5
[fields.email]
transforms = ["email"]
apps.alpha = "email"
apps.beta = "email"
[fields.name]
transforms = ["trim"]
apps.alpha = "name"
apps.beta = "name"
"""

#: HubSpot contacts (app ``crm``) and a SQL users table (app ``product``).
CRM_MAPPING = """
name = "contacts"
key = "email"
[apps.crm]
object = "contacts"
[apps.product]
object = "users"
[conflict]
policy = "newest"
priority = ["crm", "product"]
[delete]
policy = "unlink"
[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.product = "email"
[fields.name]
transforms = ["trim"]
apps.crm = "properties.firstname"
apps.product = "name"
"""


def stamp() -> str:
    """Now as the tables store it: ISO-8601 UTC with microseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e6) % 1_000_000:06d}Z"


@dataclass
class SqlTable:
    """A product's ``users`` table in its own SQLite file, edited the way the product would."""

    path: Path

    @classmethod
    def create(cls, path: Path, rows: int = 0, *, prefix: str = "user", at: str | None = None) -> SqlTable:
        """The table with ``rows`` users ``{prefix}{i}@example.com``, stamped ``at`` (default now)."""
        with closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(USERS_DDL)
            now = at or stamp()
            db.executemany(
                "INSERT INTO users (email, name, updated_at) VALUES (?, ?, ?)",
                [(f"{prefix}{i}@example.com", f"User {i}", now) for i in range(rows)],
            )
            db.commit()
        return cls(path)

    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            return db.execute(sql, params).fetchall()

    def insert(self, email: str, name: str) -> int:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            cur = db.execute(
                "INSERT INTO users (email, name, updated_at) VALUES (?, ?, ?)", (email, name, stamp())
            )
            db.commit()
            return int(cur.lastrowid or 0)

    def rename(self, email: str, name: str) -> None:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("UPDATE users SET name = ?, updated_at = ? WHERE email = ?", (name, stamp(), email))
            db.commit()

    def rename_silently(self, email: str, name: str) -> None:
        """An edit that does not bump ``updated_at`` (only a full listing can notice it)."""
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("UPDATE users SET name = ? WHERE email = ?", (name, email))
            db.commit()

    def names(self) -> dict[str, str]:
        return {e: n for e, n in self._query("SELECT email, name FROM users WHERE deleted_at IS NULL")}

    def name_of(self, email: str) -> str | None:
        rows = self._query("SELECT name FROM users WHERE email = ? AND deleted_at IS NULL", (email,))
        return rows[0][0] if rows else None

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM users")[0][0])

    def distinct_emails(self) -> int:
        return int(self._query("SELECT count(DISTINCT email) FROM users")[0][0])


def sql_app(table: SqlTable, poll_interval: float) -> dict[str, Any]:
    return {
        "connector": "sql",
        "poll_interval": poll_interval,
        "settings": {
            "url": table.url(),
            "table": "users",
            "updated_at": "updated_at",
            "deleted_at": "deleted_at",
        },
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _toml_table(name: str, data: Mapping[str, Any]) -> str:
    lines = [f"[{name}]"]
    nested = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            nested.append(_toml_table(f"{name}.{key}", value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join([*lines, *nested]) + "\n"


def write_config(
    folder: Path,
    *,
    apps: Mapping[str, Mapping[str, Any]],
    mapping: str,
    daemon: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
) -> Path:
    """``config.toml`` + ``mappings/sync.toml`` in ``folder``; the state goes to ``folder/state/``."""
    (folder / "mappings").mkdir(exist_ok=True)
    (folder / "mappings" / "sync.toml").write_text(textwrap.dedent(mapping))
    parts = ['state = "state/syncd.db"\nmappings = ["mappings"]\nlog_format = "json"\nlog_level = "info"\n']
    if batch_size is not None:
        parts.append(f"batch_size = {batch_size}\n")
    parts.append(_toml_table("daemon", {"host": "127.0.0.1", "port": 0, **(daemon or {})}))
    for name, app in apps.items():
        parts.append(_toml_table(f"apps.{name}", app))
    config = folder / "config.toml"
    config.write_text("\n".join(parts))
    return config
