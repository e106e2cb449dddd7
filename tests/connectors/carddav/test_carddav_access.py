"""Logging in, finding the address book, and looking cards up by email."""

from __future__ import annotations

import base64

import httpx
import pytest

from syncd.connector import AuthError, ConfigError
from syncd.testing.radicale import RadicaleServer
from syncd_carddav import CardDavConfig, CardDavConnector

from . import cards
from .conftest import PASSWORD, USER, ConnectorFactory
from .tap import Tap


async def test_wrong_password_raises_auth_error(make_connector: ConnectorFactory) -> None:
    connector = make_connector(password="not-the-password")
    with pytest.raises(AuthError) as caught:
        await connector.check()
    assert caught.value.status == 401
    assert "not-the-password" not in str(caught.value)


async def test_basic_auth_sends_credentials_and_bearer_sends_only_the_token(
    make_connector: ConnectorFactory,
) -> None:
    basic_tap, bearer_tap = Tap(), Tap()
    await make_connector(transport=basic_tap).check()
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert {r.headers.get("Authorization") for r in basic_tap.requests} == {expected}
    bearer = make_connector(transport=bearer_tap, username=None, password=None, bearer_token="tok-123")
    # Radicale itself knows no bearer tokens: it refuses, which must come back as AuthError.
    with pytest.raises(AuthError):
        await bearer.check()
    assert {r.headers.get("Authorization") for r in bearer_tap.requests} == {"Bearer tok-123"}


def test_settings_refuse_two_ways_of_logging_in() -> None:
    with pytest.raises(ValueError, match="not both"):
        CardDavConfig(url="http://127.0.0.1/", username="a", password="b", bearer_token="c")
    with pytest.raises(ValueError, match="both username and password"):
        CardDavConfig(url="http://127.0.0.1/", username="a")
    with pytest.raises(ValueError, match="http"):
        CardDavConfig(url="ftp://127.0.0.1/")


@pytest.mark.parametrize("start", ["/", f"/{USER}/"])
async def test_discovery_finds_the_named_address_book_from_the_server_root_or_the_principal(
    radicale_server: RadicaleServer, book: str, start: str
) -> None:
    other = radicale_server.create_addressbook(USER)
    name = book.strip("/").rsplit("/", 1)[-1]
    config = CardDavConfig(
        url=radicale_server.url + start, username=USER, password=PASSWORD, addressbook=name
    )
    connector = CardDavConnector(config)
    try:
        assert await connector.collection() == book
        assert other != book
    finally:
        await connector.aclose()


async def test_discovery_names_the_address_books_it_found_when_the_wanted_one_is_missing(
    radicale_server: RadicaleServer, book: str
) -> None:
    config = CardDavConfig(
        url=radicale_server.url + "/", username=USER, password=PASSWORD, addressbook="nope"
    )
    connector = CardDavConnector(config)
    try:
        with pytest.raises(ConfigError, match=book.rstrip("/")):
            await connector.check()
    finally:
        await connector.aclose()


async def test_find_by_email_asks_the_server_and_matches_only_the_primary_email(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    extra = "EMAIL;TYPE=work:shared@example.org\r\n"
    cards.put(
        dav,
        book,
        "a.vcf",
        cards.vcard3("a", fn="A", given="A", family="A", email="a@example.org", extra=extra),
    )
    cards.put(
        dav, book, "b.vcf", cards.vcard3("b", fn="B", given="B", family="B", email="shared@example.org")
    )
    tap = Tap()
    connector = make_connector(transport=tap)
    found = await connector.find("contacts", "email", [" Shared@Example.org "])
    assert [r.id for r in found] == ["b.vcf"]
    assert b"addressbook-query" in tap.requests[-1].content
    assert "PROPFIND" not in tap.methods()[1:], "a server-side query needs no listing"
    anywhere = await connector.find("contacts", "emails", ["shared@example.org"])
    assert sorted(r.id for r in anywhere) == ["a.vcf", "b.vcf"]
    with pytest.raises(ConfigError):
        await connector.find("contacts", "note", ["x"])


async def test_find_falls_back_to_a_listing_when_the_server_refuses_the_query(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    cards.put(dav, book, "a.vcf", cards.vcard3("a", fn="A", given="A", family="A", email="a@example.org"))
    tap = Tap()
    refusal = b'<?xml version="1.0" encoding="utf-8"?><D:error xmlns:D="DAV:"><D:supported-report/></D:error>'

    def refuse_queries(request: httpx.Request) -> httpx.Response | None:
        if request.method == "REPORT" and b"addressbook-query" in request.content:
            return httpx.Response(403, content=refusal, headers={"Content-Type": "application/xml"})
        return None

    tap.answer = refuse_queries
    connector = make_connector(transport=tap)
    found = await connector.find("contacts", "email", ["A@example.org"])
    assert [r.id for r in found] == ["a.vcf"]
    assert "PROPFIND" in tap.methods()[1:], "the fallback lists the address book"
