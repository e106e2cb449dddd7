"""The connector conformance kit, run against StripeConnector and localstripe.

localstripe serves customers, ``/v1/events`` (with ``type`` and ``created`` filters),
subscriptions and invoices, so listings, cursors, tombstones, writes and echo run against it
unchanged. Timeouts, 429s and 500s are injected on the client side, before a request leaves.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from syncd.testing.conformance import (
    ConnectorConformance,
    FailureKind,
    FaultInjectingTransport,
    Harness,
    SignedRequest,
)
from syncd_stripe import StripeConfig, StripeConnector, sign

from .conftest import FAST_RETRY, SECRET_KEY, WEBHOOK_SECRET, LocalStripe


class StripeHarness(Harness):
    """Customers in localstripe; its API plays the person editing Stripe by hand."""

    natural_key_path = "email"
    mutable_path = "name"
    page_size = 3

    def __init__(self, server: LocalStripe) -> None:
        self.server = server
        self.transport = FaultInjectingTransport()
        config = StripeConfig(
            secret_key=SECRET_KEY,
            base_url=server.url,
            webhook_secret=WEBHOOK_SECRET,
            page_size=self.page_size,
            allow_delete=True,
            # localstripe has no rate limit; the default 25/s would only slow the suite down.
            requests_per_second=1000.0,
        )
        self.connector = StripeConnector(config, transport=self.transport, retry=FAST_RETRY)

    async def seed(self, fields: Mapping[str, Any]) -> str:
        customer = await self.server.call("POST", "/v1/customers", fields)
        return str(customer["id"])

    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        await self.server.call("POST", f"/v1/customers/{id}", fields)

    async def remove(self, id: str) -> None:
        await self.server.call("DELETE", f"/v1/customers/{id}")

    def sample_fields(self, i: int) -> dict[str, Any]:
        return {
            "email": f"customer{i}@lovelace.io",
            "name": f"Customer {i}",
            "phone": f"+4420794600{i:02d}",
            "metadata": {"cohort": f"c{i % 2}"},
        }

    def invalid_fields(self) -> dict[str, Any]:
        # Stripe refuses address keys it does not know.
        return {"email": "invalid@lovelace.io", "address": {"planet": "Mars"}}

    def missing_id(self) -> str:
        return "cus_NoSuchCustomer00"

    def inject(self, kind: FailureKind, times: int) -> bool:
        return self.transport.inject(kind, times)

    def sign_webhook(
        self, body: bytes, *, secret: str | None = None, timestamp: float | None = None
    ) -> SignedRequest:
        stamp = int(time.time() if timestamp is None else timestamp)
        signature = sign(secret or WEBHOOK_SECRET, body, stamp)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": f"t={stamp},v1={signature}",
        }
        return "POST", "https://syncd.example/webhooks/stripe", headers, body

    def webhook_body(self, record_id: str, *, event_id: str) -> bytes:
        event = {
            "id": event_id,
            "object": "event",
            "type": "customer.updated",
            "created": int(time.time()),
            "api_version": "2026-06-24.dahlia",
            "livemode": False,
            "data": {"object": {"id": record_id, "object": "customer", "name": "Changed"}},
        }
        return json.dumps(event, indent=2, sort_keys=True).encode()


class TestStripeConformance(ConnectorConformance):
    object_name = "customers"

    @pytest.fixture
    async def harness(self, localstripe: LocalStripe) -> AsyncIterator[Harness]:
        harness = StripeHarness(localstripe)
        try:
            yield harness
        finally:
            await harness.connector.aclose()
