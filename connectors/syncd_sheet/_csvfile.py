"""CSV files: parsed with the standard ``csv`` module, rewritten row by row.

A rewrite keeps every row it does not change byte for byte (its quoting, spacing, even a stray
blank line), writes changed and new rows with the file's own separator and line ending, and keeps
a UTF-8 byte-order mark when the file had one. Every cell is text: numbers are not converted.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.connector import ConfigError

from ._grid import Edits, Grid, GridRow
from ._values import as_text

#: Separators tried when the settings name none, in order of preference on a tie.
SEPARATORS = (",", ";", "\t", "|")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    bom: bool
    separator: str
    newline: str


class CsvFormat:
    """A CSV file with a header row; ``separator`` None means detect it from the header."""

    def __init__(self, path: Path, *, encoding: str, separator: str | None) -> None:
        self.path = path
        self.encoding = encoding
        self.separator = separator

    # -- reading -----------------------------------------------------------------------------------

    def parse(self, data: bytes) -> Grid:
        text = self._decode(data)
        records = self._records(text)
        if not records or not any(cell.strip() for cell in records[0][0]):
            raise ConfigError(f"{self.path}: the first line must be a header row naming the columns")
        header = tuple(cell.strip() or None for cell in records[0][0])
        rows: list[GridRow] = []
        width = len(header)
        for position, (cells, _raw) in enumerate(records[1:], start=1):
            if not any(cell.strip() for cell in cells):
                continue
            rows.append(GridRow(position, tuple(cell if cell != "" else None for cell in cells)))
            width = max(width, len(cells))
        return Grid(header, tuple(rows), width)

    def _decode(self, data: bytes) -> _Text:
        bom = data.startswith(codecs.BOM_UTF8)
        encoding = (
            "utf-8-sig"
            if bom and self.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
            else self.encoding
        )
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{self.path}: not valid {self.encoding} text at byte {exc.start}; set the encoding setting"
            ) from exc
        except LookupError as exc:
            raise ConfigError(f"{self.path}: unknown encoding {self.encoding!r}") from exc
        first = next(_LINE.finditer(text), None)
        line = first.group(0) if first else ""
        newline = "\r\n" if line.endswith("\r\n") else "\r" if line.endswith("\r") else "\n"
        separator = self.separator or _guess_separator(line)
        return _Text(text, bom, separator, newline)

    def _records(self, text: _Text) -> list[tuple[list[str], str]]:
        """Every CSV record with the exact text it was read from (a quoted cell may span lines)."""
        consumed: list[str] = []

        def lines() -> Iterator[str]:
            for match in _LINE.finditer(text.text):
                consumed.append(match.group(0))
                yield match.group(0)

        reader = csv.reader(lines(), delimiter=text.separator, quotechar='"', doublequote=True, strict=False)
        records: list[tuple[list[str], str]] = []
        try:
            for cells in reader:
                records.append((cells, "".join(consumed)))
                consumed.clear()
        except csv.Error as exc:
            raise ConfigError(f"{self.path}: line {reader.line_num}: not valid CSV ({exc})") from exc
        return records

    # -- writing -----------------------------------------------------------------------------------

    def reject(self, value: Any) -> str | None:
        if isinstance(value, str) and "\x00" in value:
            return "a CSV cell cannot hold a NUL character"
        return None

    def unsafe_to_rewrite(self, data: bytes) -> str | None:
        return None

    def rewrite(self, data: bytes, grid: Grid, edits: Edits) -> bytes:
        text = self._decode(data)
        records = self._records(text)
        changes: dict[int, dict[int, Any]] = {}
        for (position, column), value in edits.cells.items():
            changes.setdefault(position, {})[column] = value
        widen = len(edits.add_columns)
        out: list[str] = []
        for position, (cells, raw) in enumerate(records):
            if position in edits.clear:
                continue
            blank = not any(cell.strip() for cell in cells)
            if position == 0 and widen:
                raw = self._line(_pad(cells, grid.width) + edits.add_columns, text)
            elif not blank and (widen or position in changes):
                row = _pad(cells, grid.width + widen)
                for column, value in changes.get(position, {}).items():
                    row = _pad(row, column + 1)
                    row[column] = as_text(value)
                raw = self._line(row, text)
            out.append(raw)
        if edits.append and out and not out[-1].endswith(("\n", "\r")):
            out[-1] += text.newline
        for new in edits.append:
            row = [""] * (grid.width + widen)
            for column, value in new.items():
                row = _pad(row, column + 1)
                row[column] = as_text(value)
            out.append(self._line(row, text))
        body = "".join(out)
        encoded = body.encode(self.encoding if not text.bom else "utf-8")
        return (codecs.BOM_UTF8 if text.bom else b"") + encoded

    def _line(self, cells: list[str], text: _Text) -> str:
        buffer = io.StringIO()
        csv.writer(
            buffer,
            delimiter=text.separator,
            quotechar='"',
            lineterminator=text.newline,
            quoting=csv.QUOTE_MINIMAL,
        ).writerow(cells)
        return buffer.getvalue()


def _pad(cells: list[str], width: int) -> list[str]:
    return list(cells) + [""] * (width - len(cells))


def _guess_separator(header: str) -> str:
    """The separator used most often in the header line (outside quotes); ``,`` when none is."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {sep: unquoted.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


__all__ = ["SEPARATORS", "CsvFormat"]
