"""The shared connector conformance kit, run against a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sql_helpers import USERS_DDL, AppDb

from syncd.testing.conformance import ConnectorConformance, Harness
from syncd_sql import SqlConnector, SqlSettings


def now_stamp() -> str:
    """Now, in the style the connector stamps an empty TEXT column with."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqlHarness(Harness):
    """The user's app edits its table directly, bumping updated_at like a well-behaved app does."""

    natural_key_path = "email"
    mutable_path = "name"
    page_size = 3
    volatile_paths = ("updated_at",)

    def __init__(self, db: AppDb) -> None:
        self.db = db
        self.connector = SqlConnector(
            SqlSettings(
                url=db.url,
                table="users",
                updated_at="updated_at",
                deleted_at="deleted_at",
                page_size=self.page_size,
            )
        )

    async def seed(self, fields: Mapping[str, Any]) -> str:
        self.db.execute(
            "INSERT INTO users (email, name, updated_at) VALUES (?, ?, ?)",
            [fields["email"], fields["name"], now_stamp()],
        )
        return str(self.db.query("SELECT max(id) AS id FROM users")[0]["id"])

    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        for column, value in fields.items():
            assert column in ("email", "name", "plan")
            self.db.execute(
                f"UPDATE users SET {column} = ?, updated_at = ? WHERE id = ?", [value, now_stamp(), id]
            )

    async def remove(self, id: str) -> None:
        self.db.execute(
            "UPDATE users SET deleted_at = ?, updated_at = ? WHERE id = ?", [now_stamp(), now_stamp(), id]
        )

    def sample_fields(self, i: int) -> dict[str, Any]:
        return {"email": f"person{i}@example.com", "name": f"Person {i}"}

    def invalid_fields(self) -> dict[str, Any] | None:
        return {"name": "Nobody", "plan": "platinum"}  # NOT NULL email and the CHECK on plan

    def missing_id(self) -> str:
        return "987654"


class TestSqlConformance(ConnectorConformance):
    object_name = "users"

    @pytest.fixture
    async def harness(self, tmp_path: Path) -> AsyncIterator[Harness]:
        db = AppDb(tmp_path / "app.db")
        db.script(USERS_DDL)
        harness = SqlHarness(db)
        yield harness
        await harness.connector.aclose()
