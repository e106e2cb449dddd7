"""Row identity: an id follows its row wherever a person moves it, and is never a row number."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ConnectorFactory
from sheet_helpers import CsvPerson, Person, XlsxPerson

from syncd.connector import ConfigError, PermanentError, WriteItem


def person_for(kind: str, tmp_path: Path) -> Person:
    return CsvPerson(tmp_path / "people.csv") if kind == "csv" else XlsxPerson(tmp_path / "people.xlsx")


@pytest.fixture(params=["csv", "xlsx"])
def person(request: pytest.FixtureRequest, tmp_path: Path) -> Person:
    person = person_for(request.param, tmp_path)
    person.create(
        ["email", "name"],
        [["ann@example.com", "Ann"], ["bob@example.com", "Bob"], ["cy@example.com", "Cy"]],
    )
    return person


async def test_rows_sorted_by_a_person_keep_their_ids(person: Person, connect: ConnectorFactory) -> None:
    connector = connect(person.path)
    before = {
        r.fields["email"]: r.id async for page in connector.read_changes("rows", None) for r in page.records
    }
    assert len(set(before.values())) == 3
    header, rows = person.table()
    person.save(header, sorted(rows, key=lambda row: str(row[1]), reverse=True))  # Cy, Bob, Ann
    after = {
        r.fields["email"]: r.id async for page in connector.read_changes("rows", None) for r in page.records
    }
    assert after == before
    # Writing by id reaches the moved row, not whatever row now sits at the old position.
    (result,) = await connector.update(
        "rows", [WriteItem("u", {"name": "Ann Smith"}, id=before["ann@example.com"])]
    )
    assert result.ok, result.error
    names = {r["email"]: r["name"] for r in person.records()}
    assert names == {"ann@example.com": "Ann Smith", "bob@example.com": "Bob", "cy@example.com": "Cy"}


async def test_a_copied_row_gets_its_own_id_and_the_original_keeps_its_id(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path)
    (ann,) = await connector.find("rows", "email", ["ann@example.com"])
    header, rows = person.table()
    copy = list(rows[0])
    copy[header.index("email")] = "ann.other@example.com"
    rows.append(copy)  # the person copied Ann's row, id cell included, and changed the email
    person.save(header, rows)
    (original,) = await connector.find("rows", "email", ["ann@example.com"])
    (copied,) = await connector.find("rows", "email", ["ann.other@example.com"])
    assert original.id == ann.id
    assert copied.id not in (ann.id, "")
    stored = {r["email"]: r["syncd_id"] for r in person.records()}
    assert stored["ann.other@example.com"] == copied.id, "the fresh id was not written into the file"


async def test_rows_without_ids_get_ids_written_once_and_kept(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path)
    first = {
        r.fields["email"]: r.id async for page in connector.read_changes("rows", None) for r in page.records
    }
    stored = {r["email"]: r["syncd_id"] for r in person.records()}
    assert stored == first
    again = {
        r.fields["email"]: r.id
        async for page in connect(person.path).read_changes("rows", None)
        for r in page.records
    }
    assert again == first, "a second connector (a restart) must see the same ids"


async def test_key_column_rows_are_identified_by_their_key(person: Person, connect: ConnectorFactory) -> None:
    connector = connect(person.path, key_column="email")
    records = [r async for page in connector.read_changes("rows", None) for r in page.records]
    assert sorted(r.id for r in records) == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert "syncd_id" not in person.table()[0], "key_column mode must not add an id column"
    (dup,) = await connector.create("rows", [WriteItem("c", {"email": "bob@example.com", "name": "Bobby"})])
    assert isinstance(dup.error, PermanentError)
    (blank,) = await connector.create("rows", [WriteItem("c", {"email": "  ", "name": "Nobody"})])
    assert isinstance(blank.error, PermanentError)
    assert len(person.records()) == 3


async def test_missing_key_column_is_a_config_error_naming_file_and_column(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path, key_column="e-mail")
    with pytest.raises(ConfigError, match=r"people\.(csv|xlsx): key column 'e-mail' is not in the header"):
        await connector.check()


async def test_a_cleared_key_cell_never_reads_as_a_delete(person: Person, connect: ConnectorFactory) -> None:
    connector = connect(person.path, key_column="email")
    listing = [page async for page in connector.read_changes("rows", None)]
    assert listing[-1].complete
    person.edit("email", "bob@example.com", {"email": None})  # the person is retyping Bob's email
    pages = [page async for page in connector.read_changes("rows", listing[-1].cursor)]
    assert not any(r.deleted for p in pages for r in p.records), "a half-edited row was reported deleted"
    full = [page async for page in connector.read_changes("rows", None)]
    assert not full[-1].complete, "a listing missing a row must not claim to be complete"
    person.edit("name", "Bob", {"email": "robert@example.com"})  # ...and types a different one
    pages = [page async for page in connector.read_changes("rows", pages[-1].cursor)]
    changes = {r.id: r.deleted for p in pages for r in p.records}
    assert changes == {"robert@example.com": False, "bob@example.com": True}
