"""Two SQLite apps (``a`` and ``b``) synced by the real ``syncd`` command, for black-box tests.

Each app is a database file holding one table named after the app. ``SqlWorld`` writes the config
and the mapping, runs ``syncd`` as a subprocess and reads the tables and the state store back.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

#: Columns of both tables (``updated_at`` is ISO-8601 UTC text, as the apps stamp it).
COLUMNS = ("email", "name", "phone", "company", "city", "lifecycle")
#: The stamp of rows that existed before the test started.
SEEDED_AT = "2026-01-01T00:00:00.000Z"


def stamp(offset_seconds: float = 0.0) -> str:
    """An honest ``updated_at``: now (plus ``offset_seconds``), as ISO-8601 UTC with milliseconds."""
    at = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mapping(
    *,
    policy: str = "priority",
    delete: str = "propagate",
    fields: tuple[str, ...] = ("email", "name", "phone", "company", "city"),
    key_column_a: str = "email",
    field_options: dict[str, str] | None = None,
    b_options: str = "",
    extra: str = "",
) -> str:
    """A mapping over apps ``a`` and ``b`` (tables ``a`` and ``b``) with the same column names.

    ``fields`` are two-way; ``field_options`` adds lines to a field's table, ``b_options`` to
    ``[apps.b]`` (filters), and ``extra`` is appended as is (one-way fields).
    """
    options = field_options or {}
    parts = [
        'name = "contacts"\nkey = "email"\ninitial_conflict = "policy"\n',
        '[apps.a]\nobject = "a"\n',
        f'[apps.b]\nobject = "b"\n{b_options}\n',
        f'[conflict]\npolicy = "{policy}"\npriority = ["a", "b"]\n',
        f'[delete]\npolicy = "{delete}"\nmass_delete_threshold = 0.9\n',
    ]
    for name in fields:
        lines = [f"[fields.{name}]"]
        if name == "email":
            lines.append('transforms = ["email"]')
        if name in options:
            lines.append(options[name])
        column_a = key_column_a if name == "email" else name
        lines += [f'apps.a = "{column_a}"', f'apps.b = "{name}"']
        parts.append("\n".join(lines) + "\n")
    parts.append(extra)
    return "\n".join(parts)


def config(*, deleted_at: bool = False, updated_at: bool = True) -> str:
    parts = [
        'state = "state/syncd.db"\nmappings = ["contacts.toml"]\nlog_format = "json"\nlog_level = "warning"\n'
    ]
    for app in ("a", "b"):
        lines = [
            f"[apps.{app}]",
            'connector = "sql"',
            f"[apps.{app}.settings]",
            f'url = "sqlite:///{app}.db"',
        ]
        lines.append(f'table = "{app}"')
        if updated_at:
            lines.append('updated_at = "updated_at"')
        if deleted_at:
            lines.append('deleted_at = "deleted_at"')
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


class SqlWorld:
    """Two SQLite apps, their config and mapping, and the ``syncd`` command run in ``root``."""

    def __init__(
        self,
        root: Path,
        mapping_text: str,
        *,
        deleted_at: bool = False,
        updated_at: bool = True,
    ) -> None:
        self.root = root
        (root / "contacts.toml").write_text(mapping_text)
        (root / "config.toml").write_text(config(deleted_at=deleted_at, updated_at=updated_at))
        for app in ("a", "b"):
            extra = ", deleted_at TEXT" if deleted_at else ""
            stamp_col = ", updated_at TEXT" if updated_at else ""
            self.execute(
                app,
                f"CREATE TABLE {app} (id INTEGER PRIMARY KEY, {', '.join(f'{c} TEXT' for c in COLUMNS)}"
                f"{stamp_col}{extra})",
            )

    # -- the apps' databases ------------------------------------------------------------------

    def execute(self, app: str, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> int:
        """Run one statement in ``app``'s database as the app itself would; returns lastrowid."""
        conn = sqlite3.connect(self.root / f"{app}.db")
        try:
            cur = conn.execute(sql, params)
            conn.commit()
            return int(cur.lastrowid or 0)
        finally:
            conn.close()

    def executescript(self, app: str, sql: str) -> None:
        conn = sqlite3.connect(self.root / f"{app}.db")
        try:
            conn.executescript(sql)
            conn.commit()
        finally:
            conn.close()

    def insert(self, app: str, at: str = SEEDED_AT, **values: Any) -> int:
        values = {**values, "updated_at": at}
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        return self.execute(app, f"INSERT INTO {app} ({columns}) VALUES ({marks})", tuple(values.values()))

    def update(self, app: str, email: str, at: str | None = None, **values: Any) -> None:
        """Edit the row(s) holding ``email`` (case-insensitive), stamping ``updated_at`` honestly."""
        values = {**values, "updated_at": at or stamp()}
        sets = ", ".join(f"{name} = ?" for name in values)
        self.execute(
            app,
            f"UPDATE {app} SET {sets} WHERE lower(trim(email)) = ?",
            (*values.values(), email.strip().lower()),
        )

    def rows(self, app: str, where: str = "1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.root / f"{app}.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(f"SELECT * FROM {app} WHERE {where} ORDER BY id", params)]
        finally:
            conn.close()

    def row(self, app: str, email: str) -> dict[str, Any]:
        found = self.rows(app, "lower(trim(email)) = ?", (email.lower(),))
        assert len(found) == 1, f"{app} holds {len(found)} rows for {email}: {found}"
        return found[0]

    # -- the state store --------------------------------------------------------------------------

    def state(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.root / "state" / "syncd.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def state_write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        conn = sqlite3.connect(self.root / "state" / "syncd.db")
        try:
            conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()

    def changelog(self, reason_like: str = "%", after_id: int = 0) -> list[dict[str, Any]]:
        return self.state(
            "SELECT * FROM changelog WHERE reason LIKE ? AND id > ? ORDER BY id", (reason_like, after_id)
        )

    def last_change_id(self) -> int:
        return int(self.state("SELECT coalesce(max(id), 0) AS n FROM changelog")[0]["n"])

    # -- the command ------------------------------------------------------------------------------

    def syncd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        proc = subprocess.run(
            [sys.executable, "-m", "syncd.cli", "--config", str(self.root / "config.toml"), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"syncd {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def sync(self, *extra: str) -> dict[str, Any]:
        stats: dict[str, Any] = json.loads(self.syncd("sync", "--once", "--json", *extra).stdout)
        return stats

    def show(self, key: str) -> dict[str, Any]:
        view: dict[str, Any] = json.loads(self.syncd("show", key, "--json", "--limit", "1000").stdout)
        return view

    def conflicts(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = json.loads(self.syncd("conflicts", "list", "--json").stdout)
        return listed
