"""Batched writes: one transaction per batch, one savepoint per item when an item fails.

A batch is first written whole, in one transaction. If an item the database rejects (NOT NULL,
UNIQUE, CHECK, foreign key) or that names an unknown column is met, that attempt is rolled back
and the batch is written again with one savepoint per item: the bad item is rolled back to its
savepoint and reported on its own ``WriteResult``; the other items commit. Version checks of
conditional writes run in the same transaction as the write, which holds the write lock from
its first statement, so nothing can slip in between.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from syncd.connector import (
    ConnectorError,
    NotFound,
    PermanentError,
    PreconditionFailed,
    RemoteRecord,
    WriteItem,
    WriteResult,
)

from ._dialect import Column, DbConnection, Dialect, rows
from ._queries import Row, TableQueries
from ._schema import TableSpec, latest_value
from ._timestamps import TimestampStyle
from ._values import db_value

WriteKind = Literal["create", "update", "delete", "erase"]

_SAVEPOINT = "syncd_item"


class _ItemRefused(Exception):
    """An item failed on its own data while the batch was written whole."""


class _TransactionLost(Exception):
    """An item's error made the database roll back the whole transaction (``ON CONFLICT ROLLBACK``)."""

    def __init__(self, index: int, error: ConnectorError) -> None:
        super().__init__(error.message)
        self.index = index
        self.error = error


