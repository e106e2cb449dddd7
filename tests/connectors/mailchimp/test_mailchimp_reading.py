"""Reading members: full listings by offset pages, incremental reads by last_changed, tombstones."""

from __future__ import annotations

import pytest

from syncd.connector import ConfigError, Page
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.mailchimp import MailchimpFake, subscriber_hash
from syncd_mailchimp import MailchimpConnector

from .conftest import ConnectorFactory


async def _read(connector: MailchimpConnector, cursor: dict[str, object] | None = None) -> list[Page]:
    return [page async for page in connector.read_changes("members", cursor)]


def _ids(pages: list[Page]) -> list[str]:
    return [r.id for p in pages for r in p.records]


def _seed(fake: MailchimpFake, clock: FakeClock, count: int, *, step: float = 1.0) -> list[str]:
    ids = []
    for i in range(count):
        ids.append(fake.seed(f"member{i}@lovelace.io", merge_fields={"FNAME": f"M{i}"}, tags=["b", "a"]))
        clock.advance(step)
    return ids


async def test_full_listing_walks_every_page_and_only_the_last_page_is_complete(
    fake: MailchimpFake, clock: FakeClock, make_connector: ConnectorFactory
) -> None:
    ids = _seed(fake, clock, 7)
    pages = await _read(make_connector(page_size=3))
    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert [p.complete for p in pages] == [False, False, True]
    assert _ids(pages) == ids, "a full listing is ordered by last_changed, oldest first"
    record = pages[0].records[0]
    assert record.id == subscriber_hash("member0@lovelace.io")
    assert record.version == "2026-01-01T09:00:00+00:00"
    assert record.fields["tags"] == ["a", "b"]
    assert record.fields["merge_fields"]["FNAME"] == "M0"
    assert set(record.fields) == {"email_address", "status", "merge_fields", "tags", "last_changed"}


async def test_full_listing_of_an_empty_audience_is_one_complete_empty_page(
    connector: MailchimpConnector,
) -> None:
    pages = await _read(connector)
    assert [(p.records, p.complete) for p in pages] == [([], True)]


async def test_member_edited_between_pages_is_not_skipped_and_the_listing_is_not_complete(
    fake: MailchimpFake, clock: FakeClock, make_connector: ConnectorFactory
) -> None:
    ids = _seed(fake, clock, 10)
    pages: list[Page] = []
    async for page in make_connector(page_size=3).read_changes("members", None):
        if not pages:
            # Pages 1-2 are read; this moves member 1 to the end, so plain offset paging would
            # now start page 3 at member 7 and skip member 6.
            fake.edit(ids[1], merge_fields={"FNAME": "Edited"})
        pages.append(page)
    assert set(ids) <= set(_ids(pages))
    assert not pages[-1].complete, "a listing that had to restart must not be used to infer deletes"
    edited = [r for p in pages for r in p.records if r.id == ids[1]]
    assert edited[-1].fields["merge_fields"]["FNAME"] == "Edited"


async def test_member_added_while_listing_makes_the_listing_incomplete(
    fake: MailchimpFake, clock: FakeClock, make_connector: ConnectorFactory
) -> None:
    _seed(fake, clock, 7)
    pages: list[Page] = []
    # The listing reads one page ahead (to know which page is last): this lands before page 3.
    async for page in make_connector(page_size=3).read_changes("members", None):
        if not pages:
            fake.seed("late@lovelace.io")
        pages.append(page)
    assert subscriber_hash("late@lovelace.io") in _ids(pages)
    assert not pages[-1].complete, "total_items changed during the walk"


