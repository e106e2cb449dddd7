"""Full listings: paged by key, complete only at the end, streaming, and the record shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sql_helpers import AppDb, ConnectorFactory, read_pages, record_ids, stamp, version_stamp

from syncd_sql import SqlConnector


async def test_full_listing_pages_by_key_and_only_the_last_page_is_complete(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(25)
    pages = await read_pages(connect(page_size=10), None)
    assert [len(page.records) for page in pages] == [10, 10, 5]
    assert [page.complete for page in pages] == [False, False, True]
    assert record_ids(pages) == [str(i) for i in range(1, 26)]


async def test_listing_of_an_exact_multiple_of_the_page_size_has_no_empty_tail_page(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(20)
    pages = await read_pages(connect(page_size=10), None)
    assert [len(page.records) for page in pages] == [10, 10]
    assert pages[-1].complete


async def test_empty_table_lists_as_one_complete_empty_page(connect: ConnectorFactory) -> None:
    pages = await read_pages(connect(updated_at="updated_at"), None)
    assert len(pages) == 1
    assert pages[0].records == []
    assert pages[0].complete
    assert pages[0].cursor == {"updated_at": None, "pk": None}


async def test_listing_orders_by_key_not_insertion_order(connect: ConnectorFactory, app_db: AppDb) -> None:
    for user_id in (30, 4, 17, 9, 22):
        app_db.add_users(1, start=user_id)
    pages = await read_pages(connect(page_size=2), None)
    assert record_ids(pages) == ["4", "9", "17", "22", "30"]


async def test_full_listing_streams_pages_instead_of_loading_the_table(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(30)
    pages = connect(page_size=10).read_changes("users", None)
    first = await anext(pages)
    app_db.add_users(1, start=1000)  # inserted after page 1 was served: only a lazy listing sees it
    rest = [page async for page in pages]
    assert record_ids([first, *rest])[-1] == "1000"


async def test_full_listing_omits_soft_deleted_rows_but_keeps_all_others(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(5)
    app_db.execute("UPDATE users SET deleted_at = ? WHERE id IN (2, 4)", [stamp(59)])
    pages = await read_pages(tracked, None)
    assert record_ids(pages) == ["1", "3", "5"]
    assert not any(record.deleted for page in pages for record in page.records)


async def test_record_carries_every_column_the_key_as_text_and_updated_at_in_its_version(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.execute(
        "INSERT INTO users (id, email, name, plan, updated_at) VALUES (7, 'ann@example.com', 'Ann', 'pro', ?)",
        [stamp(5)],
    )
    [page] = await read_pages(tracked, None)
    [record] = page.records
    assert record.id == "7"
    assert record.fields == {
        "id": 7,
        "email": "ann@example.com",
        "name": "Ann",
        "plan": "pro",
        "updated_at": "2024-01-01 10:00:05",
        "deleted_at": None,
    }
    assert version_stamp(record.version) == "2024-01-01 10:00:05"
    assert record.updated_at == datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC)
    assert not record.deleted


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2024-03-04T05:06:07.250Z", datetime(2024, 3, 4, 5, 6, 7, 250000, tzinfo=UTC)),
        ("2024-03-04T07:06:07+02:00", datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2024-03-04 05:06:07", datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)),
        (1709528767, datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)),
        (1709528767250, datetime(2024, 3, 4, 5, 6, 7, 250000, tzinfo=UTC)),
    ],
)
async def test_updated_at_is_parsed_to_an_aware_datetime(
    connect: ConnectorFactory, app_db: AppDb, stored: object, expected: datetime
) -> None:
    app_db.script("CREATE TABLE accounts (id INTEGER PRIMARY KEY, changed)")  # untyped: stored as given
    app_db.execute("INSERT INTO accounts (changed) VALUES (?)", [stored])
    connector = connect(table="accounts", updated_at="changed")
    [record] = (await read_pages(connector, None, obj="accounts"))[0].records
    assert record.updated_at == expected
    assert version_stamp(record.version) == str(stored)


async def test_blob_values_are_read_as_base64_text(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.execute("ALTER TABLE users ADD COLUMN avatar BLOB")
    app_db.execute("INSERT INTO users (email, avatar) VALUES ('a@example.com', ?)", [b"\x00\xffpng"])
    [record] = (await read_pages(connect(), None))[0].records
    assert record.fields["avatar"] == "AP9wbmc="


async def test_content_hash_version_is_stable_and_changes_with_any_column(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(2)
    connector = connect()
    first = {r.id: r.version for r in (await read_pages(connector, None))[0].records}
    again = {r.id: r.version for r in (await read_pages(connector, None))[0].records}
    app_db.execute("UPDATE users SET plan = 'pro' WHERE id = 2")
    after = {r.id: r.version for r in (await read_pages(connector, None))[0].records}
    assert first == again
    assert len(first["1"] or "") == 64
    assert after["1"] == first["1"]
    assert after["2"] != first["2"]


async def test_stamped_version_is_stable_and_changes_with_content_under_the_same_stamp(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    # Second-resolution stamps: a human edit in the same second as our read keeps updated_at.
    app_db.add_users(2, updated_at=stamp(1))
    first = {r.id: r.version for r in (await read_pages(tracked, None))[0].records}
    again = {r.id: r.version for r in (await read_pages(tracked, None))[0].records}
    app_db.execute("UPDATE users SET name = 'Edited' WHERE id = 2")
    after = {r.id: r.version for r in (await read_pages(tracked, None))[0].records}
    assert first == again
    assert after["1"] == first["1"]
    assert after["2"] != first["2"]
    assert version_stamp(after["2"]) == version_stamp(first["2"]) == stamp(1)
    assert [record.version for record in await tracked.get("users", ["1", "2"])] == [after["1"], after["2"]]


async def test_row_without_an_updated_at_value_gets_the_content_hash_as_version(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.execute("INSERT INTO users (email) VALUES ('a@example.com')")
    [record] = (await read_pages(tracked, None))[0].records
    assert record.version is not None
    assert len(record.version) == 64
    assert "#" not in record.version


async def test_quoted_identifiers_work_for_awkward_table_and_column_names(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.script('CREATE TABLE "user list" ("user id" INTEGER PRIMARY KEY, "e""mail" TEXT, "select" TEXT)')
    app_db.execute('INSERT INTO "user list" ("e""mail", "select") VALUES (\'a@example.com\', \'x\')')
    connector = connect(table="user list", primary_key="user id")
    [page] = await read_pages(connector, None, obj="user list")
    assert page.records[0].fields == {"user id": 1, 'e"mail': "a@example.com", "select": "x"}
    found = await connector.find("rows", 'e"mail', ["A@EXAMPLE.COM"])
    assert [record.id for record in found] == ["1"]
