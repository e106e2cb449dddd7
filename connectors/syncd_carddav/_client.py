"""The WebDAV requests the connector sends, over the SDK's HTTP client, and address book discovery.

Discovery follows RFC 6764 section 6 without the DNS part: the configured URL is tried as an
address book first; otherwise its ``current-user-principal`` leads to the principal's
``addressbook-home-set``, whose children that are address books are the candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote, unquote

import httpx

from syncd.connector import ConfigError, NotFound, TransientError
from syncd.connector.http import HttpClient

from ._config import CardDavConfig
from ._dav import (
    ADDRESSBOOK,
    ADDRESSBOOK_HOME_SET,
    COLLECTION,
    CURRENT_USER_PRINCIPAL,
    DISPLAYNAME,
    RESOURCETYPE,
    DavResponse,
    DavXmlError,
    Multistatus,
    parse_multistatus,
    propfind,
    same_path,
)

_XML = 'application/xml; charset="utf-8"'
#: Characters left as they are in a resource name put into a path (RFC 3986 pchar minus ';').
_NAME_SAFE = "@+:=!$&'()*,~-._"


class DavClient:
    """WebDAV verbs on one server, with multistatus answers parsed."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    async def multistatus(self, method: str, path: str, body: bytes, *, depth: str | None) -> Multistatus:
        headers = {"Content-Type": _XML}
        if depth is not None:
            headers["Depth"] = depth
        response = await self.http.request(method, path, content=body, headers=headers)
        if response.status_code != 207:
            raise TransientError(
                f"carddav: {method} {path} answered {response.status_code} instead of a multistatus",
                status=response.status_code,
            )
        try:
            return parse_multistatus(response.content)
        except DavXmlError as exc:
            raise TransientError(f"carddav: {method} {path}: {exc}", status=207) from None

    async def propfind(self, path: str, names: Sequence[str], *, depth: str) -> Multistatus:
        return await self.multistatus("PROPFIND", path, propfind(names), depth=depth)

    async def put(self, path: str, body: str, headers: Mapping[str, str]) -> httpx.Response:
        return await self.http.put(
            path,
            content=body.encode("utf-8"),
            headers={"Content-Type": "text/vcard; charset=utf-8", **headers},
        )

    async def delete(self, path: str, headers: Mapping[str, str]) -> httpx.Response:
        return await self.http.delete(path, headers=dict(headers))


def _self(found: Multistatus, path: str) -> DavResponse | None:
    return next((r for r in found.responses if same_path(r.href, path)), None)


def _with_slash(path: str) -> str:
    return path if path.endswith("/") else path + "/"


async def discover(client: DavClient, config: CardDavConfig) -> str:
    """The path of the address book to sync (percent-encoded, ending in ``/``)."""
    start = config.start_path
    try:
        found = await client.propfind(
            start, [RESOURCETYPE, CURRENT_USER_PRINCIPAL, ADDRESSBOOK_HOME_SET], depth="0"
        )
    except NotFound:
        raise ConfigError(f"carddav: nothing at {config.url}") from None
    here = _self(found, start) or (found.responses[0] if found.responses else None)
    if here is None:
        raise ConfigError(f"carddav: {config.url} answered an empty multistatus")
    if here.has_type(ADDRESSBOOK):
        return _with_slash(here.href)
    homes = here.hrefs(ADDRESSBOOK_HOME_SET)
    if not homes:
        principals = here.hrefs(CURRENT_USER_PRINCIPAL)
        if not principals:
            raise ConfigError(
                f"carddav: {config.url} is no address book and names no current-user-principal; "
                "set url to the address book collection"
            )
        principal = await client.propfind(principals[0], [ADDRESSBOOK_HOME_SET], depth="0")
        homes = [h for r in principal.responses for h in r.hrefs(ADDRESSBOOK_HOME_SET)]
        if not homes:
            raise ConfigError(f"carddav: principal {principals[0]} has no addressbook-home-set")
    books: list[DavResponse] = []
    for home in homes:
        listing = await client.propfind(home, [RESOURCETYPE, DISPLAYNAME], depth="1")
        books += [r for r in listing.responses if r.has_type(ADDRESSBOOK) and r.has_type(COLLECTION)]
    if not books:
        raise ConfigError(f"carddav: no address book under {', '.join(homes)}")
    books.sort(key=lambda r: r.href)
    if config.addressbook is None:
        return _with_slash(books[0].href)
    wanted = config.addressbook.strip().strip("/")
    for book in books:
        segment = unquote(book.href.rstrip("/").rsplit("/", 1)[-1])
        if wanted in (segment, book.text(DISPLAYNAME)):
            return _with_slash(book.href)
    names = ", ".join(unquote(b.href) for b in books)
    raise ConfigError(f"carddav: no address book named {config.addressbook!r} (found: {names})")


def member_name(collection: str, href: str) -> str | None:
    """The decoded name of a card directly inside ``collection``; None for anything else."""
    base = unquote(collection)
    path = unquote(href)
    if not path.startswith(base):
        return None
    name = path[len(base) :]
    if not name or "/" in name:
        return None
    return name


def member_href(collection: str, name: str) -> str:
    return collection + quote(name, safe=_NAME_SAFE)


__all__ = ["DavClient", "discover", "member_href", "member_name"]
