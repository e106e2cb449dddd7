"""Incremental reads: cursors resume from any page, repeat rows if they must, and never skip one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sql_helpers import AppDb, ConnectorFactory, read_pages, record_ids, stamp

from syncd.connector import Cursor, Page
from syncd_sql import SqlConnector


def live_ids(app_db: AppDb) -> set[str]:
    return {str(row["id"]) for row in app_db.query("SELECT id FROM users")}


def without_read_time(cursor: Cursor | None) -> dict[str, object]:
    assert cursor is not None
    return {k: v for k, v in cursor.items() if k != "read_at"}


async def test_full_listing_cursor_holds_the_newest_stamp_seen_and_when_the_listing_began(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(5)
    before = datetime.now(UTC).replace(microsecond=0)
    pages = await read_pages(tracked, None)
    after = datetime.now(UTC)
    cursor = pages[-1].cursor
    assert without_read_time(cursor) == {"updated_at": stamp(5), "pk": None}
    assert cursor is not None
    # In the column's own style (here SQLite's CURRENT_TIMESTAMP: seconds, naive UTC).
    read_at = datetime.fromisoformat(str(cursor["read_at"])).replace(tzinfo=UTC)
    assert before <= read_at <= after


async def test_incremental_read_returns_rows_changed_after_the_cursor_and_not_old_ones(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(40)
    cursor = (await read_pages(tracked, None))[-1].cursor
    app_db.execute("UPDATE users SET name = 'Changed', updated_at = ? WHERE id = 3", [stamp(30, minute=5)])
    pages = await read_pages(tracked, cursor)
    # The listing began long after the watermark (10:00:40): no writer can still commit a row
    # stamped before it, so only the rows stamped exactly then are read again (a listing's
    # cursor does not know their keys), not the 2 s of overlap before it.
    assert record_ids(pages) == ["40", "3"]
    assert without_read_time(pages[-1].cursor) == {"updated_at": stamp(30, minute=5), "pk": 3}
    assert not any(page.complete for page in pages)


async def test_a_read_begun_within_the_overlap_of_its_watermark_repeats_the_rows_stamped_in_it(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(40)
    app_db.execute("UPDATE users SET name = 'Changed', updated_at = ? WHERE id = 3", [stamp(30, minute=5)])
    # The read that saw 10:00:40 began at 10:00:41: a writer may still commit a row stamped
    # from 10:00:39 on (2 s of overlap), so rows 39 and 40 are read again, not skipped.
    cursor = {"updated_at": stamp(40), "pk": 40, "read_at": stamp(41)}
    assert record_ids(await read_pages(tracked, cursor)) == ["39", "40", "3"]
    # Begun 2 s or more after it: the watermark holds, strictly after (10:00:40, 40).
    settled = {"updated_at": stamp(40), "pk": 40, "read_at": stamp(42)}
    assert record_ids(await read_pages(tracked, settled)) == ["3"]
    # Without the read's start (a cursor saved by an older version), the window counts back
    # from the watermark, as it always did.
    assert record_ids(await read_pages(tracked, {"updated_at": stamp(40), "pk": 40})) == [
        "38",
        "39",
        "40",
        "3",
    ]


async def test_incremental_read_with_nothing_new_keeps_the_watermark(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(3)
    cursor = (await read_pages(tracked, None))[-1].cursor
    assert cursor is not None
    pages = await read_pages(tracked, cursor)
    assert pages[-1].cursor is not None
    assert pages[-1].cursor["updated_at"] == cursor["updated_at"]


async def test_incremental_read_finding_no_row_yields_one_empty_page_with_the_same_cursor(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(3)
    cursor = {"updated_at": stamp(0, minute=50), "pk": 7}
    pages = await read_pages(tracked, cursor)
    assert [(page.records, page.cursor, page.complete) for page in pages] == [([], cursor, False)]


@pytest.mark.parametrize("overlap", [0, 2])
async def test_resuming_from_every_page_of_a_full_listing_skips_no_row(
    connect: ConnectorFactory, app_db: AppDb, overlap: float
) -> None:
    app_db.add_users(23)
    connector = connect(updated_at="updated_at", page_size=5, overlap_seconds=overlap)
    pages = await read_pages(connector, None)
    assert len(pages) == 5
    for index, page in enumerate(pages):
        assert page.cursor is not None
        seen = set(record_ids(pages[: index + 1])) | set(record_ids(await read_pages(connector, page.cursor)))
        assert seen == live_ids(app_db), f"resuming after page {index + 1}"


async def test_resumed_listing_also_returns_rows_edited_behind_its_position(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(12)
    first = await anext(tracked.read_changes("users", None))
    app_db.execute("UPDATE users SET name = 'Edited', updated_at = ? WHERE id = 1", [stamp(0, minute=9)])
    assert first.cursor is not None
    resumed = await read_pages(tracked, first.cursor)
    edited = [r for page in resumed for r in page.records if r.id == "1"]
    assert edited
    assert edited[-1].fields["name"] == "Edited"


@pytest.mark.parametrize("overlap", [0, 2])
async def test_rows_sharing_one_timestamp_across_pages_are_never_skipped(
    connect: ConnectorFactory, app_db: AppDb, overlap: float
) -> None:
    app_db.add_users(4)
    cursor = (await read_pages(connect(updated_at="updated_at"), None))[-1].cursor
    app_db.add_users(17, start=100, updated_at=stamp(0, minute=30))  # one bulk update, one second
    connector = connect(updated_at="updated_at", page_size=5, overlap_seconds=overlap)
    pages = await read_pages(connector, cursor)
    assert set(record_ids(pages)) >= {str(i) for i in range(100, 117)}
    for index, page in enumerate(pages):
        assert page.cursor is not None
        seen = set(record_ids(pages[: index + 1])) | set(record_ids(await read_pages(connector, page.cursor)))
        assert seen >= {str(i) for i in range(100, 117)}, f"resuming after page {index + 1}"


async def test_row_committed_later_with_the_watermark_timestamp_is_returned(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(5)
    cursor = (await read_pages(tracked, None))[-1].cursor
    app_db.execute(
        "INSERT INTO users (id, email, updated_at) VALUES (3000, 'late@example.com', ?)", [stamp(5)]
    )
    assert "3000" in record_ids(await read_pages(tracked, cursor))


async def test_late_row_with_an_older_timestamp_inside_the_overlap_is_returned(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(10)
    app_db.execute("UPDATE users SET updated_at = ? WHERE id = 10", [stamp(0, minute=1)])
    # The read that saw 10:01:00 began then.
    cursor = {"updated_at": stamp(0, minute=1), "pk": None, "read_at": stamp(0, minute=1)}
    # A slower writer commits a row stamped 1.5 s before the read began, after it.
    app_db.execute(
        "INSERT INTO users (id, email, updated_at) VALUES (500, 'slow@example.com', ?)",
        ["2024-01-01 10:00:58.5"],
    )
    assert "500" in record_ids(await read_pages(tracked, cursor))


async def test_wider_overlap_catches_writers_that_commit_later(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(10)
    app_db.execute("UPDATE users SET updated_at = ? WHERE id = 10", [stamp(0, minute=2)])
    narrow = connect(updated_at="updated_at")
    wide = connect(updated_at="updated_at", overlap_seconds=90)
    # The table was quiet for 20 s when the read began (10:02:20); a writer whose transaction
    # stamped its row at 10:01:30 commits after that read.
    cursor = {"updated_at": stamp(0, minute=2), "pk": 10, "read_at": stamp(20, minute=2)}
    app_db.execute(
        "INSERT INTO users (id, email, updated_at) VALUES (500, 'slow@example.com', ?)", [stamp(30, 1)]
    )
    assert "500" not in record_ids(await read_pages(narrow, cursor))
    assert "500" in record_ids(await read_pages(wide, cursor))


async def test_edit_made_during_a_full_listing_is_read_by_the_next_incremental_read(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(30)
    connector = connect(updated_at="updated_at", page_size=10)
    pages = connector.read_changes("users", None)
    first = await anext(pages)
    assert "1" in [record.id for record in first.records]
    app_db.execute("UPDATE users SET name = 'During', updated_at = ? WHERE id = 1", [stamp(0, minute=40)])
    rest = [page async for page in pages]
    assert rest[-1].complete
    later = await read_pages(connector, rest[-1].cursor)
    assert [r.fields["name"] for page in later for r in page.records if r.id == "1"] == ["During"]


async def test_future_timestamp_does_not_carry_the_cursor_past_later_edits(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(3)
    app_db.execute("UPDATE users SET updated_at = '2999-01-01 00:00:00' WHERE id = 2")
    cursor = (await read_pages(tracked, None))[-1].cursor
    assert cursor is not None
    assert cursor["updated_at"] <= datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    app_db.execute("UPDATE users SET name = 'Now', updated_at = ? WHERE id = 3", [now])
    pages = await read_pages(tracked, cursor)
    assert {"2", "3"} <= set(record_ids(pages))
    last = pages[-1].cursor
    assert last is not None
    assert last["updated_at"] < "2999"


async def test_soft_deleted_rows_come_back_as_tombstones_in_incremental_reads(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(4)
    cursor = (await read_pages(tracked, None))[-1].cursor
    app_db.execute("UPDATE users SET deleted_at = ?, updated_at = ? WHERE id = 2", [stamp(0, 7), stamp(0, 7)])
    records = [record for page in await read_pages(tracked, cursor) for record in page.records]
    tombstones = [record for record in records if record.deleted]
    assert [record.id for record in tombstones] == ["2"]
    assert tombstones[0].fields["deleted_at"] == stamp(0, 7)


async def test_epoch_integer_column_reads_incrementally_with_the_overlap_in_seconds(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.script("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT, changed INTEGER)")
    app_db.executemany(
        "INSERT INTO events (what, changed) VALUES (?, ?)", [("a", 1_700_000_000), ("b", 1_700_000_010)]
    )
    connector = connect(table="events", updated_at="changed")
    listed = (await read_pages(connector, None, obj="events"))[-1].cursor
    assert without_read_time(listed) == {"updated_at": 1_700_000_010, "pk": None}
    assert listed is not None
    assert isinstance(listed["read_at"], int), "the read's start in the column's style: epoch seconds"
    assert abs(listed["read_at"] - datetime.now(UTC).timestamp()) < 600
    # As if that listing had begun at the watermark: 2 s of overlap before it.
    cursor = {**listed, "read_at": 1_700_000_010}
    app_db.execute("INSERT INTO events (what, changed) VALUES ('late', 1700000009)")
    app_db.execute("INSERT INTO events (what, changed) VALUES ('old', 1700000005)")
    pages = await read_pages(connector, cursor, obj="events")
    assert sorted(r.fields["what"] for page in pages for r in page.records) == ["b", "late"]


async def test_rows_without_a_timestamp_are_listed_but_not_read_incrementally(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(2)
    app_db.execute("INSERT INTO users (id, email) VALUES (99, 'nostamp@example.com')")
    pages = await read_pages(tracked, None)
    assert "99" in record_ids(pages)
    assert "99" not in record_ids(await read_pages(tracked, pages[-1].cursor))


async def test_table_without_timestamps_yet_reads_every_stamped_row_next_time(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.execute("INSERT INTO users (id, email) VALUES (1, 'a@example.com')")
    cursor = (await read_pages(tracked, None))[-1].cursor
    assert cursor == {"updated_at": None, "pk": None}
    app_db.execute("UPDATE users SET updated_at = ? WHERE id = 1", [stamp(1)])
    assert record_ids(await read_pages(tracked, cursor)) == ["1"]


async def test_without_updated_at_every_incremental_read_relists_the_table_with_tombstones(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(7)
    app_db.execute("UPDATE users SET deleted_at = 'gone' WHERE id = 7")
    connector = connect(deleted_at="deleted_at", page_size=3)
    listing = await read_pages(connector, None)
    assert record_ids(listing) == ["1", "2", "3", "4", "5", "6"]
    assert all(page.cursor == {"relist": True} for page in listing)
    again = await read_pages(connector, listing[-1].cursor)
    assert record_ids(again) == ["1", "2", "3", "4", "5", "6", "7"]
    assert [r.id for page in again for r in page.records if r.deleted] == ["7"]
    assert [len(page.records) for page in again] == [3, 3, 1]
    # a relisting from the first key to the last is complete: deletes may be inferred from it
    assert [page.complete for page in again] == [False, False, True]


@pytest.mark.parametrize(
    "cursor",
    [
        {"something": "else"},
        {"updated_at": {"nested": 1}, "pk": 3},
        {"updated_at": "yesterday", "pk": 3},
        {"updated_at": stamp(1), "pk": None, "listing_after": None},
    ],
)
async def test_unreadable_cursor_falls_back_to_a_full_relisting(
    tracked: SqlConnector, app_db: AppDb, cursor: dict[str, object]
) -> None:
    app_db.add_users(5)
    pages = await read_pages(tracked, cursor)
    assert record_ids(pages) == ["1", "2", "3", "4", "5"]
    assert pages[-1].complete
    assert not any(page.complete for page in pages[:-1])
    assert without_read_time(pages[-1].cursor) == {"updated_at": stamp(5), "pk": None}


async def test_cursor_round_trips_through_json(tracked: SqlConnector, app_db: AppDb) -> None:
    import json

    app_db.add_users(3)
    pages: list[Page] = await read_pages(tracked, None)
    stored = json.loads(json.dumps(pages[-1].cursor))
    app_db.execute("UPDATE users SET updated_at = ? WHERE id = 1", [stamp(0, 3)])
    assert "1" in record_ids(await read_pages(tracked, stored))
