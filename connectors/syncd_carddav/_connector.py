"""The CardDAV connector: the cards of one address book, synced as ``contacts``.

Identity: a card's id is its resource name inside the address book (``<uid>.vcf`` for cards
syncd creates, whatever name other clients chose for theirs). The name is what the server
addresses, it never changes while the card lives, and it does not depend on where the address
book is mounted. Its version is the ETag.

Reading: a full listing asks for the ETag of every card (PROPFIND, depth 1) and fetches the cards
with addressbook-multiget, one page per batch. Incremental reads use RFC 6578 sync-collection
when the server offers it (the cursor holds the sync token; deleted cards come back as
tombstones); otherwise the cursor holds every card's ETag and a new listing is compared with
it. A sync token the server no longer accepts restarts with a full listing.

Looking up by key (``find``): answered from the cards the connector has read and written, caught
up with the server in one request, once it has listed the book; with a server-side
addressbook-query before that (see ``_index``). Unreadable cards come back as records with
``error`` set, for the engine to quarantine.

Writing: see ``_writes``. Webhooks: CardDAV has none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, Unpack

import structlog

from syncd.connector import (
    AuthError,
    Capabilities,
    ConfigError,
    ConnectorError,
    Cursor,
    ObjectType,
    Page,
    RemoteRecord,
    WriteItem,
    WriteResult,
)
from syncd.connector.http import HttpConnector, HttpSeams

from ._client import DavClient, discover, member_href, member_name
from ._config import CardDavConfig
from ._dav import (
    ADDRESS_DATA,
    COLLECTION,
    GETETAG,
    RESOURCETYPE,
    SUPPORTED_REPORT_SET,
    SYNC_TOKEN,
    Multistatus,
    addressbook_multiget,
    addressbook_query,
    same_path,
    sync_collection,
    tag,
)
from ._errors import InvalidSyncToken, ReportNotSupported, classify
from ._index import BookIndex
from ._vcard import Card, VCardError, iter_field_paths, parse_rev
from ._writes import CardWriter

T = TypeVar("T")

OBJECT = "contacts"
CURSOR_VERSION = 1
#: Values per addressbook-query REPORT in ``find`` (one prop-filter each).
_FIND_BATCH = 50
#: find() paths and the vCard property a server-side query matches on.
_FIND_PROPERTIES = {"email": "EMAIL", "emails": "EMAIL", "uid": "UID"}

log = structlog.get_logger("syncd.connector.carddav")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CardDavConnector(HttpConnector[CardDavConfig]):
    """Contacts of one CardDAV address book (vCard 3.0 and 4.0)."""

    name: ClassVar[str] = "carddav"
    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        incremental=True,
        full_listing=True,
        webhooks=False,
        create=True,
        update=True,
        delete=True,
        conditional_writes=True,
        tombstones=True,
        batch_size=100,
        requests_per_second=None,
    )
    objects: ClassVar[tuple[ObjectType, ...]] = (
        ObjectType(OBJECT, primary_key="id", fields=tuple(iter_field_paths()), natural_keys=("email",)),
    )

    def __init__(self, config: CardDavConfig, *, app: str | None = None, **seams: Unpack[HttpSeams]) -> None:
        super().__init__(config, app=app, **seams)
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
        elif config.username is not None and config.password is not None:
            auth = (config.username, config.password.get_secret_value())
        self._http = self.http_client(
            base_url=config.origin,
            auth=auth,
            headers=headers,
            timeout=config.timeout_seconds,
            classify=classify,
            max_concurrency=config.concurrency,
        )
        self._dav = DavClient(self._http)
        self._collection: str | None = None
        #: Cards known from this connector's own reads and writes (see ``_index``); None until a
        #: complete listing, and again whenever it cannot be kept exact.
        self._index: BookIndex | None = None
        #: This connector's own successful writes since its last read (or since the cursor was
        #: moved past them): card name -> the ETag the server returned (None for a delete).
        self._own: dict[str, str | None] = {}
        self._writer = CardWriter(self._dav, config, self._fetch_cards, self._record)
        self._log = log.bind(app=self.app)

    # -- lifecycle -----------------------------------------------------------------------------

    async def collection(self) -> str:
        """The address book's path (discovered once, then remembered)."""
        if self._collection is None:
            self._collection = await discover(self._dav, self.config)
            self._writer.collection = self._collection
        return self._collection

    async def check(self) -> None:
        path = await self.collection()
        await self._dav.propfind(path, [RESOURCETYPE], depth="0")

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reading helpers -----------------------------------------------------------------------

    def _record(self, name: str, etag: str | None, card: Card) -> RemoteRecord:
        fields = card.fields()
        return RemoteRecord(id=name, fields=fields, version=etag, updated_at=parse_rev(fields["rev"]))

    def _cards(self, collection: str, found: Multistatus) -> dict[str, tuple[str | None, Card] | VCardError]:
        """The cards of a multiget/query answer by name; unreadable ones as their error."""
        cards: dict[str, tuple[str | None, Card] | VCardError] = {}
        for response in found.responses:
            name = member_name(collection, response.href)
            if name is None or response.missing:
                continue
            data = response.text(ADDRESS_DATA)
            if data is None:
                cards[name] = VCardError("the server sent no address-data")
                continue
            try:
                card = Card.parse(data)
                card.fields()  # every mapped value must decode too (base64 text, for one)
            except VCardError as exc:
                cards[name] = exc
                continue
            cards[name] = (response.text(GETETAG), card)
        return cards

    async def _fetch_cards(self, names: Sequence[str]) -> dict[str, tuple[str | None, Card] | VCardError]:
        """Cards by name through addressbook-multiget, batches in parallel; missing names are absent."""
        collection = await self.collection()
        unique = list(dict.fromkeys(names))

        async def batch(part: Sequence[str]) -> Multistatus:
            body = addressbook_multiget([member_href(collection, n) for n in part])
            return await self._dav.multistatus("REPORT", collection, body, depth="1")

        answers = await _gather(batch(part) for part in _chunks(unique, self.config.page_size))
        cards: dict[str, tuple[str | None, Card] | VCardError] = {}
        for answer in answers:
            cards.update(self._cards(collection, answer))
        return cards

    def _readable(self, cards: Mapping[str, tuple[str | None, Card] | VCardError]) -> list[RemoteRecord]:
        """Records of the cards; an unreadable card comes back as a record with ``error`` set.

        One broken card must not fail its page: the engine quarantines it (a dead letter naming the
        card and the reason, never its values) and syncs the rest. The next change of the card
        is read again like any other, and a readable version releases it.
        """
        records: list[RemoteRecord] = []
        for name, found in cards.items():
            if isinstance(found, VCardError):
                records.append(RemoteRecord(id=name, fields={}, error=f"unreadable vCard: {found}"))
                continue
            records.append(self._record(name, *found))
        return records

    async def _members(self, collection: str) -> dict[str, str]:
        """Every card's name and ETag (PROPFIND depth 1)."""
        found = await self._dav.propfind(collection, [RESOURCETYPE, GETETAG], depth="1")
        members: dict[str, str] = {}
        for response in found.responses:
            name = member_name(collection, response.href)
            if name is None or response.missing or response.has_type(COLLECTION):
                continue
            members[name] = response.text(GETETAG) or ""
        return members

    async def _sync_token(self, collection: str) -> str | None:
        """The collection's current sync token, when the server does sync-collection (and we use it)."""
        if self.config.sync_mode == "etag":
            return None
        found = await self._dav.propfind(collection, [SYNC_TOKEN, SUPPORTED_REPORT_SET], depth="0")
        here = next((r for r in found.responses if same_path(r.href, collection)), None)
        if here is None:
            return None
        token = (here.text(SYNC_TOKEN) or "").strip() or None
        offered = tag("DAV:", "sync-collection") in here.reports()
        if self.config.sync_mode == "auto" and not offered:
            return None
        return token

    def _cursor(self, collection: str, token: str | None, members: Mapping[str, str]) -> Cursor:
        if token is not None:
            return {"v": CURSOR_VERSION, "collection": collection, "sync_token": token}
        return {"v": CURSOR_VERSION, "collection": collection, "etags": dict(sorted(members.items()))}

    async def _pages(
        self,
        names: Sequence[str],
        tombstones: Sequence[str],
        *,
        between: Cursor | None,
        final: Cursor,
        complete: bool,
    ) -> AsyncGenerator[Page, None]:
        """Fetch ``names`` page by page; tombstones ride on the first page, the final cursor on the last.

        The next page is fetched while the engine takes in the current one, so the server's
        work and ours overlap (one multiget ahead at most: memory stays at two pages).
        """
        batches = list(_chunks(sorted(names), self.config.page_size)) or [[]]

        async def fetch(batch: Sequence[str]) -> dict[str, tuple[str | None, Card] | VCardError]:
            return await self._fetch_cards(batch) if batch else {}

        ahead: asyncio.Task[dict[str, tuple[str | None, Card] | VCardError]] | None = None
        try:
            current = asyncio.ensure_future(fetch(batches[0]))
            for index in range(len(batches)):
                ahead = current
                cards = await current
                last = index == len(batches) - 1
                if not last:
                    ahead = current = asyncio.ensure_future(fetch(batches[index + 1]))
                records = self._readable(cards)
                if index == 0:
                    records += [RemoteRecord(id=n, fields={}, deleted=True) for n in sorted(tombstones)]
                yield Page(records, final if last else between, complete=complete and last)
        finally:
            if ahead is not None and not ahead.done():
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectorError):
                    await ahead

    # -- reading -------------------------------------------------------------------------------

    def _known_book(self, cursor: Cursor | None) -> None:
        """Take the address book from ``cursor`` when ``url`` names that very book.

        The cursor was saved by a read of the book this ``url`` led to, so asking the server
        again which book it is (a PROPFIND per run) can be skipped: a quiet resync is then one
        request per book. A URL that needs discovery (a principal, a home) is always discovered.
        """
        book = cursor.get("collection") if cursor is not None else None
        if (
            self._collection is None
            and isinstance(book, str)
            and cursor is not None
            and cursor.get("v") == CURSOR_VERSION
            and same_path(book, self.config.start_path)
        ):
            self._collection = self._writer.collection = book

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        self.object_type(obj)
        # Writes made before this read are read back by it (or were before its cursor): only the
        # writes after it can be skipped. Forgetting them here also bounds what a daemon, which
        # never asks for cursor_after_writes, keeps between two polls.
        self._own.clear()
        self._known_book(cursor)
        collection = await self.collection()
        if cursor is None:
            async with contextlib.aclosing(self._full_listing(collection)) as pages:
                async for page in pages:
                    yield page
            return
        if cursor.get("v") != CURSOR_VERSION or cursor.get("collection") != collection:
            self._log.warning("carddav.cursor_replaced", reason="cursor of another address book or format")
            async with contextlib.aclosing(self._full_listing(collection)) as pages:
                async for page in pages:
                    yield page
            return
        token = cursor.get("sync_token")
        index = self._index
        etags: Mapping[str, str | None]
        if isinstance(token, str):
            try:
                etags, removed, new_token = await self._sync(collection, token)
            except InvalidSyncToken:
                self._log.info("carddav.sync_token_expired", action="full listing")
                async with contextlib.aclosing(self._full_listing(collection)) as pages:
                    async for page in pages:
                        yield page
                return
            changed = sorted(etags)
            final = self._cursor(collection, new_token, {})
            # The index follows only a read that starts where it stands (else it could miss changes).
            if index is not None and index.token != token:
                index = self._index = None
        else:
            old = cursor.get("etags")
            if not isinstance(old, dict):
                self._log.warning("carddav.cursor_replaced", reason="cursor without sync token or etags")
                async with contextlib.aclosing(self._full_listing(collection)) as pages:
                    async for page in pages:
                        yield page
                return
            members = await self._members(collection)
            etags = members
            changed = [n for n, etag in members.items() if old.get(n) != etag]
            removed = [n for n in old if n not in members]
            final = self._cursor(collection, None, members)
        async with contextlib.aclosing(
            self._pages(changed, removed, between=cursor, final=final, complete=False)
        ) as pages:
            async for page in pages:
                if index is not None and index is self._index:
                    self._enter(index, page.records, etags)
                    if page.cursor is final:
                        index.token = final.get("sync_token")
                yield page

    async def _full_listing(self, collection: str) -> AsyncGenerator[Page, None]:
        # The token is taken before the listing: a change made while we list is read again next time.
        token = await self._sync_token(collection)
        members = await self._members(collection)
        final = self._cursor(collection, token, members)
        index = BookIndex(collection, token)
        self._index = None
        async with contextlib.aclosing(
            self._pages(list(members), [], between=None, final=final, complete=True)
        ) as pages:
            async for page in pages:
                self._enter(index, page.records, members)
                if page.complete:
                    self._index = index
                yield page

    def _enter(
        self, index: BookIndex, records: Sequence[RemoteRecord], etags: Mapping[str, str | None]
    ) -> None:
        """Record what a read returned in ``index`` (unreadable cards with no keys)."""
        for record in records:
            if record.deleted:
                index.drop([record.id])
            else:
                index.put(record.id, record.version or etags.get(record.id), record.fields)

    async def _sync(self, collection: str, token: str) -> tuple[dict[str, str | None], list[str], str]:
        """Cards changed (name -> ETag) and removed since ``token`` (RFC 6578), and the next token."""
        changed: dict[str, str | None] = {}
        removed: set[str] = set()
        while True:
            body = sync_collection(token, [GETETAG])
            found = await self._dav.multistatus("REPORT", collection, body, depth="0")
            truncated = False
            for response in found.responses:
                if same_path(response.href, collection):
                    truncated = response.status == 507
                    continue
                name = member_name(collection, response.href)
                if name is None:
                    continue
                if response.missing:
                    removed.add(name)
                    changed.pop(name, None)
                else:
                    changed[name] = response.text(GETETAG)
                    removed.discard(name)
            if found.sync_token is None or found.sync_token == token or not truncated:
                return dict(sorted(changed.items())), sorted(removed), found.sync_token or token
            token = found.sync_token

    async def cursor_after_writes(self, obj: str, cursor: Cursor) -> Cursor | None:
        """Move ``cursor`` past the connector's own writes when they are all that changed.

        With a sync token: one sync-collection request since the cursor's token. If every card it
        reports changed has exactly the ETag one of our writes returned, and every card it reports
        removed is one we deleted, the new token is returned (the index, when it stood at the old
        token, moves with it). Anything else (another client's edit, a card without an ETag)
        keeps the cursor, and the next read fetches those changes as usual.

        With ETags only: the cursor's ETags of the cards we wrote become the ETags our writes
        returned, without a request. A card changed by someone after our write no longer has
        that ETag and is read next time; every other card keeps the ETag it was read with.
        """
        self.object_type(obj)
        own, self._own = self._own, {}
        if not own or cursor.get("v") != CURSOR_VERSION:
            return None
        collection = await self.collection()
        if cursor.get("collection") != collection:
            return None
        token = cursor.get("sync_token")
        if isinstance(token, str):
            try:
                changed, removed, new_token = await self._sync(collection, token)
            except InvalidSyncToken:
                return None
            if new_token == token:
                return None
            ours = all(etag is not None and own.get(name, "") == etag for name, etag in changed.items())
            ours = ours and all(name in own and own[name] is None for name in removed)
            if not ours:
                return None
            index = self._index
            if index is not None and index.token == token:
                index.drop(removed)
                index.token = new_token
            return self._cursor(collection, new_token, {})
        etags = cursor.get("etags")
        if not isinstance(etags, dict):
            return None
        moved: dict[str, str] = dict(etags)
        for name, etag in own.items():
            if etag is None:
                moved.pop(name, None)
            else:
                moved[name] = etag
        return self._cursor(collection, None, moved)

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        self.object_type(obj)
        if not ids:
            return []
        return self._readable(await self._fetch_cards(ids))

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        self.object_type(obj)
        prop = _FIND_PROPERTIES.get(path)
        if prop is None:
            raise ConfigError(
                f"carddav: contacts can be found by {', '.join(sorted(_FIND_PROPERTIES))}, not {path!r}"
            )
        wanted = sorted({v.strip().lower() for v in values if v.strip()})
        if not wanted:
            return []
        collection = await self.collection()
        cards: dict[str, tuple[str | None, Card] | VCardError] = {}
        index = await self._caught_up(collection)
        if index is not None:
            matches = index.matching(set(wanted))
            cards = await self._fetch_cards(matches) if matches else {}
            return [r for r in self._readable(cards) if _matches(r.fields, path, set(wanted))]
        try:
            for part in _chunks(wanted, _FIND_BATCH):
                found = await self._dav.multistatus(
                    "REPORT", collection, addressbook_query(prop, part), depth="1"
                )
                cards.update(self._cards(collection, found))
        except ReportNotSupported:
            self._log.info("carddav.query_unsupported", action="listing the address book")
            cards = await self._fetch_cards(list(await self._members(collection)))
        return [r for r in self._readable(cards) if _matches(r.fields, path, set(wanted))]

    async def _caught_up(self, collection: str) -> BookIndex | None:
        """The index brought up to the server's current state (one request), or None without one."""
        index = self._index
        if index is None or index.collection != collection:
            return None
        current: Mapping[str, str | None]
        try:
            if index.token is not None:
                current, removed, token = await self._sync(collection, index.token)
            else:
                current = await self._members(collection)
                removed, token = [n for n in index.entries if n not in current], None
        except InvalidSyncToken:
            self._index = None
            return None
        stale = index.stale(current)
        fetched = await self._fetch_cards(stale) if stale else {}
        if self._index is not index:
            return None  # a full listing replaced it meanwhile
        index.drop(removed)
        for name in stale:
            found = fetched.get(name)
            if found is None:
                index.drop([name])  # gone since the report
            elif isinstance(found, VCardError):
                index.put(name, current.get(name), {})
            else:
                index.put(name, found[0], found[1].fields())
        index.token = token
        return index

    def _written(self, records: Sequence[RemoteRecord]) -> None:
        """Remember the connector's own writes, and enter them in the index, with the ETags the
        server returned."""
        for record in records:
            if record.deleted or record.version is not None:
                self._own[record.id] = None if record.deleted else record.version
            else:
                self._own.pop(record.id, None)  # no version to recognise it by: read it again
        index = self._index
        if index is None:
            return
        for record in records:
            if record.deleted:
                index.drop([record.id])
            else:
                index.put(record.id, record.version, record.fields)

    # -- writing -------------------------------------------------------------------------------

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)
        await self.collection()
        return await self._each(items, self._writer.create)

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)
        await self.collection()
        current = await self._fetch_cards([i.id for i in items if i.id])
        return await self._each(items, lambda item: self._writer.update(item, current.get(item.id or "")))

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)
        await self.collection()
        return await self._each(items, self._writer.delete)

    async def _each(
        self, items: Sequence[WriteItem], write: Callable[[WriteItem], Awaitable[RemoteRecord]]
    ) -> list[WriteResult]:
        """Run the writes in parallel (the HTTP client bounds them); one result per item.

        A refusal of the whole app (credentials, settings) is raised; any other failure belongs to
        its item, transient ones included, so the engine retries exactly the writes that failed.
        """
        outcomes = await asyncio.gather(*(write(item) for item in items), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, AuthError | ConfigError):
                raise outcome
            if isinstance(outcome, BaseException) and not isinstance(outcome, ConnectorError):
                raise outcome
        results: list[WriteResult] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, ConnectorError):
                results.append(WriteResult(key=item.key, error=outcome))
            else:
                assert isinstance(outcome, RemoteRecord)
                results.append(WriteResult(key=item.key, record=outcome))
        self._written([r.record for r in results if r.record is not None])
        return results


def _matches(fields: Mapping[str, Any], path: str, wanted: set[str]) -> bool:
    emails = [e.get("value") for e in fields.get("emails") or []]
    values = emails if path == "emails" else [fields.get(path)]
    return any(isinstance(v, str) and v.strip().lower() in wanted for v in values)


async def _gather(calls: Iterator[Awaitable[T]]) -> list[T]:
    """Run ``calls`` concurrently; re-raise the first failure once all have ended."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    results: list[T] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results


__all__ = ["CardDavConnector"]
