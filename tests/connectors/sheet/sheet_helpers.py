"""A person editing the synced file directly, the way a spreadsheet app saves it.

``CsvPerson`` and ``XlsxPerson`` read and write the file with the csv module and openpyxl,
independently of the connector, so the tests can play the human on the other side of the sync.
"""

from __future__ import annotations

import csv
import io
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import openpyxl


class Person(ABC):
    """Reads and rewrites the whole file, as a spreadsheet app does on save."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @abstractmethod
    def create(self, header: list[str], rows: list[list[Any]]) -> None: ...

    @abstractmethod
    def table(self) -> tuple[list[str], list[list[Any]]]: ...

    @abstractmethod
    def save(self, header: list[str], rows: list[list[Any]]) -> None: ...

    def records(self) -> list[dict[str, Any]]:
        header, rows = self.table()
        return [dict(zip(header, row, strict=False)) for row in rows]

    def append(self, fields: dict[str, Any]) -> None:
        header, rows = self.table()
        rows.append([fields.get(name) for name in header])
        self.save(header, rows)

    def edit(self, column: str, match: Any, fields: dict[str, Any]) -> None:
        header, rows = self.table()
        index = header.index(column)
        hits = [row for row in rows if len(row) > index and row[index] == match]
        assert len(hits) == 1, f"expected one row with {column}={match!r}, found {len(hits)}"
        for name, value in fields.items():
            hits[0][header.index(name)] = value
        self.save(header, rows)

    def remove(self, column: str, match: Any) -> None:
        header, rows = self.table()
        index = header.index(column)
        kept = [row for row in rows if not (len(row) > index and row[index] == match)]
        assert len(kept) == len(rows) - 1
        self.save(header, kept)

    def age(self, seconds: float = 60.0) -> None:
        """Move the file's modification time into the past (as if the last save was a while ago)."""
        st = self.path.stat()
        past = st.st_mtime_ns - int(seconds * 1e9)
        os.utime(self.path, ns=(past, past))


class CsvPerson(Person):
    def create(self, header: list[str], rows: list[list[Any]]) -> None:
        self.save(header, rows)

    def table(self) -> tuple[list[str], list[list[Any]]]:
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
        return lines[0], [[c if c != "" else None for c in row] for row in lines[1:] if any(row)]

    def save(self, header: list[str], rows: list[list[Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if c is None else c for c in row] for row in rows])
        self.path.write_text(buffer.getvalue(), encoding="utf-8")


class XlsxPerson(Person):
    def __init__(self, path: Path, sheet: str = "People") -> None:
        super().__init__(path)
        self.sheet = sheet

    def create(self, header: list[str], rows: list[list[Any]]) -> None:
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.title = self.sheet
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        workbook.save(self.path)

    def table(self) -> tuple[list[str], list[list[Any]]]:
        sheet = openpyxl.load_workbook(self.path)[self.sheet]
        lines = [list(row) for row in sheet.iter_rows(values_only=True)]
        return [str(c) for c in lines[0] if c is not None], [
            row for row in lines[1:] if any(c is not None for c in row)
        ]

    def save(self, header: list[str], rows: list[list[Any]]) -> None:
        workbook = openpyxl.load_workbook(self.path)
        sheet = workbook[self.sheet]
        sheet.delete_rows(2, sheet.max_row)
        for index, name in enumerate(header, start=1):
            sheet.cell(1, index, name)
        for row in rows:
            sheet.append(row)
        workbook.save(self.path)