async def test_archived_members_are_absent_from_a_full_listing(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    gone, kept = _seed(fake, clock, 2)
    fake.remove(gone)
    pages = await _read(connector)
    assert _ids(pages) == [kept]
    assert pages[-1].complete


async def test_change_in_the_same_second_as_the_watermark_is_not_missed(
    fake: MailchimpFake, clock: FakeClock, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(overlap_seconds=0)
    _first, second = _seed(fake, clock, 2, step=0)
    cursor = (await _read(connector))[-1].cursor
    # since_last_changed is exclusive and has second precision: without an overlap this edit,
    # stamped with the watermark's own second, would never be read.
    fake.edit(second, merge_fields={"FNAME": "Same second"})
    changes = await _read(connector, cursor)
    assert second in _ids(changes)


async def test_incremental_read_returns_only_recent_changes_and_stops_at_the_overlap(
    fake: MailchimpFake, clock: FakeClock, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(overlap_seconds=60)
    ids = _seed(fake, clock, 3, step=600)
    cursor = (await _read(connector))[-1].cursor
    clock.advance(3600)
    fake.edit(ids[0], merge_fields={"FNAME": "Edited"})
    added = fake.seed("added@lovelace.io")
    changes = await _read(connector, cursor)
    # ids[2] changed within the overlap before the watermark and is read again; ids[1] is older.
    assert _ids(changes) == [ids[2], ids[0], added]
    assert all(p.cursor is not None for p in changes)
    assert not any(p.complete for p in changes), "an incremental read is never a complete listing"


async def test_resuming_an_incremental_read_from_any_page_cursor_skips_nothing(
    fake: MailchimpFake, clock: FakeClock, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(page_size=2, overlap_seconds=1)
    ids = _seed(fake, clock, 7, step=100)
    cursor = (await _read(connector))[-1].cursor
    clock.advance(1000)
    for member_id in ids:
        fake.edit(member_id, merge_fields={"LNAME": "Edited"})
        clock.advance(10)
    changes = await _read(connector, cursor)
    assert _ids(changes)[: len(ids)] == ids
    for k, page in enumerate(changes):
        before = set(_ids(changes[: k + 1]))
        after = set(_ids(await _read(connector, page.cursor)))
        assert set(ids) <= before | after, f"resuming from page {k} skips {set(ids) - before - after}"


async def test_member_archived_after_the_cursor_comes_back_as_a_tombstone(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    long_ago = fake.seed("archived-long-ago@lovelace.io")
    fake.remove(long_ago)
    clock.advance(1000)
    lately = fake.seed("archived-lately@lovelace.io")
    fake.remove(lately)
    clock.advance(10_000)
    gone, kept = _seed(fake, clock, 2)
    cursor = (await _read(connector))[-1].cursor
    clock.advance(10)
    fake.remove(gone)
    changes = await _read(connector, cursor)
    tombstones = [r.id for p in changes for r in p.records if r.deleted]
    # The newest archive before the listing is repeated by the overlap; older ones are not.
    assert tombstones == [lately, gone]
    assert all(not r.deleted for p in changes for r in p.records if r.id == kept)


async def test_cursor_of_another_audience_is_refused(connector: MailchimpConnector) -> None:
    with pytest.raises(ConfigError, match="belongs to audience 'other'"):
        await _read(connector, {"list_id": "other", "since": None, "archived_since": None})


async def test_the_largest_page_size_never_asks_for_more_than_1000_members(
    fake: MailchimpFake, make_connector: ConnectorFactory
) -> None:
    for i in range(1001):
        fake.seed(f"bulk{i}@lovelace.io")
    pages = await _read(make_connector(page_size=1000))
    assert len(set(_ids(pages))) == 1001
    assert pages[-1].complete
    counts = [int(q.split("count=")[1].split("&")[0]) for m, q in fake.requests if "count=" in q]
    assert max(counts) <= 1000


async def test_bodiless_throttling_during_a_listing_is_retried(
    fake: MailchimpFake, clock: FakeClock, make_connector: ConnectorFactory
) -> None:
    ids = _seed(fake, clock, 5)
    fake.throttle_styles = ["empty", "403-empty"]
    fake.inject("429", times=4)
    pages = await _read(make_connector(page_size=2))
    assert _ids(pages) == ids
    assert pages[-1].complete


async def test_get_returns_present_members_and_tombstones_and_omits_unknown_ids(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    live, archived = _seed(fake, clock, 2)
    fake.remove(archived)
    records = await connector.get("members", [live, subscriber_hash("nobody@lovelace.io"), archived, live])
    assert [(r.id, r.deleted) for r in records] == [(live, False), (archived, True)]


async def test_find_by_email_ignores_case_and_spaces_and_skips_archived_members(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    live, archived = _seed(fake, clock, 2)
    fake.remove(archived)
    found = await connector.find(
        "members", "email_address", ["  MEMBER0@Lovelace.io\t", "member1@lovelace.io", "x@lovelace.io", " "]
    )
    assert [r.id for r in found] == [live]
    with pytest.raises(ConfigError):
        await connector.find("members", "merge_fields.FNAME", ["M0"])


async def test_listing_pages_carry_total_items_as_a_size_hint(
    fake: MailchimpFake, clock: FakeClock, make_connector: ConnectorFactory
) -> None:
    ids = _seed(fake, clock, 7)
    connector = make_connector(page_size=3)
    pages = await _read(connector)
    assert [p.total for p in pages] == [7, 7, 7]
    clock.advance(3600)
    fake.edit(ids[0], merge_fields={"FNAME": "Edited"})
    changes = [p for p in await _read(connector, pages[-1].cursor) if p.records]
    assert changes
    assert all(p.total is not None and p.total >= sum(len(c.records) for c in changes) for p in changes)


async def test_a_re_read_of_many_members_reads_the_audiences_pages_not_one_get_each(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    ids = _seed(fake, clock, 1500)
    fake.remove(ids[7])  # archived: not on the pages, still read (as a tombstone)
    wanted = [*ids[:600], subscriber_hash("nobody@lovelace.io")]
    records = await connector.get("members", wanted)
    by_id = {r.id: r for r in records}
    assert set(by_id) == set(ids[:600])
    assert by_id[ids[7]].deleted
    assert by_id[ids[3]].fields["merge_fields"]["FNAME"] == "M3"
    gets = [path for method, path in fake.requests if method == "GET"]
    assert len(gets) == 2 + 2, "two pages of 1000, then the archived and the unknown id alone"


async def test_a_re_read_of_a_few_members_in_a_large_audience_gets_them_one_by_one(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    ids = _seed(fake, clock, 13_000, step=0.01)  # 13 pages cost more than 50 GETs
    wanted = ids[-50:]
    records = await connector.get("members", wanted)
    assert {r.id for r in records} == set(wanted)
    gets = [path for method, path in fake.requests if method == "GET"]
    assert len(gets) == 1 + 50, "one page to learn the size (none of them on it), then one GET each"
