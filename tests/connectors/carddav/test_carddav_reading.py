"""Reading an address book: listings, sync-collection and ETag deltas, vCard versions, bad cards."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from syncd.testing.conformance import last_cursor, read_pages
from syncd_carddav import CardDavConnector

from . import cards
from .conftest import ConnectorFactory
from .tap import Tap


def seed(dav: httpx.Client, book: str, i: int, *, version: str = "3.0", extra: str = "") -> str:
    make = cards.vcard3 if version == "3.0" else cards.vcard4
    name = f"card-{i}.vcf"
    text = make(
        f"uid-{i}", fn=f"Person {i}", given=f"G{i}", family=f"F{i}", email=f"p{i}@example.org", extra=extra
    )
    cards.put(dav, book, name, text)
    return name


@pytest.mark.parametrize("mode", ["sync-collection", "etag"])
async def test_incremental_read_returns_only_changed_cards_and_deletions_as_tombstones(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str, mode: str
) -> None:
    connector = make_connector(sync_mode=mode, page_size=2)
    names = [seed(dav, book, i) for i in range(5)]
    listing = await read_pages(connector, "contacts", None)
    cursor = last_cursor(listing)
    assert cursor is not None
    assert ("sync_token" in cursor) == (mode == "sync-collection")
    cards.edit(dav, book, names[1], {"note": "edited"})
    cards.remove(dav, book, names[2])
    added = seed(dav, book, 9)
    pages = await read_pages(connector, "contacts", cursor)
    records = [r for p in pages for r in p.records]
    live = {r.id: r for r in records if not r.deleted}
    assert sorted(live) == sorted([names[1], added]), "unchanged cards must not be read again"
    assert live[names[1]].fields["note"] == "edited"
    assert [r.id for r in records if r.deleted] == [names[2]]
    assert not any(p.complete for p in pages), "an incremental read is not a complete listing"
    quiet = await read_pages(connector, "contacts", last_cursor(pages))
    assert [r for p in quiet for r in p.records] == [], "a second read after no change returns nothing"


async def test_invalid_sync_token_falls_back_to_a_complete_full_listing(
    connector: CardDavConnector, dav: httpx.Client, book: str
) -> None:
    names = {seed(dav, book, i) for i in range(3)}
    listing = await read_pages(connector, "contacts", None)
    cursor = last_cursor(listing)
    assert cursor is not None
    assert "sync_token" in cursor
    stale = {**cursor, "sync_token": "http://radicale.org/ns/sync/" + "0" * 64}
    pages = await read_pages(connector, "contacts", stale)
    assert {r.id for p in pages for r in p.records} == names
    assert pages[-1].complete, "the fallback listing is complete, so deletes can be inferred from it"
    fresh = last_cursor(pages)
    assert fresh is not None
    assert fresh["sync_token"] != stale["sync_token"]


async def test_vcard_3_and_4_cards_both_read_into_the_same_fields(
    connector: CardDavConnector, dav: httpx.Client, book: str
) -> None:
    old = seed(dav, book, 3, version="3.0", extra="TEL;TYPE=CELL:+1 555 0100\r\nORG:Acme\\, Inc;Labs\r\n")
    new = seed(
        dav,
        book,
        4,
        version="4.0",
        extra="TEL;VALUE=uri;TYPE=cell:tel:+1-555-0101\r\nEMAIL;TYPE=work:work4@example.org\r\n",
    )
    records = {r.id: r for r in await connector.get("contacts", [old, new])}
    three, four = records[old].fields, records[new].fields
    assert three["fn"] == "Person 3"
    assert four["fn"] == "Person 4"
    assert three["n"]["given"] == "G3"
    assert four["n"]["family"] == "F4"
    assert three["email"] == "p3@example.org"
    assert three["emails"] == [{"value": "p3@example.org", "types": ["internet", "home"]}]
    assert three["tel"] == "+1 555 0100"
    assert three["org"] == "Acme, Inc"
    assert four["email"] == "p4@example.org", "PREF=1 marks the primary email in vCard 4.0"
    assert four["emails"][1] == {"value": "work4@example.org", "types": ["work"]}
    assert four["tel"] == "+1-555-0101", "a tel: URI reads as the bare number"
    assert records[old].version
    assert records[new].version


async def test_malformed_card_comes_back_as_an_error_record_without_failing_its_page(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    # Radicale refuses cards it cannot parse on PUT and hides broken files, so a card broken at
    # the syntax level is put into its answers on the way back, as a less careful server serves it.
    names = [seed(dav, book, i) for i in range(3)]
    tap = Tap()

    def corrupt(request: httpx.Request, body: bytes) -> bytes:
        if request.method != "REPORT" or b"addressbook-multiget" not in request.content:
            return body
        return body.replace(b"FN:Person 1", b"FN Person 1 has no colon")

    tap.rewrite = corrupt
    connector = make_connector(transport=tap)
    pages = await read_pages(connector, "contacts", None)
    records = {r.id: r for p in pages for r in p.records}
    assert set(records) == set(names)
    assert pages[-1].complete
    broken = records[names[1]]
    assert broken.error is not None
    assert "unparsable" in broken.error
    assert broken.fields == {}
    assert "Person" not in broken.error, "no field values in the reason"
    assert "p1@example.org" not in broken.error, "no field values in the reason"
    assert records[names[0]].error is None
    assert records[names[0]].fields["fn"] == "Person 0"
    (again,) = await connector.get("contacts", [names[1]])
    assert again.error is not None


async def test_card_the_server_stores_but_whose_value_cannot_be_decoded_is_an_error_record(
    connector: CardDavConnector, dav: httpx.Client, book: str
) -> None:
    # Radicale stores this card as sent: the syntax is fine, but the FN is base64 of bytes that
    # are not UTF-8 text, so syncd cannot read its value.
    names = [seed(dav, book, i) for i in range(2)]
    broken = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:odd\r\nFN;ENCODING=b:/w==\r\nEMAIL:odd@example.org\r\nEND:VCARD\r\n"
    cards.put(dav, book, "odd.vcf", broken)
    pages = await read_pages(connector, "contacts", None)
    records = {r.id: r for p in pages for r in p.records}
    assert set(records) == {*names, "odd.vcf"}
    assert records["odd.vcf"].error == "unreadable vCard: FN: undecodable base64 value"
    assert records["odd.vcf"].fields == {}
    assert all(records[n].error is None for n in names)
    assert pages[-1].complete
    cards.put(dav, book, "odd.vcf", broken.replace("FN;ENCODING=b:/w==", "FN:Odd"))
    changed = await read_pages(connector, "contacts", last_cursor(pages))
    (fixed,) = [r for p in changed for r in p.records]
    assert (fixed.id, fixed.error, fixed.fields["fn"]) == ("odd.vcf", None, "Odd")


async def test_card_deleted_between_listing_and_fetch_is_simply_absent(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    names = [seed(dav, book, i) for i in range(3)]
    tap = Tap()

    def delete_first(request: httpx.Request) -> None:
        if request.method == "REPORT" and tap.before is not None:
            tap.before = None
            cards.remove(dav, book, names[0])

    tap.before = delete_first
    connector = make_connector(transport=tap, sync_mode="etag")
    pages = await read_pages(connector, "contacts", None)
    assert {r.id for p in pages for r in p.records} == set(names[1:])


async def test_listing_fetches_the_next_page_while_the_engine_takes_in_the_current_one(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    names = [seed(dav, book, i) for i in range(5)]
    tap = Tap()
    connector = make_connector(transport=tap, page_size=2)

    def multigets() -> int:
        return sum(b"addressbook-multiget" in r.content for r in tap.requests)

    pages = connector.read_changes("contacts", None)
    first = await anext(pages)
    assert sorted(r.id for r in first.records) == sorted(names)[:2]
    deadline = asyncio.get_running_loop().time() + 10
    while multigets() < 2:
        assert asyncio.get_running_loop().time() < deadline, "the next page was not fetched ahead"
        await asyncio.sleep(0.01)
    assert multigets() == 2, "one page ahead, not more"
    rest = [page async for page in pages]
    assert sorted(r.id for p in rest for r in p.records) == sorted(names)[2:]
    assert rest[-1].complete


async def test_abandoned_listing_cancels_the_page_fetched_ahead(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    for i in range(6):
        seed(dav, book, i)
    connector = make_connector(page_size=2)
    pages = connector.read_changes("contacts", None)
    await anext(pages)
    await pages.aclose()  # the engine stops reading (an error in ingest, a shutdown)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()] == []
