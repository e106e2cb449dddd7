"""Stripe-Signature verification and event parsing, including real deliveries from localstripe."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from syncd.connector import WebhookVerificationError
from syncd_stripe import StripeConnector, sign

from .conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET, ConnectorFactory, LocalStripe, Receiver

NOW = 1_800_000_000.0
URL = "https://syncd.example/webhooks/stripe"


def _event(kind: str, obj: dict[str, Any], *, event_id: str = "evt_1", created: int = int(NOW)) -> bytes:
    body = {"id": event_id, "object": "event", "type": kind, "created": created, "data": {"object": obj}}
    return json.dumps(body).encode()


def _headers(body: bytes, *signatures: str, stamp: int = int(NOW)) -> dict[str, str]:
    parts = [f"t={stamp}", *(f"v1={s}" for s in signatures)]
    return {"Stripe-Signature": ",".join(parts)}


@pytest.fixture
def connector(make_connector: ConnectorFactory) -> StripeConnector:
    return make_connector(
        "http://127.0.0.1:9", now=lambda: NOW, previous_webhook_secrets=[OLD_WEBHOOK_SECRET]
    )


BODY = _event("customer.updated", {"id": "cus_A1", "object": "customer"})


def test_a_delivery_signed_with_the_current_secret_is_accepted(connector: StripeConnector) -> None:
    connector.verify_webhook("POST", URL, _headers(BODY, sign(WEBHOOK_SECRET, BODY, int(NOW))), BODY)


def test_a_tampered_body_is_rejected(connector: StripeConnector) -> None:
    headers = _headers(BODY, sign(WEBHOOK_SECRET, BODY, int(NOW)))
    with pytest.raises(WebhookVerificationError, match="does not match"):
        connector.verify_webhook("POST", URL, headers, BODY.replace(b"cus_A1", b"cus_B2"))


def test_a_signature_over_another_timestamp_is_rejected(connector: StripeConnector) -> None:
    signature = sign(WEBHOOK_SECRET, BODY, int(NOW) - 1)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        connector.verify_webhook("POST", URL, _headers(BODY, signature), BODY)


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_a_timestamp_outside_the_300_second_tolerance_is_rejected_even_when_signed(
    connector: StripeConnector, offset: int
) -> None:
    stamp = int(NOW) + offset
    with pytest.raises(WebhookVerificationError, match="stale or replayed"):
        connector.verify_webhook(
            "POST", URL, _headers(BODY, sign(WEBHOOK_SECRET, BODY, stamp), stamp=stamp), BODY
        )


def test_a_timestamp_just_inside_the_tolerance_is_accepted(connector: StripeConnector) -> None:
    stamp = int(NOW) - 299
    connector.verify_webhook(
        "POST", URL, _headers(BODY, sign(WEBHOOK_SECRET, BODY, stamp), stamp=stamp), BODY
    )


def test_any_matching_v1_among_several_is_enough(connector: StripeConnector) -> None:
    good = sign(WEBHOOK_SECRET, BODY, int(NOW))
    headers = _headers(BODY, "0" * 64, good, sign("whsec_someone_else", BODY, int(NOW)))
    headers["Stripe-Signature"] += ",v0=" + "f" * 64  # other schemes are ignored
    connector.verify_webhook("POST", URL, headers, BODY)


def test_a_v0_signature_alone_is_not_accepted(connector: StripeConnector) -> None:
    headers = {"Stripe-Signature": f"t={int(NOW)},v0={sign(WEBHOOK_SECRET, BODY, int(NOW))}"}
    with pytest.raises(WebhookVerificationError, match="no v1"):
        connector.verify_webhook("POST", URL, headers, BODY)


def test_the_previous_secret_is_still_accepted_during_a_rotation(connector: StripeConnector) -> None:
    connector.verify_webhook("POST", URL, _headers(BODY, sign(OLD_WEBHOOK_SECRET, BODY, int(NOW))), BODY)


def test_a_secret_dropped_from_the_settings_is_refused(make_connector: ConnectorFactory) -> None:
    rotated = make_connector("http://127.0.0.1:9", now=lambda: NOW)
    with pytest.raises(WebhookVerificationError):
        rotated.verify_webhook("POST", URL, _headers(BODY, sign(OLD_WEBHOOK_SECRET, BODY, int(NOW))), BODY)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing Stripe-Signature"),
        ("v1=abc", "no timestamp"),
        ("t=abc,v1=abc", "malformed"),
        ("t=1800000000", "no v1"),
    ],
)
def test_malformed_signature_headers_are_rejected_with_the_reason(
    connector: StripeConnector, header: str | None, reason: str
) -> None:
    headers = {"Stripe-Signature": header} if header is not None else {}
    with pytest.raises(WebhookVerificationError, match=reason):
        connector.verify_webhook("POST", URL, headers, BODY)


def test_without_a_configured_secret_every_webhook_is_refused(make_connector: ConnectorFactory) -> None:
    bare = make_connector("http://127.0.0.1:9", now=lambda: NOW, webhook_secret=None)
    with pytest.raises(WebhookVerificationError, match="no webhook_secret"):
        bare.verify_webhook("POST", URL, _headers(BODY, sign(WEBHOOK_SECRET, BODY, int(NOW))), BODY)


def test_customer_deleted_event_becomes_a_deleted_hint(connector: StripeConnector) -> None:
    body = _event("customer.deleted", {"id": "cus_A1", "object": "customer"}, event_id="evt_9")
    (hint,) = connector.parse_webhook({}, body)
    assert (hint.event_id, hint.object, hint.record_id, hint.deleted) == (
        "evt_9",
        "customers",
        "cus_A1",
        True,
    )
    assert hint.occurred_at is not None
    assert hint.occurred_at.timestamp() == NOW


def test_subscription_and_invoice_events_ask_to_reread_their_customer(connector: StripeConnector) -> None:
    sub = _event(
        "customer.subscription.updated", {"id": "sub_1", "object": "subscription", "customer": "cus_A1"}
    )
    paid = _event("invoice.paid", {"id": "in_1", "object": "invoice", "customer": "cus_B2"}, event_id="evt_2")
    assert [(h.record_id, h.deleted) for h in connector.parse_webhook({}, sub)] == [("cus_A1", False)]
    assert [h.record_id for h in connector.parse_webhook({}, paid)] == ["cus_B2"]


def test_billing_events_are_ignored_when_billing_fields_are_off(make_connector: ConnectorFactory) -> None:
    plain = make_connector("http://127.0.0.1:9", billing_fields=False)
    sub = _event(
        "customer.subscription.updated", {"id": "sub_1", "object": "subscription", "customer": "cus_A1"}
    )
    assert plain.parse_webhook({}, sub) == []


def test_events_about_other_objects_yield_no_hint(connector: StripeConnector) -> None:
    assert connector.parse_webhook({}, _event("payment_intent.succeeded", {"id": "pi_1"})) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "not an Event"),
        (json.dumps({"object": "event", "type": "customer.updated", "created": 1}).encode(), "no id"),
        (json.dumps({"object": "event", "id": "evt_1", "created": 1}).encode(), "no type"),
        (
            json.dumps(
                {"object": "event", "id": "evt_1", "type": "customer.updated", "created": "x"}
            ).encode(),
            "created",
        ),
        (_event("customer.updated", {"object": "customer"}), "names no customer"),
    ],
)
def test_malformed_event_bodies_raise_value_error_with_the_reason(
    connector: StripeConnector, body: bytes, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        connector.parse_webhook({}, body)


async def test_deliveries_signed_by_localstripe_verify_and_name_the_customer(
    localstripe: LocalStripe, receiver: Receiver, make_connector: ConnectorFactory
) -> None:
    await localstripe.call(
        "POST",
        "/_config/webhooks/syncd",
        {"url": receiver.url, "secret": WEBHOOK_SECRET, "events": ["customer.created", "customer.deleted"]},
    )
    connector = make_connector(localstripe.url)
    customer = await localstripe.call("POST", "/v1/customers", {"email": "webhook@lovelace.io"})
    await localstripe.call("DELETE", f"/v1/customers/{customer['id']}")
    deadline = time.monotonic() + 10.0

    def ours() -> list[tuple[Any, bytes]]:
        # localstripe is shared by the tests of one worker: a late delivery of an earlier test's
        # event may arrive here too; only this customer's events are this test's.
        return [(h, b) for h, b in receiver.requests if customer["id"].encode() in b]

    while len(ours()) < 2:  # localstripe sends each event about a second later
        assert time.monotonic() < deadline, f"localstripe delivered {len(ours())} of 2 webhooks"
        await asyncio.sleep(0.05)
    hints = []
    for headers, body in ours():
        connector.verify_webhook("POST", receiver.url, headers, body)
        hints.extend(connector.parse_webhook(headers, body))
        with pytest.raises(WebhookVerificationError):
            connector.verify_webhook("POST", receiver.url, headers, body + b"\n")
    assert sorted((h.record_id, h.deleted) for h in hints) == [
        (customer["id"], False),
        (customer["id"], True),
    ]
    assert len({h.event_id for h in hints}) == 2
