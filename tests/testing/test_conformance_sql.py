"""The conformance kit against the ``sql`` connector on real SQLite files, in three table styles.

``tests/connectors/sql`` runs the kit on the recommended set-up (ISO ``updated_at`` with
microseconds plus a ``deleted_at`` column). Here the same checks cover other shapes a product's
table comes in: second-resolution stamps (SQLite's ``CURRENT_TIMESTAMP``) with soft deletes,
epoch-millisecond stamps with hard deletes and text keys, and no change-tracking column at all.
The backdoor writes through its own connection, the way the product itself would.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.testing.conformance import ConnectorConformance, Harness
from syncd_sql import SqlConnector, SqlSettings


@dataclass(frozen=True)
class TableStyle:
    """How the product's ``users`` table is shaped and which settings describe it."""

    ddl: str
    settings: Mapping[str, Any]
    #: "seconds" text stamps (SQLite's CURRENT_TIMESTAMP style), "epoch_ms" integers, or None.
    stamps: str | None
    soft_delete: bool
    text_keys: bool


STYLES = {
    "second_stamps_soft_delete": TableStyle(
        ddl="""CREATE TABLE users (
            id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, city TEXT,
            updated_at TEXT, deleted_at TEXT)""",
        settings={"updated_at": "updated_at", "deleted_at": "deleted_at"},
        stamps="seconds",
        soft_delete=True,
        text_keys=False,
    ),
    "epoch_ms_stamps_hard_delete_text_keys": TableStyle(
        ddl="""CREATE TABLE users (
            id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, city TEXT,
            updated_at INTEGER)""",
        settings={"updated_at": "updated_at"},
        stamps="epoch_ms",
        soft_delete=False,
        text_keys=True,
    ),
    "no_change_tracking": TableStyle(
        ddl="CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, city TEXT)",
        settings={},
        stamps=None,
        soft_delete=False,
        text_keys=False,
    ),
}


class SqlTableHarness(Harness):
    """The product writing to its own table with its own connection, bumping stamps as it should."""

    natural_key_path = "email"
    mutable_path = "name"
    page_size = 3

    def __init__(self, path: Path, style: TableStyle) -> None:
        self.path = path
        self.style = style
        self._stamp_ms = int(time.time()) * 1000
        self._next_key = 1
        self.volatile_paths = ("updated_at", "deleted_at") if style.stamps else ()
        self._execute(style.ddl)
        settings = SqlSettings.model_validate(
            {"url": f"sqlite:///{path}", "table": "users", "page_size": self.page_size, **style.settings}
        )
        self.connector = SqlConnector(settings)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, params).fetchall()

    def _stamp(self) -> Any:
        """The product's clock: one millisecond later per write, from the second the test began.

        A test makes far fewer than 1000 writes, so second-resolution stamps all fall in the same
        second, as a burst of real edits does: deterministic, and the hazard it exposes is real.
        """
        self._stamp_ms += 1
        if self.style.stamps == "epoch_ms":
            return self._stamp_ms
        return datetime.fromtimestamp(self._stamp_ms // 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")

    def _with_stamp(self, values: dict[str, Any]) -> dict[str, Any]:
        return {**values, "updated_at": self._stamp()} if self.style.stamps else values

    async def seed(self, fields: Mapping[str, Any]) -> str:
        values = self._with_stamp(dict(fields))
        if self.style.text_keys:
            values["id"] = f"app-{self._next_key:04d}"
            self._next_key += 1
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        (row,) = self._execute(
            f"INSERT INTO users ({columns}) VALUES ({marks}) RETURNING id", list(values.values())
        )
        return str(row["id"])

    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        values = self._with_stamp(dict(fields))
        assignments = ", ".join(f"{column} = ?" for column in values)
        self._execute(f"UPDATE users SET {assignments} WHERE id = ?", [*values.values(), id])

    async def remove(self, id: str) -> None:
        if self.style.soft_delete:
            await self.edit(id, {"deleted_at": self._stamp()})
        else:
            self._execute("DELETE FROM users WHERE id = ?", [id])

    def sample_fields(self, i: int) -> dict[str, Any]:
        return {"email": f"user{i}@example.com", "name": f"User {i}", "city": "Lyon"}

    def invalid_fields(self) -> dict[str, Any]:
        return {"name": "No email"}  # email is NOT NULL

    def missing_id(self) -> str:
        return "app-9999" if self.style.text_keys else "9999"


class TestSqlConformance(ConnectorConformance):
    object_name = "users"

    @pytest.fixture(params=sorted(STYLES))
    async def harness(self, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
        harness = SqlTableHarness(tmp_path / "product.db", STYLES[request.param])
        yield harness
        await harness.connector.aclose()
