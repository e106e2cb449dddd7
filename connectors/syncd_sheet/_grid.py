"""The format-neutral view of a worksheet, and the edits a write applies to it.

A ``Grid`` is what a parse of a CSV or XLSX file yields: the header cells and the non-empty data
rows, each with its position in the file (the worksheet row number for XLSX, the record number
for CSV), so that a rewrite can touch exactly those rows. ``Edits`` says what one write batch
changes; each format applies it to the original bytes and keeps everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ._values import Cell


@dataclass(frozen=True, slots=True)
class GridRow:
    """One non-empty data row: its position in the file and its cells by column index."""

    position: int
    cells: tuple[Cell, ...]

    def cell(self, index: int) -> Cell:
        return self.cells[index] if index < len(self.cells) else None


@dataclass(frozen=True, slots=True)
class Grid:
    """Header names by column index (``None`` for a blank header cell) and the data rows.

    ``width`` is the index a new column gets: one past the last column holding anything.
    """

    header: tuple[str | None, ...]
    rows: tuple[GridRow, ...]
    width: int


@dataclass(slots=True)
class Edits:
    """What one write batch changes; values are as given by syncd (the format converts them).

    ``add_columns`` are appended after ``Grid.width`` in order (``hidden`` ones are hidden in
    XLSX); ``cells`` sets ``(position, column index)``; ``append`` adds rows at the end (column
    index → value); ``clear`` empties rows (XLSX, formatting kept) or removes them (CSV).
    """

    add_columns: list[str] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)
    append: list[dict[int, Any]] = field(default_factory=list)
    clear: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.add_columns or self.cells or self.append or self.clear)


class SheetFormat(Protocol):
    """How one file format is read and rewritten."""

    def parse(self, data: bytes) -> Grid:
        """The file's worksheet as a grid; ConfigError for a file that has no header or no such sheet."""

    def rewrite(self, data: bytes, grid: Grid, edits: Edits) -> bytes:
        """The file with ``edits`` applied and everything else kept."""

    def reject(self, value: Any) -> str | None:
        """Why ``value`` cannot be stored in a cell of this format, or None."""

    def unsafe_to_rewrite(self, data: bytes) -> str | None:
        """What a rewrite of this file would lose (so it must not happen), or None."""


__all__ = ["Edits", "Grid", "GridRow", "SheetFormat"]
