"""Settings and schema checks: every misconfiguration fails early with a message that says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sql_helpers import AppDb, ConnectorFactory

from syncd.connector import ConfigError, ConnectorError, load
from syncd_sql import SqlConnector, SqlSettings


def settings(**overrides: object) -> SqlSettings:
    return SqlSettings.model_validate({"url": "sqlite:///app.db", "table": "users", **overrides})


def test_postgresql_url_is_refused_saying_only_sqlite_is_supported() -> None:
    with pytest.raises(ConfigError, match="only SQLite") as caught:
        SqlConnector(settings(url="postgresql://syncd:hunter2@db.internal/app"))
    assert "hunter2" not in str(caught.value)


def test_unknown_url_scheme_is_refused_without_echoing_credentials() -> None:
    with pytest.raises(ConfigError, match="'mysql'") as caught:
        SqlConnector(settings(url="mysql://root:hunter2@localhost/app"))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["sqlite://app.db", "sqlite:///", "app.db"])
def test_malformed_sqlite_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        SqlConnector(settings(url=url))


def test_from_settings_validates_and_builds_through_the_entry_point(app_db: AppDb) -> None:
    cls = load("sql")
    assert cls is SqlConnector
    connector = cls.from_settings({"url": app_db.url, "table": "users"}, app="product")
    assert isinstance(connector, SqlConnector)
    assert connector.app == "product"
    assert connector.config.primary_key == "id"
    assert connector.config.batch_size == 500
    assert connector.config.page_size == 1000
    assert connector.config.create_table is False


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValidationError, match="tabel"):
        settings(tabel="users")


@pytest.mark.parametrize("field", ["page_size", "batch_size"])
def test_non_positive_sizes_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        settings(**{field: 0})


def test_one_column_cannot_play_two_roles() -> None:
    with pytest.raises(ValidationError, match="same column 'changed'"):
        settings(updated_at="changed", deleted_at="changed")


async def test_missing_database_file_is_a_config_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    connector = SqlConnector(settings(url=f"sqlite:///{path}"))
    with pytest.raises(ConfigError, match="cannot open"):
        await connector.check()
    await connector.aclose()
    assert not path.exists()


async def test_file_that_is_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not sqlite " * 200)
    connector = SqlConnector(settings(url=f"sqlite:///{path}"))
    with pytest.raises(ConfigError, match="not a database"):
        await connector.check()
    await connector.aclose()


async def test_relative_url_is_relative_to_the_working_directory(
    app_db: AppDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(app_db.path.parent)
    connector = SqlConnector(settings(url="sqlite:///app.db"))
    await connector.check()
    await connector.aclose()


async def test_missing_table_lists_existing_tables_and_is_not_created(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect(table="customers")
    with pytest.raises(ConfigError, match=r"table 'customers' not found.*tables: users.*create_table"):
        await connector.check()
    assert [row["name"] for row in app_db.query("SELECT name FROM sqlite_master WHERE type = 'table'")] == [
        "users"
    ]


async def test_missing_updated_at_column_is_named_with_the_existing_columns(
    connect: ConnectorFactory,
) -> None:
    connector = connect(updated_at="modified_at")
    with pytest.raises(ConfigError) as caught:
        await connector.check()
    message = str(caught.value)
    assert "updated_at = 'modified_at'" in message
    assert "id, email, name, plan, updated_at, deleted_at" in message


async def test_column_differing_only_in_case_gets_a_did_you_mean(connect: ConnectorFactory) -> None:
    connector = connect(deleted_at="Deleted_At")
    with pytest.raises(ConfigError, match="did you mean 'deleted_at'"):
        await connector.check()


async def test_non_unique_primary_key_is_refused(connect: ConnectorFactory) -> None:
    connector = connect(primary_key="name")
    with pytest.raises(ConfigError, match=r"primary_key column 'name' .* is not unique"):
        await connector.check()


async def test_unique_column_can_serve_as_primary_key(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.add_users(2)
    connector = connect(primary_key="email")
    records = await connector.get("users", ["user2@example.com"])
    assert [record.id for record in records] == ["user2@example.com"]


async def test_updated_at_in_an_unsupported_style_is_refused(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.execute("INSERT INTO users (email, updated_at) VALUES ('a@example.com', 'Jan 3 2024')")
    connector = connect(updated_at="updated_at")
    with pytest.raises(ConfigError, match=r"'Jan 3 2024'.*ISO-8601"):
        await connector.check()


async def test_configuration_errors_surface_on_first_use_without_check(connect: ConnectorFactory) -> None:
    connector = connect(updated_at="nope")
    with pytest.raises(ConfigError, match="nope"):
        await connector.get("users", ["1"])


async def test_check_sees_a_column_added_after_a_failed_check(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect(updated_at="modified_at")
    with pytest.raises(ConfigError):
        await connector.check()
    app_db.execute("ALTER TABLE users ADD COLUMN modified_at TEXT")
    await connector.check()


async def test_create_table_creates_database_and_table_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    connector = SqlConnector(
        settings(url=f"sqlite:///{path}", create_table=True, updated_at="updated_at", deleted_at="deleted_at")
    )
    await connector.check()
    await connector.aclose()
    columns = [row["name"] for row in AppDb(path).query("SELECT name FROM pragma_table_info('users')")]
    assert columns == ["id", "updated_at", "deleted_at"]


async def test_object_type_is_named_after_the_table_and_lists_columns_after_check(
    connect: ConnectorFactory,
) -> None:
    connector = connect()
    assert [obj.name for obj in connector.objects] == ["users"]
    await connector.check()
    obj = connector.object_type("users")
    assert obj.primary_key == "id"
    assert obj.fields == ("id", "email", "name", "plan", "updated_at", "deleted_at")
    assert connector.object_type("rows") is obj


async def test_unknown_object_type_is_refused(connect: ConnectorFactory) -> None:
    connector = connect()
    with pytest.raises(ConnectorError, match="unknown object type 'contacts'"):
        await connector.get("contacts", ["1"])
    with pytest.raises(ConnectorError, match="unknown object type"):
        [page async for page in connector.read_changes("contacts", None)]


async def test_find_by_unknown_column_is_a_config_error_and_runs_no_sql(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect()
    with pytest.raises(ConfigError, match="no column 'email; DROP TABLE users'"):
        await connector.find("users", "email; DROP TABLE users", ["x"])
    assert app_db.query("SELECT count(*) AS n FROM users") == [{"n": 0}]


async def test_table_replaced_under_a_running_connector_is_reintrospected(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect()
    app_db.add_users(1)
    assert [record.id for record in await connector.get("users", ["1"])] == ["1"]
    app_db.script("DROP TABLE users")
    with pytest.raises(ConfigError, match="no such table"):
        await connector.get("users", ["1"])
    app_db.script("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, nickname TEXT)")
    app_db.execute("INSERT INTO users VALUES (1, 'a@example.com', 'Al')")
    [record] = await connector.get("users", ["1"])
    assert record.fields == {"id": 1, "email": "a@example.com", "nickname": "Al"}
