"""XLSX files through openpyxl: read in read-only mode, rewritten by editing cells of the loaded workbook.

A rewrite loads the whole workbook, changes only the cells a write names (plus the id column and
the rows it appends), and saves it: other worksheets, column widths, fonts, fills, number formats,
merged cells, data validation, conditional formatting, comments and defined names are kept by
openpyxl. Some parts of a workbook openpyxl cannot carry through a save (charts, images and
shapes, VBA, slicers, threaded comments); a file holding any of them is never rewritten.

Values written follow the column: a column whose cells are mostly numbers gets numbers (text
that reads as one, without leading zeros), a date column gets dates (ISO-8601 text), anything
else text. Text is always stored as text, even when it starts with ``=``: a value from another
app never becomes a formula.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections import Counter
from copy import copy
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils.cell import get_column_letter, range_boundaries
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from syncd.connector import ConfigError, TransientError

from ._grid import Edits, Grid, GridRow
from ._values import Cell, Formula, as_text, normalise

Kind = Literal["number", "date", "text"]

#: The header is the first row of the worksheet.
HEADER_ROW = 1
#: Longest text a cell holds; openpyxl would cut longer text silently.
MAX_TEXT = 32_767
#: Parts of the package openpyxl drops or damages on save, with what a person would call them.
UNSAFE_PARTS = (
    ("xl/drawings/drawing", "charts, images or shapes"),
    ("xl/charts/", "charts"),
    ("xl/media/", "images"),
    ("xl/vbaProject.bin", "macros"),
    ("xl/slicers/", "slicers"),
    ("xl/timelines/", "timelines"),
    ("xl/threadedComments/", "threaded comments"),
    ("xl/activeX/", "ActiveX controls"),
    ("xl/embeddings/", "embedded objects"),
)
_INTEGER = re.compile(r"[+-]?(?:0|[1-9][0-9]{0,14})")
_DECIMAL = re.compile(
    r"[+-]?(?:0|[1-9][0-9]*)?\.[0-9]+(?:[eE][+-]?[0-9]+)?|[+-]?[1-9][0-9]*(?:\.[0-9]*)?[eE][+-]?[0-9]+"
)


class XlsxFormat:
    """One worksheet (``sheet`` or the first) of an XLSX workbook; the header is row 1."""

    def __init__(self, path: Path, *, sheet: str | None) -> None:
        self.path = path
        self.sheet = sheet

    # -- reading -----------------------------------------------------------------------------------

    def parse(self, data: bytes) -> Grid:
        workbook = self._load(data, read_only=True)
        try:
            sheet = self._worksheet(workbook)
            header: tuple[str | None, ...] | None = None
            rows: list[GridRow] = []
            width = 0
            for number, row in enumerate(sheet.iter_rows(), start=HEADER_ROW):
                cells = tuple(_cell(c) for c in row)
                while cells and cells[-1] is None:
                    cells = cells[:-1]
                width = max(width, len(cells))
                if number == HEADER_ROW:
                    header = tuple(_header_name(c) for c in cells)
                elif cells:
                    rows.append(GridRow(number, cells))
        finally:
            workbook.close()
        if not header or not any(header):
            raise ConfigError(f"{self.path}: row 1 of worksheet {self._name(sheet)!r} must name the columns")
        return Grid(header, tuple(rows), width)

    def _load(self, data: bytes, *, read_only: bool) -> Workbook:
        try:
            with warnings.catch_warnings():
                # openpyxl warns about workbook parts it does not read (e.g. extensions of data validation).
                warnings.simplefilter("ignore")
                return openpyxl.load_workbook(io.BytesIO(data), read_only=read_only, data_only=False)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            # A file being saved by a spreadsheet app reads as a damaged zip for a moment.
            raise TransientError(
                f"{self.path}: cannot read the workbook ({exc}); is it being saved?"
            ) from exc

    def _worksheet(self, workbook: Workbook) -> Any:
        """The configured worksheet (a read-only one when the workbook was loaded read-only)."""
        if self.sheet is None:
            sheet = workbook.worksheets[0] if workbook.worksheets else None
        else:
            sheet = workbook[self.sheet] if self.sheet in workbook.sheetnames else None
        if sheet is None or not hasattr(sheet, "iter_rows"):
            names = ", ".join(repr(n) for n in workbook.sheetnames) or "none"
            raise ConfigError(f"{self.path}: no worksheet {self.sheet or '(first)'!r} (worksheets: {names})")
        return sheet

    def _name(self, sheet: Any) -> str:
        return str(getattr(sheet, "title", self.sheet or ""))

    # -- writing -----------------------------------------------------------------------------------

    def reject(self, value: Any) -> str | None:
        if isinstance(value, str):
            if ILLEGAL_CHARACTERS_RE.search(value):
                return "text with control characters cannot be stored in an XLSX cell"
            if len(value) > MAX_TEXT:
                return f"an XLSX cell holds at most {MAX_TEXT} characters"
        return None

    def unsafe_to_rewrite(self, data: bytes) -> str | None:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as package:
                names = package.namelist()
        except zipfile.BadZipFile:
            return None  # the load reports it
        found = sorted({what for prefix, what in UNSAFE_PARTS if any(n.startswith(prefix) for n in names)})
        if not found:
            return None
        return (
            f"{self.path}: the workbook contains {', '.join(found)}, which would be lost when syncd saves it; "
            "move them to another file (or keep the synced sheet in a workbook of its own)"
        )

    def rewrite(self, data: bytes, grid: Grid, edits: Edits) -> bytes:
        workbook = self._load(data, read_only=False)
        sheet = self._worksheet(workbook)
        for offset, name in enumerate(edits.add_columns):
            column = grid.width + offset + 1
            cell = sheet.cell(HEADER_ROW, column)
            _store(cell, name)
            if column > 1:
                _copy_style(sheet.cell(HEADER_ROW, column - 1), cell)
            if name in edits.hidden:
                sheet.column_dimensions[get_column_letter(column)].hidden = True
        kinds: dict[int, Kind] = {}

        def kind(column: int) -> Kind:
            if column not in kinds:
                kinds[column] = _column_kind(sheet, column + 1)
            return kinds[column]

        for (position, column), value in edits.cells.items():
            _store(sheet.cell(position, column + 1), _coerce(value, kind(column)))
        for position in edits.clear:
            for cell in sheet[position]:
                cell.value = None
        last = max((row.position for row in grid.rows), default=HEADER_ROW)
        total = grid.width + len(edits.add_columns)
        for offset, new in enumerate(edits.append):
            position = last + 1 + offset
            for column in range(1, total + 1):
                target = sheet.cell(position, column)
                if last > HEADER_ROW:
                    _copy_style(sheet.cell(last, column), target)
            for column, value in new.items():
                _store(sheet.cell(position, column + 1), _coerce(value, kind(column)))
        if edits.append:
            _grow_ranges(sheet, last, last + len(edits.append))
        out = io.BytesIO()
        workbook.save(out)
        return out.getvalue()


def _cell(cell: Any) -> Cell:
    if getattr(cell, "data_type", None) == "f":
        return Formula(str(cell.value))
    return normalise(cell.value)


def _header_name(cell: Cell) -> str | None:
    if cell is None or isinstance(cell, Formula):
        return None
    return as_text(cell).strip() or None


def _column_kind(sheet: Worksheet, column: int) -> Kind:
    """What most filled data cells of the column hold (ties and empty columns: text)."""
    counts: Counter[Kind] = Counter()
    for (value,) in sheet.iter_rows(min_row=HEADER_ROW + 1, min_col=column, max_col=column, values_only=True):
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            counts["text"] += 1
        elif isinstance(value, int | float):
            counts["number"] += 1
        elif isinstance(value, datetime | date):
            counts["date"] += 1
        elif isinstance(value, str) and not value.startswith("="):
            counts["text"] += 1
    if not counts:
        return "text"
    (top, n), *rest = counts.most_common()
    return top if not rest or rest[0][1] < n else "text"


def _coerce(value: Any, kind: Kind) -> Any:
    """The cell value to store for ``value`` in a column of ``kind`` (see the module docstring)."""
    if value is None or isinstance(value, bool):
        return value
    if kind == "number":
        if isinstance(value, int | float):
            return value
        text = str(value).strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _DECIMAL.fullmatch(text):
            return float(text)
    elif kind == "date":
        if isinstance(value, datetime) and value.tzinfo is None:
            return value
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                return parsed
    return as_text(value) if not isinstance(value, str) else value


def _store(cell: Any, value: Any) -> None:
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"  # text stays text: never a formula or an error code


def _copy_style(source: Any, target: Any) -> None:
    if source.has_style:
        target._style = copy(source._style)


def _grow_ranges(sheet: Worksheet, last: int, new_last: int) -> None:
    """Tables and the auto-filter that ended at the last row now end at the last appended row."""

    def grown(ref: str | None) -> str | None:
        if not ref:
            return None
        min_col, min_row, max_col, max_row = range_boundaries(ref)
        if min_col is None or max_col is None or min_row != HEADER_ROW or max_row != last:
            return None
        return f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col)}{new_last}"

    for table in sheet.tables.values():
        ref = grown(table.ref)
        if ref is not None:
            table.ref = ref
            if table.autoFilter is not None:
                table.autoFilter.ref = ref
    ref = grown(sheet.auto_filter.ref)
    if ref is not None:
        sheet.auto_filter.ref = ref


__all__ = ["HEADER_ROW", "UNSAFE_PARTS", "XlsxFormat"]
