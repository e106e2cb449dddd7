"""Conditional writes of cards: create with ``If-None-Match: *``, update and delete with ``If-Match``.

An update reads the current card first, changes only the properties syncd maps and sends the
whole card back under ``If-Match`` with the ETag it read, so properties syncd does not know
(photos, social profiles, custom labels, extra addresses) survive, and an edit made by someone
else in between is never overwritten: the server answers 412 and the engine re-plans.

A create derives the card's UID (and so its resource name) from the write's idempotency key, so
sending the same create again, after a timeout or a crash, addresses the same resource: the
server refuses the second PUT with 412 and the card already there is returned as the result.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from syncd.connector import (
    ConnectorError,
    NotFound,
    PermanentError,
    PreconditionFailed,
    RemoteRecord,
    TransientError,
    WriteItem,
)

from ._client import DavClient, member_href
from ._config import CardDavConfig
from ._vcard import Card, VCardError

CardRead = tuple[str | None, Card] | VCardError
FetchCards = Callable[[Sequence[str]], Awaitable[dict[str, CardRead]]]
ToRecord = Callable[[str, str | None, Card], RemoteRecord]

#: UIDs that can be used as a resource name as they are.
_NAME_SAFE_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")
#: Namespace of the UIDs derived from idempotency keys.
_UID_NAMESPACE = uuid.UUID("6f1c0d3e-6b1a-4c55-9a53-2d3c1a8e7b10")


def _same_ignoring_rev(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "rev"} == {k: v for k, v in b.items() if k != "rev"}


class CardWriter:
    """Writes cards into one address book (``collection`` is set once it is discovered)."""

    def __init__(self, dav: DavClient, config: CardDavConfig, fetch: FetchCards, to_record: ToRecord) -> None:
        self.dav = dav
        self.config = config
        self.collection = ""
        self._fetch = fetch
        self._to_record = to_record

    def _href(self, name: str) -> str:
        return member_href(self.collection, name)

    async def _read_back(self, name: str) -> RemoteRecord:
        found = (await self._fetch([name])).get(name)
        if found is None:
            raise TransientError(f"carddav: card {name} vanished right after it was written")
        if isinstance(found, VCardError):
            raise PermanentError(f"carddav: the server stored card {name} in a form syncd cannot read")
        return self._to_record(name, *found)

    async def _written(self, name: str, card: Card, response: httpx.Response) -> RemoteRecord:
        etag = response.headers.get("ETag")
        # A strong ETag on a PUT means the server stored the card as sent (RFC 6352 6.3.2.3);
        # without one (or with a weak one) it may have changed it: read what it holds.
        if etag and not etag.startswith("W/"):
            return self._to_record(name, etag, card)
        return await self._read_back(name)

    def uid_for(self, item: WriteItem) -> str:
        given = item.fields.get("uid")
        if isinstance(given, str) and given.strip():
            return given.strip()
        return str(uuid.uuid5(_UID_NAMESPACE, f"{self.collection}\n{item.key}"))

    async def create(self, item: WriteItem) -> RemoteRecord:
        uid = self.uid_for(item)
        name = f"{uid}.vcf" if _NAME_SAFE_UID.match(uid) else f"{uuid.uuid5(_UID_NAMESPACE, uid)}.vcf"
        card = Card.new(self.config.vcard_version, uid)
        try:
            card.apply(item.fields, creating=True)
        except VCardError as exc:
            raise PermanentError(f"carddav: cannot build the card: {exc}") from None
        try:
            response = await self.dav.put(self._href(name), card.serialise(), {"If-None-Match": "*"})
        except PreconditionFailed:
            # Something is there already. If it is this very card (an earlier attempt of this
            # create went through), the create is done; anything else is a clash of names.
            existing = await self._read_back_or_none(name)
            if existing is not None and existing.fields.get("uid") == uid:
                return existing
            raise PermanentError(f"carddav: a different card is already stored as {name}") from None
        return await self._written(name, card, response)

    async def _read_back_or_none(self, name: str) -> RemoteRecord | None:
        try:
            return await self._read_back(name)
        except ConnectorError:
            return None

    async def update(self, item: WriteItem, current: CardRead | None) -> RemoteRecord:
        if not item.id:
            raise PermanentError("carddav: an update needs the card's id")
        if current is None:
            raise NotFound(f"carddav: no card {item.id}", status=404)
        if isinstance(current, VCardError):
            raise PermanentError(f"carddav: card {item.id} on the server is unreadable: {current}")
        etag, card = current
        if item.expected_version is not None and etag != item.expected_version:
            raise PreconditionFailed(f"carddav: card {item.id} changed since it was read", status=412)
        original = card.serialise()
        before = card.fields()
        try:
            card.apply(item.fields)
        except VCardError as exc:
            raise PermanentError(f"carddav: cannot update card {item.id}: {exc}") from None
        if _same_ignoring_rev(before, card.fields()):
            # Nothing syncd maps would change: no request, the card keeps its ETag.
            return self._to_record(item.id, etag, Card.parse(original))
        headers = {"If-Match": etag} if etag else {}
        response = await self.dav.put(self._href(item.id), card.serialise(), headers)
        return await self._written(item.id, card, response)

    async def delete(self, item: WriteItem) -> RemoteRecord:
        if not item.id:
            raise PermanentError("carddav: a delete needs the card's id")
        headers = {"If-Match": item.expected_version} if item.expected_version else {}
        await self.dav.delete(self._href(item.id), headers)
        return RemoteRecord(id=item.id, fields={}, deleted=True)


__all__ = ["CardRead", "CardWriter"]
