"""Reading: exports never skip what Zendesk held back, cursors sit on Zendesk's clock, derived fields."""

from __future__ import annotations

from syncd.testing.conformance import last_cursor, latest, live_ids, read_pages
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.zendesk import ZendeskFake
from syncd_zendesk import ZendeskConnector

from .conftest import RETRY, VirtualTime, settings


async def test_an_edit_made_within_the_last_minute_is_exported_by_a_later_read(
    fake: ZendeskFake, connector: ZendeskConnector, clock: FakeClock
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io", user_fields={"plan": "basic"})
    clock.advance(120)
    cursor = last_cursor(await read_pages(connector, "users", None))
    clock.advance(90)
    fake.edit_user(uid, user_fields={"plan": "gold"})
    clock.advance(20)  # the next poll comes 20 s after the edit: inside the minute Zendesk leaves out
    first = await read_pages(connector, "users", cursor)
    early = latest(first, uid)
    assert early is None or early.fields["user_fields"]["plan"] == "basic", "the fake must hold the edit back"
    cursor = last_cursor(first, cursor)
    clock.advance(60)
    second = await read_pages(connector, "users", cursor)
    edited = latest(second, uid)
    assert edited is not None, "an edit held back by the last-minute exclusion was skipped for good"
    assert edited.fields["user_fields"]["plan"] == "gold"


async def test_the_listing_cursor_starts_more_than_a_minute_back_on_zendesks_clock(
    fake: ZendeskFake, clock: FakeClock, vtime: VirtualTime
) -> None:
    # Our own clock is an hour fast: the export must still start before the listing, on Zendesk's clock.
    slow = ZendeskConnector(
        settings(fake),
        retry=RETRY,
        sleep=vtime.sleep,
        clock=vtime,
        now=lambda: clock.now().timestamp() + 3600,
    )
    try:
        uid = fake.seed_user(name="Grace", email="grace@lovelace.io")
        pages = await read_pages(slow, "users", None)
        cursor = last_cursor(pages)
        assert cursor is not None
        assert cursor["start_time"] <= clock.now().timestamp() - 61
        fake.edit_user(uid, name="Grace Hopper")
        clock.advance(61)
        edited = latest(await read_pages(slow, "users", cursor), uid)
        assert edited is not None
        assert edited.fields["name"] == "Grace Hopper"
    finally:
        await slow.aclose()


async def test_a_deleted_user_comes_back_from_the_export_as_a_tombstone(
    fake: ZendeskFake, connector: ZendeskConnector, clock: FakeClock
) -> None:
    gone = fake.seed_user(name="Gone", email="gone@lovelace.io")
    kept = fake.seed_user(name="Kept", email="kept@lovelace.io")
    clock.advance(61)
    cursor = last_cursor(await read_pages(connector, "users", None))
    fake.delete_user(gone)
    clock.advance(61)
    pages = await read_pages(connector, "users", cursor)
    tombstone = latest(pages, gone)
    assert tombstone is not None
    assert tombstone.deleted
    assert kept not in {r.id for p in pages for r in p.records if r.deleted}


async def test_agents_and_admins_are_not_synced_as_customers(
    fake: ZendeskFake, connector: ZendeskConnector, clock: FakeClock
) -> None:
    customer = fake.seed_user(name="Customer", email="customer@lovelace.io")
    agent = fake.seed_user(name="Agent", email="staff@lovelace.io", role="agent")
    clock.advance(61)
    pages = await read_pages(connector, "users", None)
    assert live_ids(pages) == {customer}
    changes = await read_pages(connector, "users", last_cursor(pages))
    assert agent not in {r.id for p in changes for r in p.records}


async def test_users_carry_their_organization_name_resolved_once_and_cached(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    org = fake.seed_organization(name="Lovelace Works")
    ids = [
        fake.seed_user(name=f"P{i}", email=f"p{i}@lovelace.io", organization_id=int(org)) for i in range(3)
    ]
    loner = fake.seed_user(name="Loner", email="loner@lovelace.io")
    records = {r.id: r for r in await connector.get("users", [*ids, loner])}
    assert {records[i].fields["organization"]["name"] for i in ids} == {"Lovelace Works"}
    assert records[ids[0]].fields["organization_id"] == int(org)
    assert records[loner].fields["organization"] == {"name": None}
    await connector.get("users", ids)
    lookups = [h for h in fake.hits if h.path == "/api/v2/organizations/show_many"]
    assert len(lookups) == 1, "organization names must be cached, not fetched for every read"


async def test_custom_user_fields_read_as_user_fields_paths(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io", user_fields={"plan": "gold", "seats": 4})
    (record,) = await connector.get("users", [uid])
    assert record.fields["user_fields"] == {"plan": "gold", "seats": 4}


async def test_find_by_external_id_finds_the_entity_id_stored_there(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io", external_id="ENT-42")
    found = await connector.find("users", "external_id", ["ent-42"])
    assert [r.id for r in found] == [uid]


async def test_find_by_email_ignores_a_match_on_a_secondary_identity(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    fake.edit_user(uid, email="ada.old@lovelace.io")  # becomes a secondary identity
    assert [r.id for r in await connector.find("users", "email", ["ada@lovelace.io"])] == [uid]
    assert await connector.find("users", "email", ["ada.old@lovelace.io"]) == []


async def test_an_export_cursor_zendesk_rejects_falls_back_to_the_saved_start_time(
    fake: ZendeskFake, connector: ZendeskConnector, clock: FakeClock
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    clock.advance(61)
    start = int(clock.now().timestamp()) - 120
    pages = await read_pages(connector, "users", {"export_cursor": "no-longer-valid!", "start_time": start})
    assert latest(pages, uid) is not None
    cursor = last_cursor(pages)
    assert cursor is not None
    assert cursor["export_cursor"] != "no-longer-valid!"
