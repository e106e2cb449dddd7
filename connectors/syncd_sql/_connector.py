"""The ``sql`` connector: one table of your own product's database, synced as one object type.

All database work runs in a worker thread on the connector's single connection, serialised by a
lock, in short transactions: the event loop never waits on SQLite, and the app writing to the same
database is never held up for longer than one page or one batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NoReturn, TypeVar

from syncd.connector import (
    Capabilities,
    ConfigError,
    Connector,
    ConnectorError,
    Cursor,
    ObjectType,
    Page,
    PathProblem,
    RemoteRecord,
    WriteItem,
    WriteResult,
)

from ._cursor import Resume, changes_cursor, listing_cursor, parse_cursor, relist_cursor
from ._dialect import DbConnection, fold_key
from ._dialect import dialect_for as _dialect_for
from ._queries import Row, TableQueries
from ._schema import TableSpec, latest_value, load_table
from ._settings import SqlSettings
from ._timestamps import Stamp, TimestampStyle, capped
from ._writes import BatchWriter, WriteKind

T = TypeVar("T")

#: Object name accepted besides the table's own name.
ROWS_ALIAS = "rows"


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One page read in the worker thread: its records (built there too), last raw row, and more?"""

    records: list[RemoteRecord]
    last: Row | None
    more: bool

    @classmethod
    def of(cls, spec: TableSpec, found: list[Row], size: int) -> _Chunk:
        """``found`` holds up to ``size + 1`` rows; the extra one only tells that another page follows."""
        page = found[:size]
        return cls([spec.record(row) for row in page], page[-1] if page else None, len(found) > size)


