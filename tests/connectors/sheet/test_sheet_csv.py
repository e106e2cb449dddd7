"""CSV files keep their dialect: separator, line endings, byte-order mark, quoting of untouched rows."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from conftest import ConnectorFactory

from syncd.connector import ConfigError, WriteItem


async def test_separator_line_endings_bom_and_untouched_rows_are_kept(
    tmp_path: Path, connect: ConnectorFactory
) -> None:
    path = tmp_path / "export.csv"
    original = (
        'email;name;"notes; free text";syncd_id\r\n'
        '"ann@example.com";"Ann";"likes ""quotes""\r\nand two lines";a1\r\n'
        "bob@example.com;Bob;;b2\r\n"
    )
    path.write_bytes(codecs.BOM_UTF8 + original.encode("utf-8"))
    connector = connect(path)
    (ann, bob) = await connector.get("rows", ["a1", "b2"])
    assert ann.fields == {
        "email": "ann@example.com",
        "name": "Ann",
        "notes; free text": 'likes "quotes"\r\nand two lines',
    }
    assert bob.fields["notes; free text"] is None
    (updated,) = await connector.update("rows", [WriteItem("u", {"name": "Bob Brown"}, id="b2")])
    assert updated.ok, updated.error
    (created,) = await connector.create(
        "rows", [WriteItem("c", {"email": "zoë@example.com", "name": "Zoë 北京"})]
    )
    assert created.ok, created.error
    assert created.record is not None
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8), "the byte-order mark was dropped"
    text = data[len(codecs.BOM_UTF8) :].decode("utf-8")
    lines = text.split("\r\n")
    assert lines[0] == 'email;name;"notes; free text";syncd_id'
    assert text.startswith(original.split("bob@")[0]), "an untouched row was re-quoted"
    assert "bob@example.com;Bob Brown;;b2\r\n" in text
    assert text.endswith(f"zoë@example.com;Zoë 北京;;{created.record.id}\r\n")
    assert "\n" not in text.replace("\r\n", ""), "line endings were mixed"


async def test_an_id_column_is_appended_to_every_row_once(tmp_path: Path, connect: ConnectorFactory) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "email,name,extra\nann@example.com,Ann,x,unnamed\nbob@example.com,Bob\n", encoding="utf-8"
    )
    connector = connect(path)
    records = [r async for page in connector.read_changes("rows", None) for r in page.records]
    ids = {r.fields["email"]: r.id for r in records}
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "email,name,extra,,syncd_id"
    assert lines[1] == f"ann@example.com,Ann,x,unnamed,{ids['ann@example.com']}", "an unnamed cell was lost"
    assert lines[2] == f"bob@example.com,Bob,,,{ids['bob@example.com']}"


async def test_text_in_another_encoding_is_read_and_written_in_it(
    tmp_path: Path, connect: ConnectorFactory
) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes("email,name,syncd_id\nrene@example.com,René,r1\n".encode("cp1252"))
    with pytest.raises(ConfigError, match="not valid utf-8"):
        await connect(path).get("rows", ["r1"])
    connector = connect(path, encoding="cp1252")
    (rene,) = await connector.get("rows", ["r1"])
    assert rene.fields["name"] == "René"
    (result,) = await connector.update("rows", [WriteItem("u", {"name": "Renée"}, id="r1")])
    assert result.ok
    assert path.read_bytes().decode("cp1252").endswith("rene@example.com,Renée,r1\n")


async def test_find_ignores_case_and_surrounding_spaces(tmp_path: Path, connect: ConnectorFactory) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "email,name,syncd_id\n  Ann@Example.COM ,Ann,a\nbob@example.com,Bob,b\n", encoding="utf-8"
    )
    connector = connect(path)
    assert [r.id for r in await connector.find("rows", "email", ["ann@example.com"])] == ["a"]
    assert [r.id for r in await connector.find("rows", "email", ["  BOB@example.com"])] == ["b"]
    assert await connector.find("rows", "email", ["", "  "]) == []


async def test_a_file_without_a_header_is_a_config_error(tmp_path: Path, connect: ConnectorFactory) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty\.csv: the first line must be a header row"):
        await connect(path).check()
