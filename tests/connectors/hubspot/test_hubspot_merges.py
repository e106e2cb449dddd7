"""Merged records: the survivor names the ids it absorbed, and merged-away ids never read as live."""

from __future__ import annotations

import pytest

from syncd.connector import RemoteRecord, WriteItem
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.hubspot import HubSpotFake
from syncd_hubspot import HubSpotConnector
from syncd_hubspot._records import credit_requested

from .conftest import make_connector


async def read_all(connector: HubSpotConnector, cursor: dict[str, int] | None) -> list[RemoteRecord]:
    return [r async for page in connector.read_changes("contacts", cursor) for r in page.records]


@pytest.fixture
def merged(fake: HubSpotFake) -> tuple[str, str]:
    """Two contacts, the second merged into the first: (survivor id, merged-away id)."""
    primary = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
    other = fake.seed({"email": "ada.l@example.com", "lastname": "Lovelace"})
    fake.merge(primary, other)
    return primary, other


async def test_survivor_names_merged_away_ids_in_replaces_on_every_read(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector, merged: tuple[str, str]
) -> None:
    survivor, gone = merged
    listed = await read_all(connector, None)
    assert [(r.id, r.replaces) for r in listed] == [(survivor, (gone,))]
    clock.advance(10)
    changed = await read_all(connector, {"since": 0})
    assert [(r.id, r.replaces) for r in changed] == [(survivor, (gone,))]
    (got,) = await connector.get("contacts", [survivor])
    assert got.replaces == (gone,)
    (found,) = await connector.find("contacts", "properties.email", ["ada@example.com"])
    assert found.replaces == (gone,)
    assert got.fields["properties"]["lastname"] == "Lovelace", "the merge filled the empty property"


async def test_merged_ids_property_is_asked_for_but_never_synced_as_a_field(
    fake: HubSpotFake, connector: HubSpotConnector, merged: tuple[str, str]
) -> None:
    (got,) = await connector.get("contacts", [merged[0]])
    assert "hs_merged_object_ids" not in got.fields["properties"]
    reads = [c for c in fake.captured if c.path.endswith("/batch/read")]
    assert all("hs_merged_object_ids" in c.json()["properties"] for c in reads)


async def test_merges_accumulate_every_absorbed_id(fake: HubSpotFake, connector: HubSpotConnector) -> None:
    a, b, c = (fake.seed({"email": f"{n}@example.com"}) for n in "abc")
    fake.merge(b, a)
    fake.merge(c, b)
    (got,) = await connector.get("contacts", [c])
    assert sorted(got.replaces) == sorted([a, b])


async def test_get_of_a_merged_away_id_is_absent_when_hubspot_answers_404(
    connector: HubSpotConnector, merged: tuple[str, str]
) -> None:
    assert await connector.get("contacts", [merged[1]]) == []


async def test_get_of_a_merged_away_id_returns_the_survivor_replacing_it(
    fake: HubSpotFake, connector: HubSpotConnector, merged: tuple[str, str]
) -> None:
    fake.resolve_merged_ids = True
    survivor, gone = merged
    (got,) = await connector.get("contacts", [gone])
    assert (got.id, got.replaces) == (survivor, (gone,))
    both = await connector.get("contacts", [gone, survivor])
    assert [(r.id, r.replaces) for r in both] == [(survivor, (gone,))], "one record, however it was asked for"


async def test_merge_that_mints_a_new_id_is_read_as_replacing_both_records(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    fake.merge_mints_new_id = True
    primary = fake.seed({"email": "a@example.com"})
    other = fake.seed({"email": "b@example.com"})
    survivor = fake.merge(primary, other)
    (listed,) = await read_all(connector, None)
    assert listed.id == survivor
    assert sorted(listed.replaces) == sorted([primary, other])


async def test_delete_of_a_merged_away_id_never_archives_the_survivor(
    fake: HubSpotFake, connector: HubSpotConnector, merged: tuple[str, str]
) -> None:
    fake.resolve_merged_ids = True
    survivor, gone = merged
    (result,) = await connector.delete("contacts", [WriteItem("d", {}, id=gone)])
    assert not result.ok
    assert fake.live_ids() == [survivor]


def test_a_lone_unanswered_id_is_credited_to_the_lone_record_nobody_asked_for() -> None:
    survivor = RemoteRecord("700", {})
    plain = RemoteRecord("5", {})
    credited = credit_requested([survivor, plain], ["5", "601"])
    assert [(r.id, r.replaces) for r in credited] == [("700", ("601",)), ("5", ())]
    # Two unanswered ids and one stranger: which is which is unknown, so nothing is guessed.
    assert credit_requested([survivor], ["601", "602"]) == [survivor]


async def test_merge_through_the_api_returns_the_survivor_with_the_merged_values(
    fake: HubSpotFake, merged: tuple[str, str]
) -> None:
    connector = make_connector(fake, properties=["email", "firstname", "lastname", "hs_additional_emails"])
    try:
        (got,) = await connector.get("contacts", [merged[0]])
    finally:
        await connector.aclose()
    assert got.fields["properties"]["hs_additional_emails"] == "ada.l@example.com"
