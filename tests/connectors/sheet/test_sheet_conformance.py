"""The shared connector conformance kit, run against a real CSV file and a real XLSX workbook."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sheet_helpers import CsvPerson, Person, XlsxPerson

from syncd.testing.conformance import ConnectorConformance, Harness
from syncd_sheet import SheetConnector, SheetSettings


class SheetHarness(Harness):
    """A person editing the file in a spreadsheet app; rows they add have no id until syncd stamps one."""

    natural_key_path = "email"
    mutable_path = "name"
    page_size = 2

    def __init__(self, person: Person, **settings: Any) -> None:
        self.person = person
        self.connector = SheetConnector(
            SheetSettings.model_validate({"path": str(person.path), "page_size": self.page_size, **settings})
        )

    async def seed(self, fields: Mapping[str, Any]) -> str:
        self.person.append(dict(fields))
        # The person's new row has no id yet: the connector writes one into the file when it reads it.
        (record,) = await self.connector.find("rows", "email", [fields["email"]])
        ids = {r["syncd_id"] for r in self.person.records()}
        assert record.id in ids, "the id handed out is not in the file"
        return record.id

    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        self.person.edit("syncd_id", id, dict(fields))

    async def remove(self, id: str) -> None:
        self.person.remove("syncd_id", id)

    def sample_fields(self, i: int) -> dict[str, Any]:
        return {"email": f"person{i}@example.com", "name": f"Person {i}"}

    def invalid_fields(self) -> dict[str, Any] | None:
        return {"email": "nobody@example.com", "name": ["not", "one", "cell"]}

    def missing_id(self) -> str:
        return "00000000-0000-4000-8000-000000000000"


class TestCsvConformance(ConnectorConformance):
    """A CSV file that starts without an id column: the connector adds it with its first write."""

    object_name = "rows"

    @pytest.fixture
    async def harness(self, tmp_path: Path) -> Harness:
        person = CsvPerson(tmp_path / "contacts.csv")
        person.create(["email", "name"], [])
        return SheetHarness(person)


class TestXlsxConformance(ConnectorConformance):
    """An XLSX workbook whose synced worksheet is not the first one."""

    object_name = "rows"

    @pytest.fixture
    async def harness(self, tmp_path: Path) -> Harness:
        person = XlsxPerson(tmp_path / "contacts.xlsx", sheet="People")
        person.create(["email", "name", "syncd_id"], [])
        workbook_first_sheet(person.path)
        return SheetHarness(person, sheet="People")


def workbook_first_sheet(path: Path) -> None:
    """Put another worksheet in front of the synced one."""
    workbook = openpyxl.load_workbook(path)
    other = workbook.create_sheet("Notes", 0)
    other["A1"] = "not synced"
    workbook.save(path)
