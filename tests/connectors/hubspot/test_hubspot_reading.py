"""HubSpotConnector reads: full listings, incremental search under index lag, get and find."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from syncd.connector import AuthError, ConfigError, Cursor, Page
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.hubspot import HubSpotFake
from syncd_hubspot import HubSpotConnector

from .conftest import START, make_connector


async def read_all(connector: HubSpotConnector, cursor: Cursor | None, obj: str = "contacts") -> list[Page]:
    return [page async for page in connector.read_changes(obj, cursor)]


def ids(pages: list[Page]) -> list[str]:
    return [r.id for p in pages for r in p.records]


def search_bodies(fake: HubSpotFake) -> list[dict[str, Any]]:
    return [c.json() for c in fake.captured if c.path.endswith("/search")]


@pytest.fixture
async def small_pages(fake: HubSpotFake) -> AsyncIterator[HubSpotConnector]:
    conn = make_connector(fake, page_size=2, search_page_size=2)
    yield conn
    await conn.aclose()


# -- full listing ---------------------------------------------------------------------------------------


async def test_full_listing_follows_after_and_is_complete_only_on_its_last_page(
    fake: HubSpotFake, small_pages: HubSpotConnector, contacts_seeded: list[str]
) -> None:
    pages = await read_all(small_pages, None)
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [p.complete for p in pages] == [False, False, True]
    assert ids(pages) == contacts_seeded
    assert all(p.cursor and "after" in p.cursor for p in pages[:-1])
    assert pages[-1].cursor is not None
    assert "after" not in pages[-1].cursor
    record = pages[0].records[0]
    assert record.fields == {
        "properties": {
            "email": "person0@example.com",
            "firstname": "P0",
            "lastname": None,
            "phone": None,
            "company": None,
            "lifecyclestage": None,
            "syncd_entity_id": None,
        }
    }
    assert record.version == "2026-03-02T09:00:00.000Z"
    assert record.updated_at == START


async def test_full_listing_cursor_is_the_newest_modification_known_when_the_listing_began(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    fake.seed({"email": "old@example.com"}, updated_at=START - timedelta(days=3))
    newest = fake.seed({"email": "new@example.com"}, updated_at=START - timedelta(hours=1))
    pages = await read_all(connector, None)
    assert pages[-1].cursor == {"since": int((START - timedelta(hours=1)).timestamp() * 1000)}
    assert newest in ids(pages)


async def test_empty_account_lists_one_complete_page_and_a_zero_watermark(
    connector: HubSpotConnector,
) -> None:
    pages = await read_all(connector, None)
    assert [(p.records, p.complete, p.cursor) for p in pages] == [([], True, {"since": 0})]


async def test_resumed_listing_continues_after_its_page_and_does_not_claim_completeness(
    small_pages: HubSpotConnector, contacts_seeded: list[str]
) -> None:
    first = await read_all(small_pages, None)
    resumed = await read_all(small_pages, first[0].cursor)
    assert ids(resumed) == contacts_seeded[2:]
    assert not any(p.complete for p in resumed)


# -- incremental reads under search index lag -----------------------------------------------------------


async def lagging_change_scenario(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> tuple[str, Cursor]:
    """X is edited with a 30 s index lag, Y a second later with none: a read then sees only Y."""
    x = fake.seed({"email": "x@example.com"}, updated_at=START - timedelta(hours=3))
    y = fake.seed({"email": "y@example.com"}, updated_at=START - timedelta(hours=2))
    cursor = (await read_all(connector, None))[-1].cursor
    assert cursor is not None
    fake.index_lag_seconds = 30
    fake.edit(x, {"firstname": "Xavier"})
    fake.index_lag_seconds = 0
    clock.advance(1)
    fake.edit(y, {"firstname": "Yvonne"})
    pages = await read_all(connector, cursor)
    assert ids(pages) == [y], "the lagging edit is not visible to search yet"
    cursor = pages[-1].cursor
    assert cursor is not None
    clock.advance(31)
    return x, cursor


async def test_change_inside_the_index_lag_window_is_picked_up_by_the_next_read_thanks_to_the_overlap(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    x, cursor = await lagging_change_scenario(fake, clock, connector)
    pages = await read_all(connector, cursor)
    assert x in ids(pages)
    (record,) = [r for p in pages for r in p.records if r.id == x]
    assert record.fields["properties"]["firstname"] == "Xavier"


async def test_without_an_overlap_window_a_lagging_change_would_be_skipped(
    fake: HubSpotFake, clock: FakeClock
) -> None:
    connector = make_connector(fake, search_overlap_seconds=0)
    try:
        x, cursor = await lagging_change_scenario(fake, clock, connector)
        assert x not in ids(await read_all(connector, cursor))
    finally:
        await connector.aclose()


async def test_record_modified_mid_read_moves_to_the_end_without_shifting_pages_over_another(
    fake: HubSpotFake, clock: FakeClock, small_pages: HubSpotConnector
) -> None:
    seeded = []
    for i in range(5):
        seeded.append(fake.seed({"email": f"p{i}@example.com"}, updated_at=START - timedelta(minutes=10 - i)))
    walk = small_pages.read_changes("contacts", {"since": 0})
    first = await anext(walk)
    assert [r.id for r in first.records] == seeded[:2]
    clock.advance(1)
    fake.edit(seeded[0], {"firstname": "Moved"})
    rest = [page async for page in walk]
    assert set(seeded) <= {r.id for r in first.records} | set(ids(rest)), "an offset walk would skip p2"
    assert ids(rest)[-1] == seeded[0]


async def test_records_sharing_one_timestamp_are_paged_through_without_loss_or_repeats(
    fake: HubSpotFake, small_pages: HubSpotConnector
) -> None:
    same = START - timedelta(minutes=5)
    seeded = [fake.seed({"email": f"tie{i}@example.com"}, updated_at=same) for i in range(7)]
    pages = await read_all(small_pages, {"since": 0})
    assert sorted(ids(pages)) == sorted(seeded)
    assert len(ids(pages)) == len(set(ids(pages)))


async def test_incremental_queries_are_ascending_keyset_pages_that_never_approach_the_search_cap(
    fake: HubSpotFake, clock: FakeClock, small_pages: HubSpotConnector
) -> None:
    for i in range(9):
        fake.seed({"email": f"p{i}@example.com"})
        clock.advance(1)
    pages = await read_all(small_pages, {"since": 0})
    assert len(ids(pages)) == 9
    bodies = search_bodies(fake)
    assert len(bodies) == 5
    for body in bodies:
        assert body["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
        assert int(str(body["after"])) < 2, "each page is a fresh query from the last timestamp seen"
    stamps = [str(r.version) for p in pages for r in p.records]
    assert stamps == sorted(stamps), "oldest first (ISO-8601 Z strings sort chronologically)"
    sinces = [p.cursor["since"] for p in pages if p.cursor is not None]
    assert sinces == sorted(sinces)


async def test_incremental_reads_ask_for_two_hundred_per_search_while_listings_take_one_hundred(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    # Searches have a limit of their own (about 5 a second per account): a read of the
    # changes since the cursor takes HubSpot's largest search page, twice a listing's.
    for i in range(450):
        fake.seed({"email": f"p{i}@example.com"})
        clock.advance(0.01)
    pages = await read_all(connector, {"since": 0})
    assert len(set(ids(pages))) == 450
    assert [b["limit"] for b in search_bodies(fake)] == [200, 200, 200]
    assert [len(p.records) for p in pages if p.records] == [200, 200, 50]
    listing = await read_all(connector, None)
    assert [len(p.records) for p in listing] == [100, 100, 100, 100, 50]


async def test_cursor_never_moves_backwards_and_a_quiet_read_yields_one_empty_page(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    fake.seed({"email": "old@example.com"}, updated_at=START - timedelta(days=1))
    future = {"since": int((START + timedelta(days=1)).timestamp() * 1000)}
    pages = await read_all(connector, future)
    # The archive watermark of a cursor that has none starts at ``since`` and does not move back either.
    assert [(p.records, p.cursor) for p in pages] == [([], {**future, "archived_since": future["since"]})]


async def test_malformed_cursor_is_a_clear_error(connector: HubSpotConnector) -> None:
    with pytest.raises(Exception, match="malformed cursor"):
        await read_all(connector, {"since": "yesterday"})


# -- get and find -------------------------------------------------------------------------------------


async def test_get_reads_in_batches_of_one_hundred_and_omits_missing_and_archived(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    seeded = [fake.seed({"email": f"p{i}@example.com"}) for i in range(150)]
    fake.archive(seeded[0])
    found = await connector.get("contacts", [*seeded, "999999", "not-a-number"])
    assert sorted(r.id for r in found) == sorted(seeded[1:])
    reads = [c for c in fake.captured if c.path.endswith("/batch/read")]
    assert [len(c.json()["inputs"]) for c in reads] == [100, 51]


async def test_find_by_email_sees_a_contact_that_search_cannot_see_yet(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    fake.index_lag_seconds = 60
    rid = fake.seed({"email": "ada@example.com"}, indexed=False)
    found = await connector.find(
        "contacts", "properties.email", ["  ADA@Example.COM\t", "nobody@example.com"]
    )
    assert [r.id for r in found] == [rid]
    assert not any(c.path.endswith("/search") for c in fake.captured)


async def test_find_by_another_property_searches_with_in_and_compares_case_insensitively(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    a = fake.seed({"email": "a@example.com", "company": "Acme"})
    fake.seed({"email": "b@example.com", "company": "Other"})
    found = await connector.find("contacts", "properties.company", ["ACME "])
    assert [r.id for r in found] == [a]
    (body,) = search_bodies(fake)
    assert body["filterGroups"] == [
        {"filters": [{"propertyName": "company", "operator": "IN", "values": ["acme"]}]}
    ]


async def test_find_needs_a_properties_path(connector: HubSpotConnector) -> None:
    with pytest.raises(ConfigError):
        await connector.find("contacts", "email", ["a@example.com"])


# -- configuration, check, companies ------------------------------------------------------------------


async def test_object_types_not_enabled_in_the_settings_are_refused(connector: HubSpotConnector) -> None:
    with pytest.raises(ConfigError, match="not enabled"):
        await connector.get("companies", ["1"])


async def test_check_creates_the_entity_id_property_once(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    await connector.check()
    await connector.check()
    assert "syncd_entity_id" in fake.collections["contacts"].properties
    creations = [c for c in fake.captured if c.method == "POST" and c.path == "/crm/v3/properties/contacts"]
    assert len(creations) == 1
    assert creations[0].json()["groupName"] == "contactinformation"


async def test_check_with_a_wrong_token_raises_auth_error(fake: HubSpotFake) -> None:
    fake.token = "rotated-token"
    connector = make_connector(fake)
    try:
        with pytest.raises(AuthError):
            await connector.check()
    finally:
        await connector.aclose()


async def test_companies_are_listed_and_read_incrementally_on_hs_lastmodifieddate(
    fake: HubSpotFake, clock: FakeClock
) -> None:
    connector = make_connector(fake, objects=["contacts", "companies"], entity_id_property=None)
    try:
        acme = fake.seed({"name": "Acme", "domain": "acme.com"}, object="companies")
        listing = await read_all(connector, None, "companies")
        assert ids(listing) == [acme]
        assert listing[0].records[0].fields == {
            "properties": {"name": "Acme", "domain": "acme.com", "website": None, "phone": None}
        }
        clock.advance(120)
        fake.edit(acme, {"website": "https://acme.com"}, object="companies")
        changes = await read_all(connector, listing[-1].cursor, "companies")
        assert ids(changes) == [acme]
        (last_filter,) = search_bodies(fake)[-1]["filterGroups"][0]["filters"]
        assert last_filter["propertyName"] == "hs_lastmodifieddate"
        found = await connector.find("companies", "properties.domain", ["ACME.com"])
        assert [r.id for r in found] == [acme]
    finally:
        await connector.aclose()


# -- size hints for progress displays -------------------------------------------------------------------


async def test_full_listing_pages_carry_the_total_search_reports(
    fake: HubSpotFake, small_pages: HubSpotConnector, contacts_seeded: list[str]
) -> None:
    pages = await read_all(small_pages, None)
    assert [p.total for p in pages] == [5, 5, 5]


async def test_incremental_pages_hint_the_records_delivered_plus_those_search_still_counts(
    fake: HubSpotFake, small_pages: HubSpotConnector
) -> None:
    same = START - timedelta(minutes=5)
    for i in range(3):
        fake.seed({"email": f"tie{i}@example.com"}, updated_at=same)
    for i in range(3):
        fake.seed({"email": f"late{i}@example.com"}, updated_at=same + timedelta(minutes=i + 1))
    pages = [p for p in await read_all(small_pages, {"since": 0}) if p.records]
    assert {p.total for p in pages} == {6}
    assert sum(len(p.records) for p in pages) == 6
