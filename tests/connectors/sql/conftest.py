"""Fixtures for the sql connector tests: a real SQLite file per test and a connector factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sql_helpers import USERS_DDL, AppDb, ConnectorFactory

from syncd_sql import SqlConnector, SqlSettings


@pytest.fixture
def app_db(tmp_path: Path) -> AppDb:
    """An app database with an empty ``users`` table."""
    db = AppDb(tmp_path / "app.db")
    db.script(USERS_DDL)
    return db


@pytest.fixture
async def connect(app_db: AppDb) -> AsyncIterator[ConnectorFactory]:
    """Builds connectors on ``app_db`` (settings override the defaults) and closes them afterwards."""
    made: list[SqlConnector] = []

    def factory(**settings: Any) -> SqlConnector:
        merged = {"url": app_db.url, "table": "users", **settings}
        connector = SqlConnector(SqlSettings.model_validate(merged))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.aclose()


@pytest.fixture
def tracked(connect: ConnectorFactory) -> SqlConnector:
    """The usual setup: updated_at and deleted_at configured."""
    return connect(updated_at="updated_at", deleted_at="deleted_at")
