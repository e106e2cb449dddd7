"""The sql connector's pre-flight: the table and mapped columns, checked without changing anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from sql_helpers import AppDb, ConnectorFactory

from syncd.connector import ConfigError, PathProblem
from syncd_sql import SqlConnector, SqlSettings


async def test_a_column_typo_is_named_with_the_nearest_real_column(connect: ConnectorFactory) -> None:
    connector = connect()
    problems = await connector.preflight(
        "users", read=["emial", "name", "Plan"], write=["name", "score"], key="emial"
    )
    assert problems == [
        PathProblem("emial", "column 'emial' does not exist in table 'users' (did you mean 'email'?)"),
        PathProblem("Plan", "column 'Plan' does not exist in table 'users' (did you mean 'plan'?)"),
        PathProblem(
            "score",
            "column 'score' does not exist in table 'users'; its columns are: "
            "id, email, name, plan, updated_at, deleted_at",
        ),
    ]


async def test_existing_columns_and_the_rows_alias_pass(connect: ConnectorFactory) -> None:
    connector = connect(updated_at="updated_at")
    assert (
        await connector.preflight("rows", read=["email", "name"], write=["name", "plan"], key="email") == []
    )


async def test_an_object_that_is_not_the_table_is_a_problem_of_the_object(connect: ConnectorFactory) -> None:
    problems = await connect().preflight("customers", read=["email"], write=[], key="email")
    assert problems == [
        PathProblem(None, "this app syncs the table 'users', not 'customers': write object = 'users'")
    ]


async def test_a_missing_table_is_a_settings_error(connect: ConnectorFactory) -> None:
    with pytest.raises(
        ConfigError, match=r"table 'user' does not exist in SQLite database .*\(its tables: users\)"
    ):
        await connect(table="user").preflight("user", read=["email"], write=[], key="email")


async def test_a_missing_database_file_is_a_settings_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    connector = SqlConnector(SqlSettings(url=f"sqlite:///{missing}", table="users"))
    try:
        with pytest.raises(ConfigError, match=r"database file .*nowhere\.db does not exist"):
            await connector.preflight("users", read=["email"], write=[], key="email")
    finally:
        await connector.aclose()
    assert not missing.exists()


async def test_a_table_syncd_owns_may_be_missing_with_the_columns_it_writes(tmp_path: Path) -> None:
    missing = tmp_path / "managed.db"
    connector = SqlConnector(SqlSettings(url=f"sqlite:///{missing}", table="people", create_table=True))
    try:
        assert await connector.preflight("people", read=["email"], write=["email", "name"], key="email") == []
        assert not missing.exists(), "the pre-flight creates nothing, not even a table syncd owns"
    finally:
        await connector.aclose()


async def test_a_table_syncd_owns_still_needs_the_columns_it_only_reads(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect(create_table=True)
    problems = await connector.preflight(
        "users", read=["email", "score"], write=["email", "nickname"], key="email"
    )
    assert [p.path for p in problems] == ["score"]


def test_a_relative_database_path_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    connector = SqlConnector.from_settings({"url": "sqlite:///data/app.db", "table": "t"}, base_dir=tmp_path)
    assert isinstance(connector.config, SqlSettings)
    assert connector.config.url == f"sqlite:///{tmp_path / 'data' / 'app.db'}"
    absolute = SqlConnector.from_settings({"url": "sqlite:////srv/app.db", "table": "t"}, base_dir=tmp_path)
    assert isinstance(absolute.config, SqlSettings)
    assert absolute.config.url == "sqlite:////srv/app.db"
