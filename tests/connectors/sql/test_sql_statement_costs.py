"""What each call costs the app's database: no whole-table scan repeated per write batch."""

from __future__ import annotations

import sqlite3

from sql_helpers import AppDb, ConnectorFactory, stamp, version_stamp

from syncd.connector import WriteItem


async def _traced(connector: object) -> tuple[sqlite3.Connection, list[str]]:
    conn = connector._conn  # type: ignore[attr-defined]
    assert isinstance(conn, sqlite3.Connection)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    return conn, statements


async def test_batches_of_creates_read_the_newest_timestamp_once_not_once_per_batch(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(3)  # stamped in SQLite's "2024-01-01 10:00:01" style
    connector = connect(updated_at="updated_at", batch_size=2)
    await connector.check()
    _, statements = await _traced(connector)
    items = [WriteItem(key=f"k{i}", fields={"email": f"new{i}@example.com"}) for i in range(6)]
    results = await connector.create("users", items)
    assert all(result.ok for result in results)
    scans = [sql for sql in statements if "max(" in sql]
    assert len(scans) == 1, f"the newest timestamp was read by {len(scans)} of 3 batches"
    # Every batch still stamps in the table's own style (learnt once, from the app's rows).
    for result in results:
        assert result.record is not None
        assert len(version_stamp(result.record.version)) == len(stamp(0))


async def test_a_style_guessed_for_an_empty_column_gives_way_to_the_apps_own_first_stamp(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect(updated_at="updated_at")
    # A batch on the empty table that commits no row (its one item breaks NOT NULL).
    [failed] = await connector.create("users", [WriteItem(key="a", fields={"name": "No Email"})])
    assert not failed.ok
    app_db.add_users(1)  # the app's own first row, in SQLite's "2024-01-01 10:00:01" style
    [created] = await connector.create("users", [WriteItem(key="b", fields={"email": "b@example.com"})])
    assert created.record is not None
    assert len(created.record.fields["updated_at"]) == len(stamp(0)), created.record.fields["updated_at"]


async def test_a_clean_batch_is_written_without_a_savepoint_per_row_and_a_bad_row_still_fails_alone(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect(updated_at="updated_at", batch_size=10)
    await connector.check()
    _, statements = await _traced(connector)
    clean = [WriteItem(key=f"k{i}", fields={"email": f"new{i}@example.com"}) for i in range(4)]
    assert all(result.ok for result in await connector.create("users", clean))
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    statements.clear()
    mixed = [
        WriteItem(key="a", fields={"email": "a@example.com"}),
        WriteItem(key="b", fields={"name": "No Email"}),  # breaks NOT NULL
        WriteItem(key="c", fields={"email": "c@example.com"}),
    ]
    results = await connector.create("users", mixed)
    assert [result.ok for result in results] == [True, False, True]
    # The whole-batch attempt was rolled back and the batch written again item by item.
    assert any(sql.startswith("ROLLBACK TO") for sql in statements)
    emails = sorted(row["email"] for row in app_db.query("SELECT email FROM users"))
    assert emails == ["a@example.com", "c@example.com", *sorted(f"new{i}@example.com" for i in range(4))]
