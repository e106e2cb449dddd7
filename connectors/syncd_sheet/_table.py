"""A parsed worksheet seen as records: which column is which, and which row has which id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from syncd.connector import ConfigError, RemoteRecord

from ._grid import Grid, GridRow
from ._values import Formula, Value, as_text, fold, row_version


@dataclass(frozen=True, slots=True)
class Row:
    """A data row with an id: where it is and the record it reads as."""

    position: int
    record: RemoteRecord
    source: GridRow


class Table:
    """Records of a grid.

    The id of a row is the trimmed text of its id cell: the ``key_column`` when one is set, else
    the connector's own ``id_column``. Rows without an id, and later rows repeating an earlier
    row's id (a copied row), are ``unidentified``: they get fresh ids on the next write in
    ``id_column`` mode, and are left out (and logged) in ``key_column`` mode.
    """

    def __init__(self, grid: Grid, *, path: Path, id_name: str, own_ids: bool) -> None:
        self.grid = grid
        self.path = path
        self.id_name = id_name
        self.own_ids = own_ids
        self.columns: dict[str, int] = {}
        for index, name in enumerate(grid.header):
            if name is None:
                continue
            if name in self.columns:
                raise ConfigError(f"{path}: column {name!r} appears twice in the header; rename one of them")
            self.columns[name] = index
        self.id_index = self.columns.get(id_name)
        if not own_ids and self.id_index is None:
            raise ConfigError(f"{path}: key column {id_name!r} is not in the header ({self._known()})")
        self.rows: dict[str, Row] = {}
        self.unidentified: list[GridRow] = []
        for source in grid.rows:
            rid = self._id_of(source)
            if rid is None or rid in self.rows:
                self.unidentified.append(source)
                continue
            self.rows[rid] = Row(source.position, self._record(rid, source), source)

    def _id_of(self, row: GridRow) -> str | None:
        if self.id_index is None:
            return None
        cell = row.cell(self.id_index)
        if cell is None or isinstance(cell, Formula):
            return None
        return as_text(cell).strip() or None

    def _record(self, rid: str, row: GridRow) -> RemoteRecord:
        fields: dict[str, Value] = {}
        formulas: dict[str, str] = {}
        for name, index in self.columns.items():
            if self.own_ids and index == self.id_index:
                continue
            cell = row.cell(index)
            if isinstance(cell, Formula):
                formulas[name] = cell.text
            else:
                fields[name] = cell
        return RemoteRecord(id=rid, fields=fields, version=row_version(fields, formulas))

    @property
    def needs_ids(self) -> bool:
        """True if some rows wait for an id the connector must write (``id_column`` mode only)."""
        return self.own_ids and bool(self.unidentified)

    def column(self, name: str, *, what: str = "column") -> int:
        """The index of column ``name``; ConfigError naming the file and the column if the header lacks it."""
        index = self.columns.get(name)
        if index is None:
            raise ConfigError(
                f"{self.path}: {what} {name!r} is not in the header ({self._known()}); "
                "was it renamed or removed? Fix the header or the mapping."
            )
        return index

    def find(self, name: str, values: Iterable[str]) -> list[RemoteRecord]:
        """Records whose column ``name`` matches one of ``values``, trimmed and case-insensitively."""
        wanted = {key for key in map(fold, values) if key}
        if self.own_ids and name == self.id_name:
            return [row.record for rid, row in self.rows.items() if fold(rid) in wanted]
        index = self.column(name)
        found = []
        for row in self.rows.values():
            cell = row.source.cell(index)
            if not isinstance(cell, Formula) and cell is not None and fold(cell) in wanted:
                found.append(row.record)
        return found

    def _known(self) -> str:
        names = ", ".join(repr(n) for n in self.columns) or "no named columns"
        return f"columns: {names}"


__all__ = ["Row", "Table"]
