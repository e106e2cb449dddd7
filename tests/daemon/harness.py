"""Test harness for the daemon: product tables in real SQLite files, config files, and
``syncd run`` as a real subprocess (the interpreter running the tests, ``-m syncd.cli``).

Waiting is always polling a condition against a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_TOKEN = "admin-token-7f3c9b2e1d"

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


def base_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any SYNCD_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update(extra)
    return env


@dataclass
class DaemonProcess:
    """``syncd run`` in a subprocess; its log (stderr, JSON lines) goes to a file."""

    config: Path
    env: dict[str, str]
    name: str = "daemon"
    #: Run in the child before ``syncd run`` starts (e.g. to lower its resource limits).
    preexec: Callable[[], None] | None = None
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ready_file(self) -> Path:
        return self.config.parent / f"{self.name}.ready.json"

    @property
    def log_path(self) -> Path:
        return self.config.parent / f"{self.name}.log"

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def spawn(self) -> subprocess.Popen[bytes]:
        self.ready_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "syncd.cli",
            "run",
            "--config",
            str(self.config),
            "--ready-file",
            str(self.ready_file),
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=self.config.parent,
                stdin=subprocess.DEVNULL,
                preexec_fn=self.preexec,
            )
        return self.proc

    async def start(self, within: float = 20.0) -> DaemonProcess:
        proc = self.spawn()

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"syncd run exited with {proc.returncode}:\n{self.log_text()}")
            return self.ready_file.exists()

        await wait_for(ready, within, what="the daemon's ready file")
        self.info = json.loads(self.ready_file.read_text())
        return self

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, within: float) -> int:
        proc = self.proc
        assert proc is not None
        await wait_for(lambda: proc.poll() is not None, within, what="the daemon to exit")
        return int(proc.returncode)

    async def stop(self, within: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        try:
            return await self.wait_exit(within)
        except AssertionError:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0)


async def wait_for(
    check: Callable[[], Any], within: float, *, what: str = "condition", every: float = 0.02
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(every)
