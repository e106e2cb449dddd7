"""The connector conformance kit, run against HubSpotConnector and the HubSpot fake.

The fake runs with a search index lag that ``settle`` waits out on the fake's clock, so the
kit's cursor checks also prove that incremental reads tolerate eventual consistency.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest

from syncd.testing.conformance import (
    ConnectorConformance,
    FailureKind,
    FaultInjectingTransport,
    Harness,
    SignedRequest,
)
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.hubspot import HubSpotFake, sign_v3

from .conftest import SECRET, START, TOKEN, make_connector

PUBLIC_URL = "https://syncd.example.com/webhooks/hubspot?app=crm"
INDEX_LAG = 2.0


class HubSpotHarness(Harness):
    """Backdoor into the HubSpot fake; timeouts are injected on the client side."""

    natural_key_path = "properties.email"
    mutable_path = "properties.firstname"
    volatile_paths = ("properties.lastmodifieddate",)
    page_size = 4

    def __init__(self, fake: HubSpotFake, clock: FakeClock, transport: FaultInjectingTransport) -> None:
        self.fake = fake
        self.clock = clock
        self.transport = transport
        self.connector = make_connector(
            fake,
            transport=transport,
            page_size=self.page_size,
            search_page_size=self.page_size,
            webhook_url=PUBLIC_URL,
        )

    async def seed(self, fields: Mapping[str, Any]) -> str:
        return self.fake.seed(fields["properties"], indexed=False)

    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        self.fake.edit(id, fields["properties"])

    async def remove(self, id: str) -> None:
        self.fake.archive(id)

    def sample_fields(self, i: int) -> dict[str, Any]:
        return {
            "properties": {
                "email": f"person{i}@example.com",
                "firstname": f"First{i}",
                "lastname": f"Last{i}",
            }
        }

    def invalid_fields(self) -> dict[str, Any]:
        return {"properties": {"email": "not-an-email", "firstname": "Bad"}}

    def missing_id(self) -> str:
        return "987654321"

    def inject(self, kind: FailureKind, times: int) -> bool:
        if kind == "timeout":
            return self.transport.inject(kind, times)
        self.fake.inject(kind, times, "/crm/")
        return True

    def sign_webhook(
        self, body: bytes, *, secret: str | None = None, timestamp: float | None = None
    ) -> SignedRequest:
        stamp = int((time.time() if timestamp is None else timestamp) * 1000)
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(secret or SECRET, "POST", PUBLIC_URL, body, stamp),
            "X-HubSpot-Request-Timestamp": str(stamp),
        }
        return "POST", PUBLIC_URL, headers, body

    def webhook_body(self, record_id: str, *, event_id: str) -> bytes:
        event = {
            "eventId": event_id,
            "subscriptionId": 4002,
            "portalId": 62515,
            "appId": 1160452,
            "occurredAt": 1772442000000,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": int(record_id),
            "propertyName": "firstname",
            "propertyValue": "Changed",
            "changeSource": "CRM_UI",
        }
        return json.dumps([event]).encode()

    async def settle(self) -> None:
        self.clock.advance(INDEX_LAG + 0.001)


class TestHubSpotConformance(ConnectorConformance):
    object_name = "contacts"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        clock = FakeClock(START, frozen=True)
        fake = HubSpotFake(token=TOKEN, client_secret=SECRET, clock=clock, index_lag_seconds=INDEX_LAG)
        await fake.start()
        transport = FaultInjectingTransport(httpx.AsyncHTTPTransport())
        harness = HubSpotHarness(fake, clock, transport)
        try:
            yield harness
        finally:
            await harness.connector.aclose()
            await fake.stop()
