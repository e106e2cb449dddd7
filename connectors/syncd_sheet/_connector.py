"""The ``sheet`` connector: the rows of a CSV file or of one worksheet of an XLSX file, as records.

All file work runs in a worker thread, one operation at a time per connector (a thread lock),
and a write holds the file lock (see ``_files``) for its whole read-modify-replace cycle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import structlog

from syncd.connector import (
    Capabilities,
    ConfigError,
    Connector,
    ConnectorError,
    Cursor,
    ObjectType,
    Page,
    RemoteRecord,
    WriteItem,
    WriteResult,
)

from . import _files as files
from ._csvfile import CsvFormat
from ._cursor import digest, make_cursor, parse_cursor
from ._files import FileSig
from ._grid import SheetFormat
from ._plan import NewId, Planner, WriteKind, new_uuid
from ._settings import SheetSettings
from ._table import Table
from ._xlsxfile import XlsxFormat

T = TypeVar("T")
log = structlog.get_logger("syncd.connectors.sheet")

#: The one object type: the rows of the sheet.
OBJECT = "rows"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A parsed version of the file and whether its signature may hide a later edit."""

    sig: FileSig
    racy: bool
    table: Table


class SheetConnector(Connector[SheetSettings]):
    """A CSV or XLSX file as an app: one object type, ``rows``; one record per non-empty row.

    A record's fields are the row's cells by header name (an empty cell is ``None``; formula
    cells are left out). Its id is the ``key_column``'s value, or else the connector's own id in
    the ``id_column`` (a UUID written into the file, so it follows the row when a person sorts or
    moves rows). Its version is a hash of the row's content.

    ``read_changes(obj, None)`` lists every row (complete); with a cursor it returns the rows
    whose content changed since, and tombstones for rows that are gone, without even parsing the
    file when its size, inode and modification time are unchanged. Writes are batched, one
    atomic rewrite of the file per batch, conditional on ``expected_version`` per item.
    """

    name = "sheet"
    version = "0.1.0"
    capabilities = Capabilities(
        incremental=True,
        full_listing=True,
        webhooks=False,
        create=True,
        update=True,
        delete=True,
        conditional_writes=True,
        tombstones=True,
        batch_size=500,
    )
    objects = (ObjectType(name=OBJECT, primary_key="syncd_id"),)

    def __init__(self, config: SheetSettings, *, app: str | None = None, new_id: NewId = new_uuid) -> None:
        super().__init__(config, app=app)
        self.path = config.path
        self._format: SheetFormat
        if config.format == "csv":
            self._format = CsvFormat(config.path, encoding=config.encoding, separator=config.delimiter)
        else:
            self._format = XlsxFormat(config.path, sheet=config.sheet)
        self._new_id = new_id
        self._lock = threading.Lock()
        self._cache: _Snapshot | None = None
        key = config.key_column
        # This instance's id column and batch size.
        self._shadow_class_vars(
            objects=(
                ObjectType(
                    name=OBJECT, primary_key=key or config.id_column, natural_keys=(key,) if key else ()
                ),
            ),
            capabilities=dataclasses.replace(type(self).capabilities, batch_size=config.batch_size),
        )

    # -- lifecycle -----------------------------------------------------------------------------------

    async def check(self) -> None:
        """The file exists, parses, has a header (with the key column) and its folder is writable."""
        await self._run(self._fresh)
        folder = self.path.parent
        if not await asyncio.to_thread(_writable, folder):
            raise ConfigError(f"{self.path}: syncd cannot write in folder {folder}")

    # -- reading -------------------------------------------------------------------------------------

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        self.object_type(obj)
        resume = parse_cursor(cursor) if cursor is not None else None
        if resume is not None and resume.unchanged(await asyncio.to_thread(files.stat, self.path)):
            yield Page([], cursor)
            return
        snapshot = await self._run(self._snapshot)
        table = snapshot.table
        known = resume.rows if resume is not None else {}
        current = {rid: digest(row.record.version) for rid, row in table.rows.items()}
        changed: list[RemoteRecord] = [
            row.record for rid, row in table.rows.items() if known.get(rid) != current[rid]
        ]
        vanished = {rid: known[rid] for rid in known if rid not in current}
        gone: list[RemoteRecord] = []
        if table.unidentified:
            # A row without a (unique) id may be one whose id vanished (a key cell cleared or being
            # retyped): no tombstones and no complete listing until every row has an id again, so
            # a half-edited row never deletes its record elsewhere. The vanished ids stay in the cursor.
            log.warning(
                "rows without an id are not read; deletes are not reported until they have one",
                app=self.app,
                file=str(self.path),
                rows=[row.position for row in table.unidentified][:20],
                id_column=table.id_name,
            )
            current = {**vanished, **current}
        else:
            gone = [RemoteRecord(rid, {}, deleted=True) for rid in vanished]
        records = changed + gone
        complete = cursor is None and not table.unidentified
        # Rows still waiting for an id (the file is open) must be looked at again: no parse-free poll.
        final = make_cursor(snapshot.sig, snapshot.racy or table.needs_ids, current)
        size = self.config.page_size
        if len(records) <= size:
            yield Page(records, final, complete=complete)
            return
        seen = dict(known)
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            last = start + size >= len(records)
            for record in chunk:
                if record.deleted:
                    seen.pop(record.id, None)
                else:
                    seen[record.id] = current[record.id]
            page_cursor = final if last else make_cursor(None, False, seen)
            yield Page(chunk, page_cursor, complete=last and complete)

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        """The rows with these ids, in the order asked; missing ids are absent."""
        self.object_type(obj)
        if not ids:
            return []
        table = (await self._run(self._snapshot)).table
        return [table.rows[rid].record for rid in dict.fromkeys(ids) if rid in table.rows]

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        """Rows whose column ``path`` equals a value, trimmed and case-insensitively (ConfigError: no such column)."""
        self.object_type(obj)
        table = (await self._run(self._snapshot)).table
        return table.find(path, values)

    # -- writing -------------------------------------------------------------------------------------

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return await self._write(obj, "create", items)

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return await self._write(obj, "update", items)

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Removes the rows (CSV) or empties them, keeping their formatting (XLSX)."""
        return await self._write(obj, "delete", items)

    async def _write(self, obj: str, kind: WriteKind, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)
        results: list[WriteResult] = []
        size = self.config.batch_size
        for start in range(0, len(items), size):
            batch = list(items[start : start + size])
            results.extend(await self._run(partial(self._write_batch, kind, batch)))
        return results

    # -- worker-thread side --------------------------------------------------------------------------

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._locked, work)

    def _locked(self, work: Callable[[], T]) -> T:
        with self._lock:
            return work()

    def _table(self, data: bytes) -> Table:
        settings = self.config
        return Table(
            self._format.parse(data),
            path=self.path,
            id_name=settings.key_column or settings.id_column,
            own_ids=settings.key_column is None,
        )

    def _fresh(self) -> _Snapshot:
        data, sig = files.read(self.path)
        snapshot = _Snapshot(sig, sig.racy(), self._table(data))
        self._cache = snapshot
        return snapshot

    def _snapshot(self) -> _Snapshot:
        """The parsed file: the cached parse while the file is provably unchanged, else a new one.

        Rows without an id get one written into the file first (``id_column`` mode), so that an id
        is never handed out that the file does not hold. While that is impossible (the file is open
        in a spreadsheet app) those rows are left out of reads.
        """
        cached = self._cache
        if (
            cached is not None
            and not (cached.racy or cached.table.needs_ids)
            and cached.sig == files.stat(self.path)
        ):
            return cached
        snapshot = self._fresh()
        if snapshot.table.needs_ids:
            try:
                self._transact(lambda planner: None)
            except ConnectorError as exc:
                log.warning(
                    "rows without an id are left out until syncd can write their ids",
                    app=self.app,
                    file=str(self.path),
                    rows=len(snapshot.table.unidentified),
                    reason=str(exc),
                )
                return snapshot
            snapshot = self._cache or self._fresh()
        return snapshot

    def _write_batch(self, kind: WriteKind, items: list[WriteItem]) -> list[WriteResult]:
        return self._transact(lambda planner: planner.plan(kind, items))

    def _transact(self, plan: Callable[[Planner], None]) -> list[WriteResult]:
        """One locked read-plan-rewrite-replace cycle; ids of unidentified rows are stamped on the way."""
        files.refuse_if_open(self.path)
        with files.locked(self.path, self.config.lock_timeout_seconds):
            data, sig = files.read(self.path)
            table = self._table(data)
            planner = Planner(table, self._format.reject, new_id=self._new_id)
            plan(planner)
            planner.stamp_ids()
            if not planner.edits:
                self._cache = _Snapshot(sig, sig.racy(), table)
                return planner.results(table)
            problem = self._format.unsafe_to_rewrite(data)
            if problem is not None:
                raise ConfigError(problem)
            new_data = self._format.rewrite(data, table.grid, planner.edits)
            written = self._table(new_data)
            files.refuse_if_open(self.path)
            new_sig = files.replace(self.path, new_data, sig)
            self._cache = _Snapshot(new_sig, True, written)
            results = planner.results(written)
            log.info(
                "sheet written", app=self.app, file=str(self.path), items=len(results), bytes=len(new_data)
            )
            return results


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


__all__ = ["OBJECT", "SheetConnector"]
