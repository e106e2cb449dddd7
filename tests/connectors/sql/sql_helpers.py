"""Helpers for the sql connector tests: the user's own app, writing to its SQLite file directly."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from syncd.connector import Cursor, Page
from syncd_sql import SqlConnector

#: ``connect(**settings)`` fixture: a connector on the test's database, closed after the test.
ConnectorFactory = Callable[..., SqlConnector]

USERS_DDL = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    plan TEXT CHECK (plan IN ('free', 'pro')),
    updated_at TEXT,
    deleted_at TEXT
)
"""


#: A record version of a row with an ``updated_at`` value: the value, ``#``, 16 hex of a content hash.
STAMPED_VERSION = re.compile(r"(?P<stamp>.+)#(?P<hash>[0-9a-f]{16})")


def version_stamp(version: str | None) -> str:
    """The ``updated_at`` part of a stamped version (failing the test if it has another shape)."""
    match = STAMPED_VERSION.fullmatch(version or "")
    assert match is not None, f"not a stamped version: {version!r}"
    return match["stamp"]


def stamp(second: int, minute: int = 0) -> str:
    """A timestamp in SQLite's CURRENT_TIMESTAMP style, 2024-01-01 10:MM:SS."""
    return f"2024-01-01 10:{minute:02d}:{second:02d}"


class AppDb:
    """The user's application: its own autocommit connection per statement, like another process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with closing(self._connect()) as conn:
            conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with closing(self._connect()) as conn:
            conn.execute("BEGIN")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")

    def script(self, sql: str) -> None:
        with closing(self._connect()) as conn:
            conn.executescript(sql)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with closing(self._connect()) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params)]

    @contextmanager
    def transaction(self, mode: str = "EXCLUSIVE") -> Iterator[sqlite3.Connection]:
        """Hold a write transaction (and its lock) until the block ends, then commit."""
        with closing(self._connect()) as conn:
            conn.execute(f"BEGIN {mode}")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def add_users(self, count: int, *, start: int = 1, updated_at: str | None = None) -> None:
        """``count`` users with ids from ``start``; each stamped ``updated_at`` or its own second."""
        self.executemany(
            "INSERT INTO users (id, email, name, updated_at) VALUES (?, ?, ?, ?)",
            [
                (i, f"user{i}@example.com", f"User {i}", updated_at or stamp(i % 60, i // 60))
                for i in range(start, start + count)
            ],
        )


async def read_pages(connector: SqlConnector, cursor: Cursor | None, obj: str = "users") -> list[Page]:
    return [page async for page in connector.read_changes(obj, cursor)]


def record_ids(pages: Sequence[Page]) -> list[str]:
    return [record.id for page in pages for record in page.records]
