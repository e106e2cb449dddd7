"""Writes never corrupt or clobber a person's file: conflicts, locks, renamed headers, crashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ConnectorFactory
from sheet_helpers import CsvPerson, Person, XlsxPerson

from syncd.connector import ConfigError, PreconditionFailed, TransientError, WriteItem


@pytest.fixture(params=["csv", "xlsx"])
def person(request: pytest.FixtureRequest, tmp_path: Path) -> Person:
    person: Person
    person = (
        CsvPerson(tmp_path / "people.csv") if request.param == "csv" else XlsxPerson(tmp_path / "people.xlsx")
    )
    person.create(["email", "name"], [["ann@example.com", "Ann"], ["bob@example.com", "Bob"]])
    return person


async def ids_by_email(connector_factory: ConnectorFactory, path: Path) -> dict[str, str]:
    connector = connector_factory(path)
    return {
        r.fields["email"]: r.id async for page in connector.read_changes("rows", None) for r in page.records
    }


async def test_a_persons_edit_between_read_and_write_is_a_conflict_for_that_item_only(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path)
    ann, bob = await connector.find("rows", "email", ["ann@example.com", "bob@example.com"])
    person.edit("syncd_id", ann.id, {"name": "Ann (edited by hand)"})
    results = await connector.update(
        "rows",
        [
            WriteItem("stale", {"name": "Ann from CRM"}, id=ann.id, expected_version=ann.version),
            WriteItem("fresh", {"name": "Bob from CRM"}, id=bob.id, expected_version=bob.version),
        ],
    )
    assert isinstance(results[0].error, PreconditionFailed)
    assert results[1].ok, results[1].error
    names = {r["email"]: r["name"] for r in person.records()}
    assert names == {"ann@example.com": "Ann (edited by hand)", "bob@example.com": "Bob from CRM"}


@pytest.mark.parametrize("lock_name", [".~lock.{name}#", "~${name}"])
async def test_an_open_file_is_not_written_and_the_refusal_is_retryable(
    person: Person, connect: ConnectorFactory, lock_name: str
) -> None:
    connector = connect(person.path)
    (ann,) = await connector.find("rows", "email", ["ann@example.com"])
    before = person.path.read_bytes()
    lock = person.path.with_name(lock_name.format(name=person.path.name))
    lock.write_text(",alice,host,2026-01-01,file:///home/alice/.config/libreoffice/4;")
    with pytest.raises(TransientError, match=lock.name.replace("$", r"\$")):
        await connector.update("rows", [WriteItem("u", {"name": "Ann Smith"}, id=ann.id)])
    with pytest.raises(TransientError):
        await connector.create("rows", [WriteItem("c", {"email": "cy@example.com", "name": "Cy"})])
    assert person.path.read_bytes() == before, "the file changed while a person had it open"
    lock.unlink()
    (result,) = await connector.update("rows", [WriteItem("u", {"name": "Ann Smith"}, id=ann.id)])
    assert result.ok, "the write should go through once the file is closed"


async def test_new_rows_of_an_open_file_wait_for_their_ids_and_appear_later(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path)
    lock = person.path.with_name(f".~lock.{person.path.name}#")
    lock.write_text("locked")
    person.age()  # an old file: only the rows waiting for ids can make the next poll parse it
    before = person.path.read_bytes()
    pages = [page async for page in connector.read_changes("rows", None)]
    assert [r for p in pages for r in p.records] == [], "rows without ids cannot be handed out yet"
    assert person.path.read_bytes() == before
    lock.unlink()
    pages = [page async for page in connector.read_changes("rows", pages[-1].cursor)]
    assert sorted(r.fields["email"] for p in pages for r in p.records) == [
        "ann@example.com",
        "bob@example.com",
    ]


async def test_a_renamed_header_is_a_config_error_naming_file_and_column(
    person: Person, connect: ConnectorFactory
) -> None:
    connector = connect(person.path)
    (ann,) = await connector.find("rows", "email", ["ann@example.com"])
    header, rows = person.table()
    header[header.index("name")] = "Full name"
    person.save(header, rows)
    before = person.path.read_bytes()
    pattern = rf"{person.path.name}: column 'name' is not in the header"
    with pytest.raises(ConfigError, match=pattern):
        await connector.update("rows", [WriteItem("u", {"name": "Ann Smith"}, id=ann.id)])
    with pytest.raises(ConfigError, match=pattern):
        await connector.create("rows", [WriteItem("c", {"email": "cy@example.com", "name": "Cy"})])
    with pytest.raises(ConfigError, match=pattern):
        await connector.find("rows", "name", ["Ann"])
    assert person.path.read_bytes() == before


async def test_a_failed_replace_leaves_the_original_file_and_no_temporary_file(
    person: Person, connect: ConnectorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = connect(person.path)
    (ann,) = await connector.find("rows", "email", ["ann@example.com"])
    before = person.path.read_bytes()
    listing = sorted(os.listdir(person.path.parent))

    def broken_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(TransientError, match="unchanged"):
        await connector.update("rows", [WriteItem("u", {"name": "Ann Smith"}, id=ann.id)])
    monkeypatch.undo()
    assert person.path.read_bytes() == before
    assert sorted(os.listdir(person.path.parent)) == listing, "a temporary file was left behind"
    (result,) = await connector.update("rows", [WriteItem("u", {"name": "Ann Smith"}, id=ann.id)])
    assert result.ok
    assert {r["name"] for r in person.records()} == {"Ann Smith", "Bob"}


async def test_a_batch_is_one_rewrite_of_the_file(
    person: Person, connect: ConnectorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = connect(person.path)
    ann, bob = await connector.find("rows", "email", ["ann@example.com", "bob@example.com"])
    replaced: list[object] = []
    real_replace = os.replace

    def counting_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        replaced.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", counting_replace)
    results = await connector.create(
        "rows", [WriteItem(f"c{i}", {"email": f"new{i}@example.com", "name": f"New {i}"}) for i in range(5)]
    )
    assert all(r.ok for r in results)
    updates = await connector.update(
        "rows", [WriteItem("a", {"name": "A"}, id=ann.id), WriteItem("b", {"name": "B"}, id=bob.id)]
    )
    assert all(r.ok for r in updates)
    assert len(replaced) == 2
    assert len(person.records()) == 7


async def test_a_symlinked_file_is_written_through_the_link(
    person: Person, connect: ConnectorFactory, tmp_path: Path
) -> None:
    link = tmp_path / "elsewhere" / f"link{person.path.suffix}"
    link.parent.mkdir()
    link.symlink_to(person.path)
    person.path.chmod(0o640)
    connector = connect(link)
    (ann,) = await connector.find("rows", "email", ["ann@example.com"])
    (result,) = await connector.update("rows", [WriteItem("u", {"name": "Ann Smith"}, id=ann.id)])
    assert result.ok, result.error
    assert link.is_symlink(), "the link was replaced by a copy of the file"
    assert {r["name"] for r in person.records()} == {"Ann Smith", "Bob"}
    assert person.path.stat().st_mode & 0o777 == 0o640, "the file lost its permission bits"
