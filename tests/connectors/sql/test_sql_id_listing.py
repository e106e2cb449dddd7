"""The id listing: the live keys only, complete across pages, the cheap way to spot hard deletes."""

from __future__ import annotations

import sqlite3

from sql_helpers import AppDb, ConnectorFactory, read_pages, record_ids, stamp

from syncd_sql import SqlConnector


async def test_id_listing_names_every_live_row_across_keyset_pages(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    for user_id in (30, 4, 17, 9, 22, 5, 41):
        app_db.add_users(1, start=user_id)
    connector = connect(page_size=3)
    ids = await connector.list_ids("users")
    assert ids == ["4", "5", "9", "17", "22", "30", "41"]
    assert ids == record_ids(await read_pages(connector, None))


async def test_id_listing_of_an_exact_multiple_of_the_page_size_misses_nothing(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(6)
    assert await connect(page_size=3).list_ids("rows") == [str(i) for i in range(1, 7)]


async def test_hard_deleted_row_disappears_from_the_id_listing(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(5)
    connector = connect(page_size=2)
    assert "3" in await connector.list_ids("users")
    app_db.execute("DELETE FROM users WHERE id = 3")
    assert await connector.list_ids("users") == ["1", "2", "4", "5"]


async def test_soft_deleted_rows_are_not_listed_as_live_ids(tracked: SqlConnector, app_db: AppDb) -> None:
    app_db.add_users(4)
    app_db.execute("UPDATE users SET deleted_at = ? WHERE id IN (2, 4)", [stamp(59)])
    assert await tracked.list_ids("users") == ["1", "3"]


async def test_id_listing_of_an_empty_table_is_empty(connect: ConnectorFactory) -> None:
    assert await connect().list_ids("users") == []


async def test_id_listing_reads_the_key_column_only(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.add_users(3)
    connector = connect(page_size=2)
    await connector.list_ids("users")  # opens the connection and introspects the table
    statements: list[str] = []
    conn = connector._conn
    assert isinstance(conn, sqlite3.Connection)
    conn.set_trace_callback(statements.append)
    assert await connector.list_ids("users") == ["1", "2", "3"]
    conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects, statements
    assert all(s.startswith('SELECT "id" FROM "users"') for s in selects), selects


async def test_text_keys_are_listed_as_they_are_stored(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.script("CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT)")
    app_db.executemany("INSERT INTO tags VALUES (?, ?)", [("b", "B"), ("a", "A"), ("c", "C")])
    connector = connect(table="tags", primary_key="code", page_size=2)
    assert await connector.list_ids("tags") == ["a", "b", "c"]
