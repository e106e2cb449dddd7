"""The connector conformance kit, run against the Mailchimp connector and its fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from syncd.connector.http import RetryPolicy
from syncd.testing.conformance import (
    ConnectorConformance,
    FailureKind,
    FaultInjectingTransport,
    Harness,
    SignedRequest,
)
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.mailchimp import MailchimpFake, subscriber_hash
from syncd_mailchimp import MailchimpConfig, MailchimpConnector

from .conftest import API_KEY, LIST_ID, START, WEBHOOK_SECRET

FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.005, max_delay=0.02, jitter=0.0)


class MailchimpHarness(Harness):
    """Members of one audience; the fake's backdoor plays the person and the account admin."""

    natural_key_path = "email_address"
    mutable_path = "merge_fields.FNAME"
    page_size = 3
    volatile_paths = ("last_changed",)
    # Mailchimp authenticates webhooks by a secret in the URL only: no body signature, no timestamp.
    webhook_signs_body = False
    webhook_timestamped = False

    def __init__(self, fake: MailchimpFake) -> None:
        self.fake = fake
        # Timeouts come from the transport at once; 429s and 500s come from the fake, Mailchimp-style.
        self.transport = FaultInjectingTransport()
        config = MailchimpConfig(
            api_key=API_KEY,
            base_url=fake.url,
            list_id=LIST_ID,
            page_size=self.page_size,
            webhook_secret=WEBHOOK_SECRET,
        )
        self.connector = MailchimpConnector(config, transport=self.transport, retry=FAST_RETRY)

    async def seed(self, fields: Mapping[str, Any]) -> str:
        return self.fake.seed(
            fields["email_address"],
            status=fields.get("status", "subscribed"),
            merge_fields=fields.get("merge_fields"),
            tags=fields.get("tags", ()),
        )

    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        self.fake.edit(
            id,
            email=fields.get("email_address"),
            status=fields.get("status"),
            merge_fields=fields.get("merge_fields"),
            tags=fields.get("tags"),
        )

    async def remove(self, id: str) -> None:
        self.fake.remove(id)

    def sample_fields(self, i: int) -> dict[str, Any]:
        return {
            "email_address": f"member{i}@lovelace.io",
            "status": "subscribed",
            "merge_fields": {"FNAME": f"First{i}", "LNAME": f"Last{i}"},
            "tags": sorted({f"cohort-{i % 2}", "synced"}),
        }

    def invalid_fields(self) -> dict[str, Any]:
        return {"email_address": "invalid@lovelace.io", "merge_fields": {"NO_SUCH_TAG": "x"}}

    def missing_id(self) -> str:
        return subscriber_hash("nobody-at-all@lovelace.io")

    def inject(self, kind: FailureKind, times: int) -> bool:
        if kind == "timeout":
            return self.transport.inject(kind, times)
        self.fake.inject(kind, times)
        return True

    def sign_webhook(
        self, body: bytes, *, secret: str | None = None, timestamp: float | None = None
    ) -> SignedRequest:
        url = f"https://syncd.example/webhooks/mailchimp?secret={quote(secret or WEBHOOK_SECRET)}"
        return "POST", url, {"Content-Type": "application/x-www-form-urlencoded"}, body

    def webhook_body(self, record_id: str, *, event_id: str) -> bytes:
        member = self.fake.member(record_id)
        assert member is not None
        pairs = [
            ("type", "profile"),
            ("fired_at", "2026-01-01 09:00:00"),
            ("data[id]", member["unique_email_id"]),
            ("data[list_id]", LIST_ID),
            ("data[email]", member["email_address"]),
            # Mailchimp events carry no id; a distinct change stands in for a distinct event.
            ("data[merges][FNAME]", f"Changed by {event_id}"),
        ]
        return urlencode(pairs).encode()


class TestMailchimpConformance(ConnectorConformance):
    object_name = "members"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        # Every reading of the clock moves it a second, so each change gets its own last_changed.
        fake = MailchimpFake(
            api_key=API_KEY, list_ids=[LIST_ID], clock=FakeClock(START, frozen=True, tick=1.0)
        )
        await fake.start()
        harness = MailchimpHarness(fake)
        try:
            yield harness
        finally:
            await harness.connector.aclose()
            await fake.stop()
