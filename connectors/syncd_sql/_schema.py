"""The synced table as the database describes it, checked against the settings.

Every identifier that reaches SQL comes from here: names in the settings, in ``find`` paths and
in written fields are matched against the live schema first, so user input never becomes SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.connector import ConfigError, RemoteRecord

from ._dialect import Column, DbConnection, Dialect, rows
from ._settings import SqlSettings
from ._timestamps import TimestampStyle, parse_timestamp
from ._values import content_version, record_fields


@dataclass(frozen=True, slots=True)
class TableSpec:
    """The table's columns and the role of each configured one."""

    name: str
    columns: tuple[Column, ...]
    primary_key: Column
    updated_at: Column | None
    deleted_at: Column | None
    #: Whether an INSERT without a key gets one from the database.
    key_generated: bool
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _by_name: Mapping[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Looked up for every written field and every row read: computed once per introspection.
        object.__setattr__(self, "names", tuple(column.name for column in self.columns))
        object.__setattr__(self, "_by_name", {column.name: column for column in self.columns})

    def column(self, name: str) -> Column | None:
        return self._by_name.get(name)

    def unknown_column(self, name: str) -> str:
        """A message for a name that is not a column, listing the real ones."""
        hint = ""
        for column in self.columns:
            if column.name.casefold() == name.casefold():
                hint = f" (did you mean {column.name!r}?)"
        return f"table {self.name!r} has no column {name!r}{hint}; its columns are: {', '.join(self.names)}"

    def key_value(self, record_id: str) -> object | None:
        """The value to bind for a record id, None when no row can have that id."""
        if self.primary_key.affinity != "integer":
            return record_id
        try:
            return int(record_id)
        except ValueError:
            return None

    def is_deleted(self, row: Mapping[str, Any]) -> bool:
        return self.deleted_at is not None and row.get(self.deleted_at.name) is not None

    def record(self, row: Mapping[str, Any], *, deleted: bool | None = None) -> RemoteRecord:
        """A row as a record, with its :meth:`version`."""
        fields = record_fields(row)
        stamp = row.get(self.updated_at.name) if self.updated_at is not None else None
        return RemoteRecord(
            id=str(row[self.primary_key.name]),
            fields=fields,
            version=_version(stamp, fields),
            updated_at=parse_timestamp(stamp),
            deleted=self.is_deleted(row) if deleted is None else deleted,
        )

    def version(self, row: Mapping[str, Any]) -> str:
        """The row's version, as :meth:`record` gives it (without building the record)."""
        stamp = row.get(self.updated_at.name) if self.updated_at is not None else None
        return _version(stamp, record_fields(row))


def _version(stamp: object, fields: Mapping[str, Any]) -> str:
    """``updated_at#hash`` when the row has a stamp, else the content hash alone.

    The stamp alone is not enough: at second resolution an edit in the same second as our read
    keeps it, and a conditional write would then overwrite that edit. The hash prefix (64 bits)
    catches any change of content; the stamp keeps versions readable.
    """
    digest = content_version(fields)
    return digest if stamp is None else f"{stamp}#{digest[:16]}"


def load_table(dialect: Dialect, conn: DbConnection, settings: SqlSettings) -> TableSpec:
    """Introspect and validate the configured table (creating it only when allowed)."""
    table = settings.table
    columns = dialect.columns(conn, table)
    if not columns and settings.create_table:
        others = [name for name in (settings.updated_at, settings.deleted_at) if name is not None]
        dialect.create_table(conn, table, settings.primary_key, others)
        columns = dialect.columns(conn, table)
    if not columns:
        tables = ", ".join(dialect.table_names(conn)) or "none"
        raise ConfigError(
            f"sql: table {table!r} not found in {dialect.describe()} (tables: {tables}); "
            "set create_table = true to let syncd create it"
        )
    spec = TableSpec(
        name=table,
        columns=tuple(columns),
        primary_key=columns[0],
        updated_at=None,
        deleted_at=None,
        key_generated=False,
    )
    key = _require(spec, settings.primary_key, "primary_key")
    if (key.name,) not in dialect.unique_keys(conn, table):
        raise ConfigError(
            f"sql: primary_key column {key.name!r} of table {table!r} is not unique; declare it PRIMARY KEY "
            "or give it a UNIQUE index (record ids and paging need a unique key)"
        )
    updated_at = _require(spec, settings.updated_at, "updated_at") if settings.updated_at else None
    deleted_at = _require(spec, settings.deleted_at, "deleted_at") if settings.deleted_at else None
    if updated_at is not None:
        _check_stamp_style(dialect, conn, table, updated_at)
    return TableSpec(
        name=table,
        columns=tuple(columns),
        primary_key=key,
        updated_at=updated_at,
        deleted_at=deleted_at,
        key_generated=dialect.generates_key(conn, table, key),
    )


def latest_value(dialect: Dialect, conn: DbConnection, table: str, column: Column) -> object:
    """The greatest non-NULL value of a column (the newest timestamp), or None."""
    name = dialect.quote(column.name)
    cursor = conn.execute(f"SELECT max({name}) AS latest FROM {dialect.quote(table)}")
    found = rows(cursor)
    return found[0]["latest"] if found else None


def _check_stamp_style(dialect: Dialect, conn: DbConnection, table: str, column: Column) -> None:
    latest = latest_value(dialect, conn, table, column)
    if latest is not None and TimestampStyle.of(latest) is None:
        raise ConfigError(
            f"sql: updated_at column {column.name!r} holds {latest!r}, which syncd cannot compare and "
            "reproduce; supported are ISO-8601 date-times ('2024-05-01T10:00:00Z', '2024-05-01 10:00:00') "
            "and epoch seconds or milliseconds. Without updated_at, versions are content hashes."
        )


def _require(spec: TableSpec, name: str, role: str) -> Column:
    column = spec.column(name)
    if column is None:
        raise ConfigError(f"sql: {role} = {name!r}: {spec.unknown_column(name)}")
    return column
