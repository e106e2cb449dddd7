"""Turning one batch of write items into ``Edits`` of a parsed table, and the results after the write.

Pure: the planner sees the table as it is on disk at the time of the write (read under the lock)
and decides per item. A problem with one item (a missing row, a stale version, a value a cell
cannot hold) becomes that item's error; a column named by the batch that the header lacks is a
ConfigError for the whole batch (the header changed under the mapping: a person must decide).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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

from ._grid import Edits
from ._table import Table
from ._values import Formula, as_text, normalise

WriteKind = Literal["create", "update", "delete"]
#: Makes a new row id (a UUID4 as text; replaceable in tests).
NewId = Callable[[], str]


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class _Outcome:
    key: str
    id: str | None = None
    error: ConnectorError | None = None
    deleted: bool = False


class Planner:
    """Plans one batch against ``table``; ``reject`` is the format's check of a single value."""

    def __init__(
        self, table: Table, reject: Callable[[Any], str | None], *, new_id: NewId = new_uuid
    ) -> None:
        self.table = table
        self.reject = reject
        self.new_id = new_id
        self.edits = Edits()
        self._outcomes: list[_Outcome] = []
        self._id_index = table.id_index
        self._taken = set(table.rows)

    # -- ids -----------------------------------------------------------------------------------------

    def id_index(self) -> int:
        """The id column's index, adding the column (hidden) when the file does not have it yet."""
        if self._id_index is None:
            name = self.table.id_name
            self.edits.add_columns.append(name)
            self.edits.hidden.add(name)
            self._id_index = self.table.grid.width
        return self._id_index

    def stamp_ids(self) -> None:
        """Give every unidentified row a fresh id (``id_column`` mode); a copied row keeps its cells."""
        if not self.table.needs_ids:
            return
        index = self.id_index()
        for row in self.table.unidentified:
            self.edits.cells[(row.position, index)] = self._fresh_id()

    def _fresh_id(self) -> str:
        while True:
            rid = self.new_id()
            if rid not in self._taken:
                self._taken.add(rid)
                return rid

    # -- items ---------------------------------------------------------------------------------------

    def plan(self, kind: WriteKind, items: Sequence[WriteItem]) -> None:
        if kind != "delete":
            self._check_columns(items)
        for item in items:
            try:
                if kind == "create":
                    outcome = self._create(item)
                elif kind == "update":
                    outcome = self._update(item)
                else:
                    outcome = self._delete(item)
            except ConnectorError as exc:
                outcome = _Outcome(item.key, error=exc)
            self._outcomes.append(outcome)

    def _check_columns(self, items: Sequence[WriteItem]) -> None:
        named = {name for item in items for name in item.fields}
        for name in sorted(named):
            if self.table.own_ids and name == self.table.id_name:
                continue  # refused per item below
            self.table.column(name)

    def _values(self, fields: Mapping[str, Any]) -> dict[int, Any]:
        cells: dict[int, Any] = {}
        for name, value in fields.items():
            if self.table.own_ids and name == self.table.id_name:
                raise PermanentError(f"column {name!r} holds syncd's own row ids and cannot be written")
            if isinstance(value, Mapping | list | tuple | set):
                raise PermanentError(f"column {name!r}: a cell holds one value, not a {type(value).__name__}")
            problem = self.reject(value)
            if problem is not None:
                raise PermanentError(f"column {name!r}: {problem}")
            cells[self.table.column(name)] = value
        return cells

    def _key_of(self, value: Any) -> str:
        key = as_text(value).strip()
        if not key:
            raise PermanentError(f"no value for the key column {self.table.id_name!r}")
        if key in self._taken:
            raise PermanentError(f"a row with {self.table.id_name} {key!r} already exists")
        return key

    def _create(self, item: WriteItem) -> _Outcome:
        cells = self._values(item.fields)
        if self.table.own_ids:
            rid = self._fresh_id()
            cells[self.id_index()] = rid
        else:
            assert self.table.id_index is not None
            rid = self._key_of(cells.get(self.table.id_index))
            self._taken.add(rid)
        self.edits.append.append(cells)
        return _Outcome(item.key, rid)

    def _existing(self, item: WriteItem) -> tuple[str, int]:
        row = self.table.rows.get(item.id) if item.id is not None else None
        if row is None:
            raise NotFound(f"no row with {self.table.id_name} {item.id!r}", status=404)
        if item.expected_version is not None and item.expected_version != row.record.version:
            raise PreconditionFailed(
                f"row {item.id!r} changed since syncd read it (version {row.record.version}, "
                f"expected {item.expected_version})",
                status=412,
            )
        return row.record.id, row.position

    def _update(self, item: WriteItem) -> _Outcome:
        rid, position = self._existing(item)
        cells = self._values(item.fields)
        source = self.table.rows[rid].source
        for index in cells:
            if isinstance(source.cell(index), Formula):
                name = self.table.grid.header[index]
                raise PermanentError(
                    f"column {name!r} of row {rid!r} holds a formula; syncd does not overwrite it"
                )
        new_id = rid
        if not self.table.own_ids:
            assert self.table.id_index is not None
            index = self.table.id_index
            if index in cells and as_text(cells[index]).strip() != rid:
                self._taken.discard(rid)
                try:
                    new_id = self._key_of(cells[index])
                except PermanentError:
                    self._taken.add(rid)
                    raise
                self._taken.add(new_id)
        for index, value in cells.items():
            if source.cell(index) != normalise(value) or (position, index) in self.edits.cells:
                self.edits.cells[(position, index)] = value
        return _Outcome(item.key, new_id)

    def _delete(self, item: WriteItem) -> _Outcome:
        rid, position = self._existing(item)
        self.edits.clear.add(position)
        for cell in [c for c in self.edits.cells if c[0] == position]:
            del self.edits.cells[cell]
        return _Outcome(item.key, rid, deleted=True)

    # -- results -------------------------------------------------------------------------------------

    def results(self, written: Table) -> list[WriteResult]:
        """One result per planned item, with the record as the written file holds it."""
        out: list[WriteResult] = []
        for outcome in self._outcomes:
            if outcome.error is not None or outcome.id is None:
                out.append(WriteResult(outcome.key, error=outcome.error))
            elif outcome.deleted:
                out.append(WriteResult(outcome.key, RemoteRecord(outcome.id, {}, deleted=True)))
            else:
                row = written.rows.get(outcome.id)
                if row is None:
                    error = PermanentError(f"row {outcome.id!r} is not in the file after the write")
                    out.append(WriteResult(outcome.key, error=error))
                else:
                    out.append(WriteResult(outcome.key, row.record))
        return out


__all__ = ["NewId", "Planner", "WriteKind", "new_uuid"]
