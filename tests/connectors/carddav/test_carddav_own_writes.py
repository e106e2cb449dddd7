"""Moving the cursor past the connector's own writes, so a quiet resync does not read them back.

After a cycle's writes, the next read would fetch every card syncd just wrote only for the engine to
find echoes. ``cursor_after_writes`` moves the cursor past them, but never past a change that is
not exactly one of our writes (another client's edit, before or after ours).
"""

from __future__ import annotations

import httpx
import pytest

from syncd.connector import ConnectorError, Cursor, WriteItem
from syncd.testing.conformance import last_cursor, read_pages
from syncd_carddav import CardDavConnector

from . import cards
from .conftest import ConnectorFactory
from .tap import Tap

MODES = ["sync-collection", "etag"]


def seed(dav: httpx.Client, book: str, i: int) -> str:
    name = f"card-{i}.vcf"
    text = cards.vcard3(
        f"uid-{i}", fn=f"Person {i}", given=f"G{i}", family=f"F{i}", email=f"p{i}@example.org"
    )
    cards.put(dav, book, name, text)
    return name


def drop_book(dav: httpx.Client, book: str) -> None:
    """Delete the whole address book, as another client could."""
    assert dav.request("DELETE", book).status_code in (200, 204)


async def listed(connector: CardDavConnector) -> Cursor:
    cursor = last_cursor(await read_pages(connector, "contacts", None))
    assert cursor is not None
    return cursor


async def write_some(connector: CardDavConnector, seeded: list[str]) -> list[str]:
    """Two creates, an update and a delete through the connector; the created cards' names."""
    created = await connector.create(
        "contacts",
        [
            WriteItem(key="new-1", fields={"email": "new1@example.org", "fn": "New One"}),
            WriteItem(key="new-2", fields={"email": "new2@example.org", "fn": "New Two"}),
        ],
    )
    updated = await connector.update(
        "contacts", [WriteItem(key="u", id=seeded[0], fields={"note": "by syncd"})]
    )
    deleted = await connector.delete("contacts", [WriteItem(key="d", id=seeded[1], fields={})])
    assert all(r.ok for r in [*created, *updated, *deleted])
    return [r.record.id for r in created if r.record is not None]


@pytest.mark.parametrize("mode", MODES)
async def test_cursor_moves_past_own_writes_and_the_next_read_fetches_no_card(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str, mode: str
) -> None:
    tap = Tap()
    connector = make_connector(sync_mode=mode, transport=tap)
    seeded = [seed(dav, book, i) for i in range(3)]
    cursor = await listed(connector)
    await write_some(connector, seeded)
    moved = await connector.cursor_after_writes("contacts", cursor)
    assert moved is not None
    assert moved != cursor
    tap.requests.clear()
    pages = await read_pages(connector, "contacts", moved)
    assert [r for p in pages for r in p.records] == [], "our own writes must not be read back"
    assert b"addressbook-multiget" not in b"".join(r.content for r in tap.requests), "no card fetched"


@pytest.mark.parametrize("mode", MODES)
async def test_another_clients_edit_after_the_cursor_is_still_read(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str, mode: str
) -> None:
    connector = make_connector(sync_mode=mode)
    seeded = [seed(dav, book, i) for i in range(3)]
    cursor = await listed(connector)
    await write_some(connector, seeded)
    cards.edit(dav, book, seeded[2], {"note": "edited by a person"})
    moved = await connector.cursor_after_writes("contacts", cursor)
    if mode == "sync-collection":
        assert moved is None, "a change that is not ours keeps the sync token"
    pages = await read_pages(connector, "contacts", moved or cursor)
    by_id = {r.id: r for p in pages for r in p.records}
    assert by_id[seeded[2]].fields["note"] == "edited by a person"


@pytest.mark.parametrize("mode", MODES)
async def test_a_card_edited_by_someone_right_after_our_write_is_still_read(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str, mode: str
) -> None:
    connector = make_connector(sync_mode=mode)
    seeded = [seed(dav, book, i) for i in range(3)]
    cursor = await listed(connector)
    created = await write_some(connector, seeded)
    cards.edit(dav, book, created[0], {"note": "changed after syncd wrote it"})
    moved = await connector.cursor_after_writes("contacts", cursor)
    if mode == "sync-collection":
        assert moved is None
    pages = await read_pages(connector, "contacts", moved or cursor)
    by_id = {r.id: r for p in pages for r in p.records}
    assert by_id[created[0]].fields["note"] == "changed after syncd wrote it"


async def test_without_writes_the_cursor_is_kept_and_nothing_is_asked(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    tap = Tap()
    connector = make_connector(transport=tap)
    seed(dav, book, 1)
    cursor = await listed(connector)
    tap.requests.clear()
    assert await connector.cursor_after_writes("contacts", cursor) is None
    assert tap.requests == []


async def test_writes_are_forgotten_once_offered_so_a_later_foreign_change_is_not_skipped(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    connector = make_connector()
    seeded = [seed(dav, book, i) for i in range(3)]
    cursor = await listed(connector)
    await write_some(connector, seeded)
    moved = await connector.cursor_after_writes("contacts", cursor)
    assert moved is not None
    cards.edit(dav, book, seeded[0], {"note": "a person's later edit"})
    assert await connector.cursor_after_writes("contacts", moved) is None
    pages = await read_pages(connector, "contacts", moved)
    assert [r.fields["note"] for p in pages for r in p.records] == ["a person's later edit"]


async def test_a_cursor_of_another_address_book_is_kept(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    connector = make_connector()
    seeded = [seed(dav, book, i) for i in range(3)]
    cursor = await listed(connector)
    await write_some(connector, seeded)
    assert await connector.cursor_after_writes("contacts", {**cursor, "collection": "/other/book/"}) is None


async def test_a_quiet_read_by_a_new_connector_of_the_book_url_is_one_request(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    seed(dav, book, 1)
    cursor = await listed(make_connector())
    tap = Tap()
    fresh = make_connector(transport=tap)  # a new process: nothing discovered yet
    pages = await read_pages(fresh, "contacts", cursor)
    assert [r for p in pages for r in p.records] == []
    assert tap.methods() == ["REPORT"], "the book named by the URL and the cursor needs no discovery"


async def test_a_book_gone_since_the_cursor_is_an_error_not_an_empty_read(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    seed(dav, book, 1)
    cursor = await listed(make_connector())
    drop_book(dav, book)
    with pytest.raises(ConnectorError):
        await read_pages(make_connector(), "contacts", cursor)


async def test_a_read_forgets_the_writes_made_before_it(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    # A daemon polls and writes without ever asking for cursor_after_writes: what the connector
    # remembers of its writes must not grow from one poll to the next.
    connector = make_connector()
    seeded = [seed(dav, book, i) for i in range(3)]
    cursor = await listed(connector)
    await write_some(connector, seeded)
    pages = await read_pages(connector, "contacts", cursor)
    assert pages
    assert await connector.cursor_after_writes("contacts", last_cursor(pages) or cursor) is None
