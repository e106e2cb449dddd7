"""Looking cards up by key after a listing: answered from what the connector read, after catching up
with the server in one request, so the engine's lookup before creates costs no server-side scan."""

from __future__ import annotations

import httpx
import pytest

from syncd.connector import WriteItem
from syncd.testing.conformance import last_cursor, read_pages

from . import cards
from .conftest import ConnectorFactory
from .tap import Tap


def card(name: str, email: str) -> str:
    return cards.vcard3(name, fn=name.upper(), given=name, family="Lookup", email=email)


def multigets(tap: Tap) -> list[bytes]:
    return [r.content for r in tap.requests if b"addressbook-multiget" in r.content]


@pytest.mark.parametrize("mode", ["sync-collection", "etag"])
async def test_find_after_a_listing_sees_other_clients_changes_without_a_server_query(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str, mode: str
) -> None:
    for name in ("a", "b"):
        cards.put(dav, book, f"{name}.vcf", card(name, f"{name}@example.org"))
    tap = Tap()
    connector = make_connector(transport=tap, sync_mode=mode)
    await read_pages(connector, "contacts", None)
    (made,) = await connector.create("contacts", [WriteItem(key="k1", fields={"email": "c@example.org"})])
    assert made.record is not None
    # Another client, after the listing: adds a card, removes one, and changes one's email.
    cards.put(dav, book, "d.vcf", card("d", "d@example.org"))
    cards.remove(dav, book, "b.vcf")
    cards.put(dav, book, "a.vcf", card("a", "a.new@example.org"))
    tap.requests.clear()

    wanted = [
        "a@example.org",
        "A.New@example.org",
        "b@example.org",
        " c@example.org",
        "d@example.org",
        "x@y.z",
    ]
    found = await connector.find("contacts", "email", wanted)

    assert sorted(r.id for r in found) == sorted(["a.vcf", made.record.id, "d.vcf"])
    assert not any(b"addressbook-query" in r.content for r in tap.requests), "no server-side scan"
    first = tap.requests[0]
    if mode == "sync-collection":
        assert b"sync-collection" in first.content, "catching up is one sync-collection report"
    else:
        assert first.method == "PROPFIND", "catching up is one ETag listing"
    caught_up = multigets(tap)[0]
    assert b"d.vcf" in caught_up
    assert b"a.vcf" in caught_up
    assert made.record.id.encode() not in caught_up, "the connector's own write is not fetched again"
    # A second lookup with nothing changed fetches only the matching cards.
    tap.requests.clear()
    (again,) = await connector.find("contacts", "email", ["d@example.org"])
    assert again.id == "d.vcf"
    assert len(multigets(tap)) == 1


async def test_find_asks_the_server_again_once_a_read_started_elsewhere_than_the_index(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    cards.put(dav, book, "a.vcf", card("a", "a@example.org"))
    tap = Tap()
    connector = make_connector(transport=tap)
    listing = await read_pages(connector, "contacts", None)
    first = last_cursor(listing)
    cards.put(dav, book, "b.vcf", card("b", "b@example.org"))
    await read_pages(connector, "contacts", first)
    # Reading from the older cursor again: the index cannot tell what it missed, so it is dropped.
    await read_pages(connector, "contacts", first)
    tap.requests.clear()
    found = await connector.find("contacts", "email", ["b@example.org"])
    assert [r.id for r in found] == ["b.vcf"]
    assert any(b"addressbook-query" in r.content for r in tap.requests)
