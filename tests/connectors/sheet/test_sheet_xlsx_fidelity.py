"""XLSX writes change only the cells they name: everything else a person put in the workbook stays."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from conftest import ConnectorFactory
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font
from openpyxl.worksheet.table import Table

from syncd.connector import ConfigError, PermanentError, WriteItem


def formatted_workbook(path: Path) -> None:
    workbook = openpyxl.Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "Notes"
    notes["A1"] = "Call Ann on Monday"
    sheet = workbook.create_sheet("People")
    sheet.append(["email", "name", "signed up", "seats", "internal note"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.column_dimensions["B"].width = 31.5
    sheet.append(["ann@example.com", "Ann", datetime(2024, 3, 1), 12, "VIP, keep happy"])
    sheet.append(["bob@example.com", "Bob", datetime(2024, 4, 2), 3, None])
    for row in (2, 3):
        sheet.cell(row, 3).number_format = "dd/mm/yyyy"
        sheet.cell(row, 4).number_format = "#,##0.00"
    workbook.save(path)


async def test_other_sheets_formatting_and_unknown_columns_survive_writes(
    tmp_path: Path, connect: ConnectorFactory
) -> None:
    path = tmp_path / "crm.xlsx"
    formatted_workbook(path)
    connector = connect(path, sheet="People")
    (ann,) = await connector.find("rows", "email", ["ann@example.com"])
    (bob,) = await connector.find("rows", "email", ["bob@example.com"])
    (updated,) = await connector.update("rows", [WriteItem("u", {"name": "Ann Smith"}, id=ann.id)])
    assert updated.ok, updated.error
    (created,) = await connector.create(
        "rows",
        [WriteItem("c", {"email": "cy@example.com", "name": "Cy", "signed up": "2024-05-06", "seats": "7"})],
    )
    assert created.ok, created.error
    (deleted,) = await connector.delete("rows", [WriteItem("d", {}, id=bob.id)])
    assert deleted.ok, deleted.error

    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Notes", "People"]
    assert workbook["Notes"]["A1"].value == "Call Ann on Monday"
    sheet = workbook["People"]
    assert [c.value for c in sheet[1]][:5] == ["email", "name", "signed up", "seats", "internal note"]
    assert all(c.font.bold for c in sheet[1]), "the header lost its bold font"
    assert sheet.column_dimensions["B"].width == 31.5
    assert sheet["B2"].value == "Ann Smith"
    assert sheet["E2"].value == "VIP, keep happy", "a column syncd does not know lost its value"
    assert sheet["C2"].number_format == "dd/mm/yyyy"
    assert sheet["D2"].number_format == "#,##0.00"
    # Bob's row is emptied, not removed, so nothing below it moves; the new row follows it.
    assert [c.value for c in sheet[3]][:5] == [None] * 5
    assert sheet["A4"].value == "cy@example.com"
    assert sheet["C4"].value == datetime(2024, 5, 6), "a date column got text instead of a date"
    assert sheet["C4"].number_format == "dd/mm/yyyy", "the new row did not take the format of the row above"
    assert sheet["D4"].value == 7, "a number column got text instead of a number"
    assert sheet["D4"].number_format == "#,##0.00"
    id_column = sheet.cell(1, 6)
    assert id_column.value == "syncd_id"
    assert sheet.column_dimensions["F"].hidden, "the id column syncd added should be hidden"
    assert {sheet["F2"].value, sheet["F4"].value} == {ann.id, created.record.id if created.record else None}


async def test_text_that_looks_like_a_formula_is_stored_as_text(
    tmp_path: Path, connect: ConnectorFactory
) -> None:
    path = tmp_path / "crm.xlsx"
    formatted_workbook(path)
    connector = connect(path, sheet="People")
    (result,) = await connector.create(
        "rows", [WriteItem("c", {"email": "eve@example.com", "name": '=HYPERLINK("http://x")'})]
    )
    assert result.ok, result.error
    assert result.record is not None
    assert result.record.fields["name"] == '=HYPERLINK("http://x")'
    cell = openpyxl.load_workbook(path)["People"]["B4"]
    assert cell.data_type == "s", "a value from another app became a formula"


async def test_formula_cells_are_not_fields_and_are_never_overwritten(
    tmp_path: Path, connect: ConnectorFactory
) -> None:
    path = tmp_path / "crm.xlsx"
    formatted_workbook(path)
    workbook = openpyxl.load_workbook(path)
    workbook["People"]["D3"] = "=D2*2"
    workbook.save(path)
    connector = connect(path, sheet="People")
    (bob,) = await connector.find("rows", "email", ["bob@example.com"])
    assert "seats" not in bob.fields
    (result,) = await connector.update("rows", [WriteItem("u", {"seats": 5}, id=bob.id)])
    assert isinstance(result.error, PermanentError)
    assert "formula" in str(result.error)
    assert openpyxl.load_workbook(path)["People"]["D3"].value == "=D2*2"


async def test_a_workbook_with_a_chart_is_never_rewritten(tmp_path: Path, connect: ConnectorFactory) -> None:
    path = tmp_path / "crm.xlsx"
    formatted_workbook(path)
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["People"]
    chart = BarChart()
    chart.add_data(Reference(sheet, min_col=4, min_row=1, max_row=3), titles_from_data=True)
    sheet.add_chart(chart, "H2")
    workbook.save(path)
    before = path.read_bytes()
    connector = connect(path, sheet="People", key_column="email")
    records = await connector.get("rows", ["ann@example.com"])
    assert [r.fields["name"] for r in records] == ["Ann"], "reading a workbook with a chart must work"
    with pytest.raises(ConfigError, match="charts"):
        await connector.update("rows", [WriteItem("u", {"name": "Ann Smith"}, id="ann@example.com")])
    assert path.read_bytes() == before


async def test_missing_worksheet_is_a_config_error_naming_the_sheets(
    tmp_path: Path, connect: ConnectorFactory
) -> None:
    path = tmp_path / "crm.xlsx"
    formatted_workbook(path)
    with pytest.raises(ConfigError, match=r"no worksheet 'Customers'.*'Notes', 'People'"):
        await connect(path, sheet="Customers").check()


async def test_an_excel_table_grows_with_appended_rows(tmp_path: Path, connect: ConnectorFactory) -> None:
    path = tmp_path / "crm.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["email", "name"])
    sheet.append(["ann@example.com", "Ann"])
    sheet.add_table(Table(displayName="Customers", ref="A1:B2"))
    workbook.save(path)
    connector = connect(path, key_column="email")
    (result,) = await connector.create("rows", [WriteItem("c", {"email": "bob@example.com", "name": "Bob"})])
    assert result.ok, result.error
    table = openpyxl.load_workbook(path).active.tables["Customers"]  # type: ignore[union-attr]
    assert table.ref == "A1:B3"


async def test_written_values_follow_the_type_of_their_column(
    tmp_path: Path, connect: ConnectorFactory
) -> None:
    path = tmp_path / "crm.xlsx"
    formatted_workbook(path)  # name: text, signed up: dates, seats: numbers
    connector = connect(path, sheet="People", key_column="email")
    (first,) = await connector.update("rows", [WriteItem("u", {"seats": "12.5"}, id="ann@example.com")])
    assert first.record is not None
    assert first.record.fields["seats"] == 12.5, "text reading as a number went into a number column as text"
    (result,) = await connector.update(
        "rows",
        [WriteItem("u", {"name": 42, "seats": "007", "signed up": "not a date"}, id="bob@example.com")],
    )
    assert result.ok, result.error
    sheet = openpyxl.load_workbook(path)["People"]
    assert (sheet["B3"].value, sheet["B3"].data_type) == ("42", "s"), (
        "a number went into a text column as a number"
    )
    assert sheet["D3"].value == "007", "leading zeros were lost to a number conversion"
    assert sheet["C3"].value == "not a date"
    assert result.record is not None
    assert result.record.fields == {
        "email": "bob@example.com",
        "name": "42",
        "signed up": "not a date",
        "seats": "007",
        "internal note": None,
    }