class SqlConnector(Connector[SqlSettings]):
    """A table in a SQLite database (PostgreSQL to follow) as one object type named after it.

    Records: ``id`` is the primary key as text, ``fields`` every column by name. ``version`` is
    ``"<updated_at>#<first 16 hex of the row's sha256>"`` when that column is configured (and set
    on the row), else the row's sha256: an edit within the stamp's resolution still changes it,
    so conditional writes never overwrite it.

    Reads: ``read_changes(obj, None)`` lists live rows by key, page by page. With ``updated_at``,
    later reads return rows stamped at or after the cursor minus ``overlap_seconds`` (repeats,
    never skips) and soft-deleted rows as tombstones. Without ``updated_at`` there is nothing to
    resume from: every read lists the whole table again (still page by page).

    Tombstones only appear with a ``deleted_at`` column; without one, deletes are inferred by the
    engine from complete listings, or between them from ``list_ids`` (the live keys only, a cheap
    ``SELECT`` of the key column in keyset pages). The class-level ``capabilities`` say what the
    connector can do; an instance's say what its table supports: ``tombstones`` and ``archives``
    (a delete sets ``deleted_at``, so the row can be restored) only with ``deleted_at``.
    """

    name = "sql"
    version = "0.1.0"
    capabilities = Capabilities(
        incremental=True,
        full_listing=True,
        webhooks=False,
        conditional_writes=True,
        tombstones=True,
        archives=True,
        id_listing=True,
        batch_size=500,
    )
    #: The one object type, by its alias; an instance lists it under the configured table's name.
    objects = (ObjectType(name=ROWS_ALIAS),)

    def __init__(self, config: SqlSettings, *, app: str | None = None) -> None:
        super().__init__(config, app=app)
        self._dialect = _dialect_for(config.url, busy_timeout=config.busy_timeout_seconds)
        self._lock = threading.Lock()
        self._conn: DbConnection | None = None
        self._spec: TableSpec | None = None
        #: Timestamp styles of the table's columns, learnt by the first write (see BatchWriter).
        self._styles: dict[str, TimestampStyle] = {}
        self._publish_object(ObjectType(name=config.table, primary_key=config.primary_key))
        # What this table supports: tombstones and restorable deletes need a ``deleted_at`` column.
        soft = config.deleted_at is not None
        self._shadow_class_vars(
            capabilities=dataclasses.replace(type(self).capabilities, tombstones=soft, archives=soft)
        )

    # -- metadata ------------------------------------------------------------------------------

    def object_type(self, name: str) -> ObjectType:
        if name in (self.config.table, ROWS_ALIAS):
            return self.objects[0]
        return super().object_type(name)

    def _publish_object(self, obj: ObjectType) -> None:
        # This connector's one object is named (and later described) by its table.
        self._shadow_class_vars(objects=(obj,))

    # -- lifecycle -----------------------------------------------------------------------------

    async def check(self) -> None:
        """Open the database and verify the table and every configured column (ConfigError)."""
        await self._run(partial(self._table, refresh=True))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)

    async def preflight(
        self, obj: str, *, read: Sequence[str], write: Sequence[str], key: str | None
    ) -> list[PathProblem]:
        """Open the database read-only (never creating it) and check the table and mapped columns.

        A missing database file or table is a settings problem (``ConfigError``), unless syncd owns
        the table (``create_table``): then both appear with the first write, and so do the
        columns it writes; the columns it only reads must exist.
        """
        paths = list(dict.fromkeys([*read, *write, *([key] if key else [])]))
        added_on_write = set(write) - set(read) - {key} if self.config.create_table else set()
        if self.config.create_table and not self._dialect.exists():
            spec = None
        else:
            spec = await asyncio.to_thread(self._inspect)
        table = self.config.table
        if obj not in (table, ROWS_ALIAS):
            return [
                PathProblem(
                    None, f"this app syncs the table {table!r}, not {obj!r}: write object = {table!r}"
                )
            ]
        if spec is None:
            return []
        return [
            PathProblem(p, _no_column(spec, p))
            for p in paths
            if spec.column(p) is None and p not in added_on_write
        ]

    def _inspect(self) -> TableSpec | None:
        """The table as it is now, on a read-only connection; None if syncd will create it."""
        try:
            conn = self._dialect.connect(create=False, read_only=True)
        except ConnectorError:
            raise
        except Exception as exc:
            self._raise_classified(exc)
        try:
            table = self.config.table
            if not self._dialect.columns(conn, table):
                if self.config.create_table:
                    return None
                tables = ", ".join(self._dialect.table_names(conn)) or "none"
                raise ConfigError(
                    f"sql: table {table!r} does not exist in {self._dialect.describe()} (its tables: {tables})"
                )
            return load_table(self._dialect, conn, self.config)
        except ConnectorError:
            raise
        except Exception as exc:
            self._raise_classified(exc)
        finally:
            conn.close()

    def _raise_classified(self, exc: Exception) -> NoReturn:
        """Raise the typed error for a driver exception (the exception itself if not a DB error)."""
        error = self._dialect.classify(exc)
        if error is None:
            raise exc
        raise error from exc

    # -- reading -------------------------------------------------------------------------------

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        self.object_type(obj)
        started = datetime.now(UTC)
        if cursor is None:
            async for page in self._listing(started, after=None, incremental=False):
                yield page
            return
        spec = await self._run(self._table)
        resume = parse_cursor(cursor) if spec.updated_at is not None else None
        if resume is None:
            async for page in self._listing(started, after=None, incremental=True):
                yield page
            return
        if resume.listing_after is not None:
            async for page in self._listing(
                started, after=resume.listing_after, incremental=True, watermark=resume.watermark
            ):
                yield page
            resume = Resume(resume.watermark)
        async for page in self._changes(started, resume):
            yield page

    async def _listing(
        self, started: datetime, *, after: Any, incremental: bool, watermark: Stamp | None = None
    ) -> AsyncIterator[Page]:
        """Every row by key after ``after``; tombstones only in ``incremental`` mode.

        With ``updated_at``, cursors resume at the next key and then read changes since the
        watermark: ``watermark`` when continuing a listing, else the newest timestamp at the start.
        """
        spec = await self._run(self._table)
        # A listing that starts at the first key and reaches the last one is complete, whether
        # it was asked for (cursor None) or is how this table is re-read (no updated_at column).
        from_start = after is None
        if spec.updated_at is not None and after is None:
            watermark = await self._run(partial(self._watermark, started))
        while True:
            chunk = await self._run(partial(self._listing_chunk, after, incremental))
            if chunk.last is not None:
                after = chunk.last[spec.primary_key.name]
            cursor: Cursor
            if spec.updated_at is None:
                cursor = relist_cursor()
            elif chunk.more:
                cursor = listing_cursor(watermark, after)
            else:
                # The watermark of a listing begun now holds as of now; one carried over from
                # an earlier read counts its window back from the watermark.
                cursor = changes_cursor(watermark, None, started if from_start else None)
            yield Page(chunk.records, cursor, complete=not chunk.more and from_start)
            if not chunk.more:
                return

    async def _changes(self, started: datetime, resume: Resume) -> AsyncIterator[Page]:
        """Rows stamped after the resume point, oldest first, each page resumable."""
        spec = await self._run(self._table)
        assert spec.updated_at is not None
        stamp, key_name = spec.updated_at.name, spec.primary_key.name
        low, low_key = resume.lower_bound(timedelta(seconds=self.config.overlap_seconds))
        cursor: Cursor = {"updated_at": resume.watermark, "pk": resume.key}
        if resume.read_at is not None:
            cursor["read_at"] = resume.read_at
        while True:
            chunk = await self._run(partial(self._changes_chunk, low, low_key))
            if chunk.last is not None:
                low, low_key = chunk.last[stamp], chunk.last[key_name]
                # A stamp in the future (a skewed clock) must not carry the cursor past rows that
                # are stamped correctly later on: cap it at the read's start and re-read from there.
                watermark = capped(low, started)
                cursor = changes_cursor(watermark, low_key if watermark == low else None, started)
            yield Page(chunk.records, cursor)
            if not chunk.more:
                return

    async def list_ids(self, obj: str) -> list[str]:
        """Every live row's id (soft-deleted rows excluded), in key order, read in keyset pages."""
        self.object_type(obj)
        ids: list[str] = []
        after: Any = None
        while True:
            keys = await self._run(partial(self._key_chunk, after))
            ids.extend(str(key) for key in keys)
            if len(keys) < self.config.page_size:
                return ids
            after = keys[-1]

    # -- lookups -------------------------------------------------------------------------------

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        """The rows with these ids (soft-deleted ones as tombstones), in the order asked."""
        self.object_type(obj)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        return await self._run(partial(self._get_rows, wanted))

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        """Live rows whose column ``path`` matches a value, trimmed and case-insensitive (Unicode-aware)."""
        self.object_type(obj)
        folded = list(dict.fromkeys(key for key in map(fold_key, values) if key))
        return await self._run(partial(self._find_rows, path, folded))

    # -- writing -------------------------------------------------------------------------------

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return await self._write(obj, "create", items)

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return await self._write(obj, "update", items)

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Soft delete (set ``deleted_at``) when configured, else ``DELETE``; missing rows: NotFound."""
        return await self._write(obj, "delete", items)

    async def erase(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """``DELETE`` the rows, soft-delete column or not: an erasure leaves nothing behind."""
        return await self._write(obj, "erase", items)

    async def _write(self, obj: str, kind: WriteKind, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Items in transactions of at most ``batch_size``; one result per item, in order."""
        self.object_type(obj)
        results: list[WriteResult] = []
        size = self.config.batch_size
        for start in range(0, len(items), size):
            batch = list(items[start : start + size])
            results.extend(await self._run(partial(self._write_batch, kind, batch)))
        return results

    # -- worker-thread side ----------------------------------------------------------------------

    async def _run(self, work: Callable[[DbConnection], T]) -> T:
        return await asyncio.to_thread(self._locked, work)

    def _locked(self, work: Callable[[DbConnection], T]) -> T:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._dialect.connect(create=self.config.create_table)
                return work(self._conn)
            except ConnectorError:
                raise
            except Exception as exc:
                error = self._dialect.classify(exc)
                if error is None:
                    raise
                if isinstance(error, ConfigError):
                    self._forget_schema()
                raise error from exc

    def _forget_schema(self) -> None:
        """Introspect again next time (the table may have been migrated or the file replaced)."""
        self._spec = None
        self._styles.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _table(self, conn: DbConnection, *, refresh: bool = False) -> TableSpec:
        if self._spec is None or refresh:
            self._spec = load_table(self._dialect, conn, self.config)
            self._styles.clear()
            self._publish_object(
                ObjectType(
                    name=self.config.table,
                    primary_key=self._spec.primary_key.name,
                    fields=self._spec.names,
                )
            )
        return self._spec

    def _watermark(self, started: datetime, conn: DbConnection) -> Stamp | None:
        spec = self._table(conn)
        assert spec.updated_at is not None
        latest = latest_value(self._dialect, conn, spec.name, spec.updated_at)
        if not isinstance(latest, str | int | float) or isinstance(latest, bool):
            return None
        return capped(latest, started)

    def _listing_chunk(self, after: Any, with_deleted: bool, conn: DbConnection) -> _Chunk:
        spec, size = self._table(conn), self.config.page_size
        found = TableQueries(self._dialect, spec).listing_page(
            conn, after, size + 1, with_deleted=with_deleted
        )
        return _Chunk.of(spec, found, size)

    def _key_chunk(self, after: Any, conn: DbConnection) -> list[Any]:
        spec = self._table(conn)
        return TableQueries(self._dialect, spec).key_page(conn, after, self.config.page_size)

    def _changes_chunk(self, low: Stamp | None, low_key: Any, conn: DbConnection) -> _Chunk:
        spec, size = self._table(conn), self.config.page_size
        found = TableQueries(self._dialect, spec).changes_page(conn, low, low_key, size + 1)
        return _Chunk.of(spec, found, size)

    def _get_rows(self, ids: list[str], conn: DbConnection) -> list[RemoteRecord]:
        spec = self._table(conn)
        keys = {record_id: spec.key_value(record_id) for record_id in ids}
        wanted = [key for key in keys.values() if key is not None]
        found = {
            str(row[spec.primary_key.name]): row
            for row in TableQueries(self._dialect, spec).by_keys(conn, wanted)
        }
        records: list[RemoteRecord] = []
        for key in keys.values():
            row = found.pop(str(key), None) if key is not None else None
            if row is not None:
                records.append(spec.record(row))
        return records

    def _find_rows(self, path: str, folded: list[str], conn: DbConnection) -> list[RemoteRecord]:
        spec = self._table(conn)
        column = spec.column(path)
        if column is None and self.config.create_table:
            return []  # a managed table gains the column with its first write: no row can match yet
        if column is None:
            raise ConfigError(f"sql: cannot find by {path!r}: {spec.unknown_column(path)}")
        if not folded:
            return []
        return [spec.record(row) for row in TableQueries(self._dialect, spec).by_folded(conn, column, folded)]

    def _write_batch(self, kind: WriteKind, items: list[WriteItem], conn: DbConnection) -> list[WriteResult]:
        spec = self._table(conn)
        named = {name for item in items for name in item.fields}
        if kind not in ("delete", "erase") and not named.issubset(spec.names):
            # The app may have migrated its table since we looked; a managed table grows instead.
            spec = self._table(conn, refresh=True)
            if self.config.create_table:
                for name in sorted(filter(None, named.difference(spec.names))):
                    self._dialect.add_column(conn, spec.name, name)
                spec = self._table(conn, refresh=True)
        return BatchWriter(self._dialect, spec, datetime.now(UTC), self._styles).run(conn, kind, items)


def _no_column(spec: TableSpec, name: str) -> str:
    """``column 'x' does not exist in table 't' (did you mean 'y'?)``, for a mapped path."""
    same_case = [c for c in spec.names if c.casefold() == name.casefold()]
    close = same_case or difflib.get_close_matches(name, spec.names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; its columns are: {', '.join(spec.names)}"
    return f"column {name!r} does not exist in table {spec.name!r}{hint}"
