"""Archives are invisible to search: incremental reads walk the archived listing for tombstones."""

from __future__ import annotations

from datetime import timedelta

from syncd.connector import Cursor, Page
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.hubspot import HubSpotFake
from syncd_hubspot import HubSpotConnector

from .conftest import START, make_connector


async def read_all(connector: HubSpotConnector, cursor: Cursor | None) -> list[Page]:
    return [page async for page in connector.read_changes("contacts", cursor)]


def tombstones(pages: list[Page]) -> list[str]:
    return [r.id for p in pages for r in p.records if r.deleted]


async def test_archive_seen_by_incremental_poll(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    gone = fake.seed({"email": "gone@example.com"})
    kept = fake.seed({"email": "kept@example.com"})
    listing = await read_all(connector, None)
    clock.advance(120)
    fake.archive(gone)
    pages = await read_all(connector, listing[-1].cursor)
    assert tombstones(pages) == [gone]
    (stone,) = [r for p in pages for r in p.records if r.id == gone]
    assert stone.fields["properties"]["email"] == "gone@example.com"
    assert kept not in tombstones(pages)
    archived_reads = [c for c in fake.captured if ("archived", "true") in c.query]
    assert archived_reads, "the incremental read asked for the archived listing"


async def test_reported_archive_drops_out_once_a_newer_archive_moves_the_watermark_past_it(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    gone = fake.seed({"email": "gone@example.com"})
    later = fake.seed({"email": "later@example.com"})
    listing = await read_all(connector, None)
    clock.advance(120)
    fake.archive(gone)
    first = await read_all(connector, listing[-1].cursor)
    assert tombstones(first) == [gone]
    # Inside the overlap the newest archive is reported again (harmless), like any overlap repeat.
    assert tombstones(await read_all(connector, first[-1].cursor)) == [gone]
    clock.advance(600)  # far past the 60 s overlap
    fake.archive(later)
    second = await read_all(connector, first[-1].cursor)
    assert tombstones(second) == [gone, later], "still inside the overlap of the first read's watermark"
    third = await read_all(connector, second[-1].cursor)
    assert tombstones(third) == [later]
    assert first[-1].cursor is not None
    assert third[-1].cursor is not None
    assert third[-1].cursor["archived_since"] > first[-1].cursor["archived_since"]


async def test_old_cursor_without_an_archive_watermark_still_finds_later_archives(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    gone = fake.seed({"email": "gone@example.com"}, updated_at=START - timedelta(hours=1))
    old_cursor = {"since": int(START.timestamp() * 1000)}  # what syncd stored before archives were read
    clock.advance(300)
    fake.archive(gone)
    pages = await read_all(connector, old_cursor)
    assert tombstones(pages) == [gone]
    cursor = pages[-1].cursor
    assert cursor is not None
    assert cursor["archived_since"] > old_cursor["since"]


async def test_archives_before_the_watermark_and_its_overlap_are_not_tombstones(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    long_gone = fake.seed({"email": "old@example.com"})
    fake.archive(long_gone)
    clock.advance(3600)
    cursor = {"since": fake.clock.now_ms(), "archived_since": fake.clock.now_ms()}
    clock.advance(30)
    recent = fake.seed({"email": "recent@example.com"})
    fake.archive(recent)
    assert tombstones(await read_all(connector, cursor)) == [recent]


async def test_archive_watermark_moves_only_after_the_whole_archived_listing_was_read(
    fake: HubSpotFake, clock: FakeClock
) -> None:
    connector = make_connector(fake, page_size=2, search_page_size=2, search_overlap_seconds=0)
    try:
        seeded = [fake.seed({"email": f"p{i}@example.com"}) for i in range(5)]
        start = {"since": fake.clock.now_ms(), "archived_since": fake.clock.now_ms()}
        # Archived in reverse id order: the listing (by id) sees the newest archive first.
        for rid in reversed(seeded):
            clock.advance(10)
            fake.archive(rid)
        pages = await read_all(connector, start)
        assert sorted(tombstones(pages)) == sorted(seeded)
        assert len(pages) >= 3, "five tombstones in pages of two"
        for k, page in enumerate(pages):
            assert page.cursor is not None
            resumed = tombstones(await read_all(connector, page.cursor))
            skipped = set(seeded) - set(tombstones(pages[: k + 1])) - set(resumed)
            assert not skipped, f"resuming from page {k} skips archives {sorted(skipped)}"
            if k < len(pages) - 1:
                assert page.cursor["archived_since"] == start["archived_since"]
    finally:
        await connector.aclose()


async def test_restored_record_comes_back_live_after_its_tombstone(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    rid = fake.seed({"email": "back@example.com"})
    listing = await read_all(connector, None)
    clock.advance(120)
    fake.archive(rid)
    archived = await read_all(connector, listing[-1].cursor)
    assert tombstones(archived) == [rid]
    clock.advance(120)
    fake.restore(rid)
    restored = await read_all(connector, archived[-1].cursor)
    assert [(r.id, r.deleted) for p in restored for r in p.records] == [(rid, False)]


def test_delete_archives_unless_deletes_are_gdpr_deletes(fake: HubSpotFake) -> None:
    archiving, erasing = make_connector(fake), make_connector(fake, archive_mode="gdpr")
    assert archiving.capabilities.archives
    assert not erasing.capabilities.archives
    assert HubSpotConnector.capabilities.archives
    assert archiving.capabilities.tombstones
    assert erasing.capabilities.tombstones
