"""Sharing the database with the user's app: never block the event loop, wait for locks, then give up cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sql_helpers import AppDb, ConnectorFactory, read_pages, record_ids

from syncd.connector import TransientError, WriteItem


async def other_coroutine_progresses(task: asyncio.Task[Any], turns: int = 50) -> None:
    """Let another coroutine run ``turns`` times while ``task`` is pending; fail if ``task`` finished.

    If the connector blocked the loop on the database lock, ``task`` would run to its end (busy
    timeout, then an error) before this coroutine got to run again.
    """
    progressed = 0

    async def ticker() -> None:
        nonlocal progressed
        for _ in range(turns):
            progressed += 1
            await asyncio.sleep(0)

    await ticker()
    assert progressed == turns
    assert not task.done(), "the database call finished while the app held its lock"


async def test_read_waiting_for_the_apps_lock_does_not_block_the_event_loop(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(5000)
    connector = connect(page_size=1000, busy_timeout_seconds=30)
    with app_db.transaction("EXCLUSIVE") as app:
        app.execute("UPDATE users SET name = 'locked' WHERE id = 1")
        reading = asyncio.create_task(read_pages(connector, None))
        await other_coroutine_progresses(reading)
    pages = await reading
    assert len(record_ids(pages)) == 5000
    assert pages[0].records[0].fields["name"] == "locked"


async def test_write_waits_for_the_apps_transaction_then_commits(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect(busy_timeout_seconds=30)
    with app_db.transaction("IMMEDIATE") as app:
        app.execute("INSERT INTO users (email) VALUES ('app@example.com')")
        writing = asyncio.create_task(
            connector.create("users", [WriteItem("k", {"email": "syncd@example.com"})])
        )
        await other_coroutine_progresses(writing)
    [result] = await writing
    assert result.ok
    assert {row["email"] for row in app_db.query("SELECT email FROM users")} == {
        "app@example.com",
        "syncd@example.com",
    }


async def test_lock_held_past_the_busy_timeout_is_a_transient_error_and_writes_nothing(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect(busy_timeout_seconds=0.05)
    with app_db.transaction("IMMEDIATE"), pytest.raises(TransientError, match="locked"):
        await connector.create("users", [WriteItem("k", {"email": "syncd@example.com"})])
    assert app_db.query("SELECT email FROM users") == []
    [result] = await connector.create("users", [WriteItem("k", {"email": "syncd@example.com"})])
    assert result.ok


async def test_reads_in_wal_mode_do_not_wait_for_an_open_app_transaction(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.execute("PRAGMA journal_mode = WAL")
    app_db.add_users(3)
    connector = connect(busy_timeout_seconds=0)
    with app_db.transaction("IMMEDIATE") as app:
        app.execute("INSERT INTO users (email) VALUES ('uncommitted@example.com')")
        pages = await read_pages(connector, None)
        found = await connector.find("users", "email", ["uncommitted@example.com"])
    assert record_ids(pages) == ["1", "2", "3"]
    assert found == []


async def test_concurrent_calls_on_one_connector_are_serialised_safely(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(200)
    connector = connect(updated_at="updated_at", page_size=25)
    writes = [
        connector.update("users", [WriteItem(f"k{i}", {"name": f"N{i}"}, id=str(i))]) for i in range(1, 21)
    ]
    outcome = await asyncio.gather(read_pages(connector, None), connector.get("users", ["5"]), *writes)
    assert len(record_ids(outcome[0])) == 200
    assert all(result.ok for results in outcome[2:] for result in results)
    names = {row["id"]: row["name"] for row in app_db.query("SELECT id, name FROM users WHERE id <= 20")}
    assert names == {i: f"N{i}" for i in range(1, 21)}
