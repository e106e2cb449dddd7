"""The package surface: what syncd and third parties may rely on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import syncd_sql
from syncd.connector import CONNECTOR_API_VERSION, available
from syncd_sql import SqlConnector, SqlSettings


def test_public_names_are_exactly_the_sorted_all() -> None:
    public = sorted(name for name in vars(syncd_sql) if not name.startswith("_"))
    assert syncd_sql.__all__ == sorted(syncd_sql.__all__)
    assert public == syncd_sql.__all__


def test_connector_is_registered_as_sql_and_speaks_the_current_interface() -> None:
    assert "sql" in available()
    assert SqlConnector.name == "sql"
    assert SqlConnector.api_version == CONNECTOR_API_VERSION
    assert SqlConnector.config_model is SqlSettings


def test_capabilities_advertise_incremental_reads_conditional_writes_and_tombstones() -> None:
    caps = SqlConnector.capabilities
    assert (caps.incremental, caps.full_listing, caps.conditional_writes, caps.tombstones) == (True,) * 4
    assert (caps.create, caps.update, caps.delete) == (True,) * 3
    assert not caps.webhooks
    assert caps.batch_size == 500
    assert caps.id_listing


def test_an_instance_claims_tombstones_and_archives_only_with_a_deleted_at_column(tmp_path: Path) -> None:
    def connector(**settings: str) -> SqlConnector:
        return SqlConnector(SqlSettings(url=f"sqlite:///{tmp_path / 'app.db'}", table="users", **settings))

    hard, soft = connector(updated_at="updated_at"), connector(deleted_at="deleted_at")
    assert not hard.capabilities.tombstones
    assert soft.capabilities.tombstones
    # A hard DELETE cannot be undone: only a soft delete lets the archive policy reach this table.
    assert not hard.capabilities.archives
    assert soft.capabilities.archives
    # Everything else is what the class declares (the engine reads batch_size, create, conditional_writes).
    assert dataclasses.replace(hard.capabilities, tombstones=True, archives=True) == SqlConnector.capabilities
    assert soft.capabilities == SqlConnector.capabilities
    assert SqlConnector.capabilities.tombstones


def test_class_declares_its_one_object_by_the_rows_alias() -> None:
    assert [obj.name for obj in SqlConnector.objects] == ["rows"]
