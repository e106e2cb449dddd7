"""The connector conformance kit, run against the CardDAV connector and a real Radicale."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from syncd.testing.conformance import ConnectorConformance, FailureKind, FaultInjectingTransport, Harness
from syncd.testing.radicale import RadicaleServer
from syncd_carddav import CardDavConfig, CardDavConnector

from . import cards
from .conftest import FAST_RETRY, PASSWORD, USER


class CardDavHarness(Harness):
    """Cards of one fresh address book; a plain WebDAV client plays the person editing them."""

    natural_key_path = "email"
    mutable_path = "note"
    page_size = 3
    # REV is set to the write time by every write, syncd's or a person's client.
    volatile_paths = ("rev",)

    def __init__(self, server: RadicaleServer, book: str) -> None:
        self.book = book
        self.dav = server.client(USER)
        self.transport = FaultInjectingTransport()
        config = CardDavConfig(
            url=server.url + book, username=USER, password=PASSWORD, page_size=self.page_size
        )
        self.connector = CardDavConnector(config, transport=self.transport, retry=FAST_RETRY)

    async def seed(self, fields: Mapping[str, Any]) -> str:
        uid = f"seed-{uuid.uuid4()}"
        name = f"{uid}.vcf"
        extra = f"NOTE:{fields['note']}\r\n" if fields.get("note") else ""
        text = cards.vcard3(
            uid,
            fn=fields["fn"],
            given=fields["n"]["given"],
            family=fields["n"]["family"],
            email=fields["email"],
            extra=extra,
        )
        cards.put(self.dav, self.book, name, text)
        return name

    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        cards.edit(self.dav, self.book, id, fields)

    async def remove(self, id: str) -> None:
        cards.remove(self.dav, self.book, id)

    def sample_fields(self, i: int) -> dict[str, Any]:
        return {
            "fn": f"Person {i}",
            "n": {"given": f"Given{i}", "family": f"Family{i}"},
            "email": f"person{i}@lovelace.io",
            "note": f"Note {i}",
        }

    def invalid_fields(self) -> dict[str, Any]:
        return {"email": "invalid@lovelace.io", "n": "not a table of name parts"}

    def missing_id(self) -> str:
        return "no-such-card-404.vcf"

    def inject(self, kind: FailureKind, times: int) -> bool:
        return self.transport.inject(kind, times)

    async def close(self) -> None:
        self.dav.close()
        await self.connector.aclose()


class TestCardDavConformance(ConnectorConformance):
    object_name = "contacts"

    @pytest.fixture
    async def harness(self, radicale_server: RadicaleServer, book: str) -> AsyncIterator[Harness]:
        harness = CardDavHarness(radicale_server, book)
        try:
            yield harness
        finally:
            await harness.close()