class BatchWriter:
    """Applies one batch of creates, updates or deletes to the table."""

    def __init__(
        self,
        dialect: Dialect,
        spec: TableSpec,
        now: datetime,
        styles: dict[str, TimestampStyle] | None = None,
    ) -> None:
        self.dialect = dialect
        self.spec = spec
        self.queries = TableQueries(dialect, spec)
        #: One clock reading per batch; per-row stepping keeps versions strictly increasing.
        self.now = now
        #: Timestamp styles learnt from committed rows, shared by the connector's batches: finding
        #: a column's style reads its newest value (``max()``, a full scan without an index), so it
        #: is read once per connection and schema, not once per batch.
        self._known = styles if styles is not None else {}
        self._styles: dict[str, TimestampStyle] = {}
        self._learnt: dict[str, TimestampStyle] = {}

    def run(self, conn: DbConnection, kind: WriteKind, items: Sequence[WriteItem]) -> list[WriteResult]:
        """One result per item, in order; raises only for failures of the whole batch."""
        operation: Callable[[DbConnection, WriteItem], RemoteRecord] = {
            "create": self._create,
            "update": self._update,
            "delete": self._delete,
            "erase": self._erase,
        }[kind]
        if len(items) > 1:
            done = self._attempt_whole(conn, operation, items)
            if done is not None:
                return done
        failed: dict[int, ConnectorError] = {}
        while True:
            try:
                return self._attempt(conn, operation, items, failed)
            except _TransactionLost as lost:
                # Replay the batch without the item that took the transaction down with it.
                failed[lost.index] = lost.error

    @contextmanager
    def _transaction(self, conn: DbConnection) -> Iterator[None]:
        """One attempt at the batch: committed (and the timestamp styles it learnt kept) if the
        block ends normally, rolled back if anything escapes it."""
        self._styles = dict(self._known)
        self._learnt.clear()
        self.dialect.begin_write(conn)
        try:
            yield
            conn.execute("COMMIT")
            self._known.update(self._learnt)
        except BaseException:
            if self.dialect.in_transaction(conn):
                conn.execute("ROLLBACK")
            raise

    def _item_error(self, exc: Exception) -> ConnectorError | None:
        """The error to report for an item that failed on its own data; None for anything else."""
        return exc if isinstance(exc, PermanentError) else self.dialect.item_error(exc)

    def _attempt_whole(
        self,
        conn: DbConnection,
        operation: Callable[[DbConnection, WriteItem], RemoteRecord],
        items: Sequence[WriteItem],
    ) -> list[WriteResult] | None:
        """The batch in one transaction without a savepoint per item (three statements fewer per
        row). None, with nothing written, if any item fails on its own data: the batch is then
        written item by item, each in its savepoint, so only that item fails."""
        results: list[WriteResult] = []
        try:
            with self._transaction(conn):
                for item in items:
                    try:
                        record = operation(conn, item)
                    except Exception as exc:
                        if self._item_error(exc) is None:
                            raise
                        raise _ItemRefused from exc
                    results.append(WriteResult(item.key, record=record))
        except _ItemRefused:
            return None
        return results

    def _attempt(
        self,
        conn: DbConnection,
        operation: Callable[[DbConnection, WriteItem], RemoteRecord],
        items: Sequence[WriteItem],
        failed: Mapping[int, ConnectorError],
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        with self._transaction(conn):
            for index, item in enumerate(items):
                if index in failed:
                    results.append(WriteResult(item.key, error=failed[index]))
                    continue
                conn.execute(f"SAVEPOINT {_SAVEPOINT}")
                try:
                    record = operation(conn, item)
                except Exception as exc:
                    error = self._item_error(exc)
                    if error is None:
                        raise
                    if not self.dialect.in_transaction(conn):
                        raise _TransactionLost(index, error) from exc
                    conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                    conn.execute(f"RELEASE {_SAVEPOINT}")
                    results.append(WriteResult(item.key, error=error))
                else:
                    conn.execute(f"RELEASE {_SAVEPOINT}")
                    results.append(WriteResult(item.key, record=record))
        return results

    # -- operations ----------------------------------------------------------------------------

    def _create(self, conn: DbConnection, item: WriteItem) -> RemoteRecord:
        spec, key = self.spec, self.spec.primary_key
        values = self._values(item.fields)
        if item.id is not None and key.name not in values:
            values[key.name] = self._key(item.id)
        if key.name not in values and not spec.key_generated:
            if key.affinity == "integer":
                raise PermanentError(
                    f"table {spec.name!r} does not generate {key.name!r} values; give the key in the fields"
                )
            values[key.name] = str(uuid.uuid4())
        if spec.updated_at is not None:
            values[spec.updated_at.name] = self._style(conn, spec.updated_at).after(None, self.now)
        table, quoted_key = self.queries.table, self.queries.key
        if values:
            columns = ", ".join(self.dialect.quote(name) for name in values)
            sql = f"INSERT INTO {table} ({columns}) VALUES ({self.dialect.params(len(values))})"
        else:
            sql = f"INSERT INTO {table} DEFAULT VALUES"
        inserted = rows(conn.execute(f"{sql} RETURNING {quoted_key}", list(values.values())))
        stored_key = inserted[0][key.name] if inserted else None
        if stored_key is None:
            raise PermanentError(
                f"the row was stored without a {key.name!r} value; give the key in the fields"
            )
        return spec.record(self._reread(conn, stored_key))

    def _update(self, conn: DbConnection, item: WriteItem) -> RemoteRecord:
        spec, key = self.spec, self.spec.primary_key
        row = self._current(conn, item)
        values = self._values(item.fields)
        if key.name in values and str(values.pop(key.name)) != str(row[key.name]):
            raise PermanentError(f"cannot change the primary key {key.name!r} of row {item.id!r}")
        if spec.updated_at is not None:
            # The change-tracking column is ours to stamp: a write must move the version forward.
            values.pop(spec.updated_at.name, None)
        if all(row[name] == value for name, value in values.items()):
            return spec.record(row)
        if spec.updated_at is not None:
            previous = row[spec.updated_at.name]
            style = TimestampStyle.of(previous) or self._style(conn, spec.updated_at)
            values[spec.updated_at.name] = style.after(previous, self.now)
        self._set(conn, row[key.name], values)
        return spec.record(self._reread(conn, row[key.name]))

    def _delete(self, conn: DbConnection, item: WriteItem) -> RemoteRecord:
        spec, key = self.spec, self.spec.primary_key
        row = self._current(conn, item)
        if spec.deleted_at is None:
            conn.execute(
                f"DELETE FROM {self.queries.table} WHERE {self.queries.key} = {self.dialect.param}",
                [row[key.name]],
            )
            return dataclasses.replace(spec.record(row), deleted=True)
        values: dict[str, object] = {
            spec.deleted_at.name: self._style(conn, spec.deleted_at).after(None, self.now)
        }
        if spec.updated_at is not None:
            previous = row[spec.updated_at.name]
            style = TimestampStyle.of(previous) or self._style(conn, spec.updated_at)
            values[spec.updated_at.name] = style.after(previous, self.now)
        self._set(conn, row[key.name], values)
        return spec.record(self._reread(conn, row[key.name]))

    def _erase(self, conn: DbConnection, item: WriteItem) -> RemoteRecord:
        """Remove the row itself, soft-deleted or not."""
        key = self.spec.key_value(item.id) if item.id is not None else None
        row = self.queries.by_key(conn, key) if key is not None else None
        if row is None:
            raise NotFound(
                f"row {self.spec.primary_key.name} = {item.id!r} of table {self.spec.name!r} does not exist"
            )
        conn.execute(
            f"DELETE FROM {self.queries.table} WHERE {self.queries.key} = {self.dialect.param}",
            [row[self.spec.primary_key.name]],
        )
        return RemoteRecord(id=str(item.id), fields={}, deleted=True)

    # -- helpers -------------------------------------------------------------------------------

    def _key(self, record_id: str) -> object:
        key = self.spec.key_value(record_id)
        if key is None:
            raise PermanentError(
                f"id {record_id!r} is not a valid {self.spec.primary_key.name!r} (an integer)"
            )
        return key

    def _values(self, fields: Mapping[str, Any]) -> dict[str, object]:
        values: dict[str, object] = {}
        for name, value in fields.items():
            if self.spec.column(name) is None:
                raise PermanentError(self.spec.unknown_column(name))
            values[name] = db_value(name, value)
        return values

    def _current(self, conn: DbConnection, item: WriteItem) -> Row:
        """The live row ``item`` targets; NotFound, or PreconditionFailed on a version mismatch."""
        if item.id is None:
            raise PermanentError("an update or delete needs the record id")
        key = self.spec.key_value(item.id)
        row = self.queries.by_key(conn, key) if key is not None else None
        if row is None or self.spec.is_deleted(row):
            state = "is deleted" if row is not None else "does not exist"
            raise NotFound(
                f"row {self.spec.primary_key.name} = {item.id!r} of table {self.spec.name!r} {state}"
            )
        if item.expected_version is not None:
            current = self.spec.version(row)
            if current != item.expected_version:
                raise PreconditionFailed(
                    f"row {item.id!r} of table {self.spec.name!r} changed since it was read "
                    f"(version {current!r}, expected {item.expected_version!r})",
                    detail={"current_version": current},
                )
        return row

    def _set(self, conn: DbConnection, key: object, values: Mapping[str, object]) -> None:
        p = self.dialect.param
        assignments = ", ".join(f"{self.dialect.quote(name)} = {p}" for name in values)
        sql = f"UPDATE {self.queries.table} SET {assignments} WHERE {self.queries.key} = {p}"
        conn.execute(sql, [*values.values(), key])

    def _reread(self, conn: DbConnection, key: object) -> Row:
        row = self.queries.by_key(conn, key)
        if row is None:
            raise PermanentError(
                f"row {key!r} of table {self.spec.name!r} vanished after the write (a trigger?)"
            )
        return row

    def _style(self, conn: DbConnection, column: Column) -> TimestampStyle:
        """The timestamp style of ``column`` (for an empty soft-delete column, that of ``updated_at``)."""
        if column.name not in self._styles:
            latest = latest_value(self.dialect, conn, self.spec.name, column)
            style = TimestampStyle.of(latest) if latest is not None else None
            if style is not None:
                # Learnt from a value the table holds: kept for later batches once this one commits.
                self._learnt[column.name] = style
            if style is None and column is self.spec.deleted_at and self.spec.updated_at is not None:
                style = self._style(conn, self.spec.updated_at)
            # A default (an empty column) is not kept: the app may write its own style first.
            self._styles[column.name] = style or TimestampStyle.default_for(column.affinity)
        return self._styles[column.name]
