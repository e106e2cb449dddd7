"""Change detection by content hash: a poll returns exactly the rows that changed, and is cheap when nothing did."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import ConnectorFactory
from sheet_helpers import CsvPerson, Person, XlsxPerson

from syncd.connector import Cursor, Page, RemoteRecord
from syncd_sheet import SheetConnector


@pytest.fixture(params=["csv", "xlsx"])
def person(request: pytest.FixtureRequest, tmp_path: Path) -> Person:
    person: Person
    person = (
        CsvPerson(tmp_path / "people.csv") if request.param == "csv" else XlsxPerson(tmp_path / "people.xlsx")
    )
    person.create(
        ["email", "name", "syncd_id"],
        [[f"p{i}@example.com", f"P{i}", f"id-{i}"] for i in range(5)],
    )
    person.age()
    return person


async def read(connector: SheetConnector, cursor: Cursor | None) -> list[Page]:
    return [page async for page in connector.read_changes("rows", cursor)]


def records(pages: list[Page]) -> list[RemoteRecord]:
    return [r for page in pages for r in page.records]


def count_parses(connector: SheetConnector, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = connector._format.parse

    def counting(data: bytes) -> Any:
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(connector._format, "parse", counting)
    return calls


async def test_an_unchanged_file_is_not_parsed_when_polled(
    person: Person, connect: ConnectorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = connect(person.path)
    parses = count_parses(connector, monkeypatch)
    listing = await read(connector, None)
    assert len(records(listing)) == 5
    assert len(parses) == 1
    cursor = listing[-1].cursor
    for _ in range(3):
        pages = await read(connector, cursor)
        assert records(pages) == []
        cursor = pages[-1].cursor
    assert len(parses) == 1, "polling an unchanged file parsed it"
    # A new connector (after a restart) with the saved cursor does not parse either.
    fresh = connect(person.path)
    fresh_parses = count_parses(fresh, monkeypatch)
    assert records(await read(fresh, cursor)) == []
    assert fresh_parses == []


async def test_only_changed_rows_come_back_and_removed_rows_as_tombstones(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path)
    cursor = (await read(connector, None))[-1].cursor
    person.edit("syncd_id", "id-1", {"name": "P1 edited"})
    person.remove("syncd_id", "id-3")
    person.append({"email": "new@example.com", "name": "New", "syncd_id": "id-new"})
    header, rows = person.table()
    person.save(header, list(reversed(rows)))  # and sorted differently: moving rows is not a change
    pages = await read(connector, cursor)
    changed = {r.id: r for r in records(pages)}
    assert set(changed) == {"id-1", "id-3", "id-new"}
    assert changed["id-1"].fields["name"] == "P1 edited"
    assert changed["id-3"].deleted
    assert not changed["id-new"].deleted
    assert not any(p.complete for p in pages), "an incremental read is not a complete listing"
    assert records(await read(connector, pages[-1].cursor)) == []


async def test_an_edit_keeping_size_and_timestamp_right_after_a_read_is_still_seen(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path)
    person.edit("syncd_id", "id-2", {"name": "P2 first"})  # saved just now: the read below is "racy"
    cursor = (await read(connector, None))[-1].cursor
    stat = person.path.stat()
    person.edit("syncd_id", "id-2", {"name": "P2 other"})  # same length, then the old timestamp restored
    os.utime(person.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = records(await read(connector, cursor))
    assert [(r.id, r.fields["name"]) for r in changed] == [("id-2", "P2 other")]


async def test_versions_change_with_content_only(person: Person, connect: ConnectorFactory) -> None:
    connector = connect(person.path)
    before = {r.id: r.version for r in records(await read(connector, None))}
    header, rows = person.table()
    person.save(header, list(reversed(rows)))
    person.edit("syncd_id", "id-0", {"name": "P0 edited"})
    after = {r.id: r.version for r in records(await read(connector, None))}
    assert {rid for rid in before if before[rid] != after[rid]} == {"id-0"}


async def test_a_listing_resumed_from_a_middle_page_returns_the_rest(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path, page_size=2)
    pages = await read(connector, None)
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [p.complete for p in pages] == [False, False, True]
    rest = records(await read(connector, pages[0].cursor))
    assert sorted(r.id for r in rest) == ["id-2", "id-3", "id-4"]
