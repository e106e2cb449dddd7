"""Stripe webhooks: ``Stripe-Signature`` verification and events turned into hints.

Stripe signs ``"{t}.{raw body}"`` with HMAC-SHA256 under the endpoint's signing secret (the whole
``whsec_...`` string) and sends ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``.
Several ``v1`` values appear while a secret is being rolled; any match is enough. Other schemes
(``v0``) are ignored. A timestamp outside the tolerance (either way) is refused as a replay.

Each delivery is one Event. ``customer.created|updated|deleted`` name the customer in
``data.object.id``; subscription and invoice events name it in ``data.object.customer`` and
change only the read-only ``billing`` fields. The hint asks syncd to re-read the customer
(events may arrive late, twice or out of order, so their snapshots are not used as the record);
``event_id`` is the Event's id, the same on every redelivery.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from syncd.connector import WebhookHint, WebhookVerificationError
from syncd.connector.webhooks import check_timestamp, hmac_sha256_hex, matches_any

SIGNATURE_HEADER = "stripe-signature"
OBJECT = "customers"
#: Event types about the customer record itself.
CUSTOMER_EVENTS = ("customer.created", "customer.updated", "customer.deleted")
#: Event types that change the derived ``billing`` fields of the customer they name.
BILLING_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.voided",
)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``v1`` signature Stripe sends for ``body`` at ``timestamp``."""
    return hmac_sha256_hex(secret, str(timestamp).encode("ascii") + b"." + body)


def parse_header(value: str) -> tuple[int, list[str]]:
    """``(t, [v1, ...])`` from a ``Stripe-Signature`` header; WebhookVerificationError if malformed."""
    stamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not item.isdigit():
                raise WebhookVerificationError("stripe: malformed Stripe-Signature timestamp", status=401)
            stamp = int(item)
        elif key == "v1" and item:
            signatures.append(item.strip().lower())
    if stamp is None:
        raise WebhookVerificationError("stripe: Stripe-Signature has no timestamp (t=)", status=401)
    if not signatures:
        raise WebhookVerificationError("stripe: Stripe-Signature has no v1 signature", status=401)
    return stamp, signatures


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance: float,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless one of ``secrets`` signed ``body`` recently."""
    if not secrets:
        raise WebhookVerificationError("stripe: no webhook_secret configured to verify webhooks", status=401)
    value = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
    if not value:
        raise WebhookVerificationError("stripe: missing Stripe-Signature header", status=401)
    stamp, provided = parse_header(value)
    check_timestamp(stamp, tolerance=tolerance, now=now)
    if not matches_any([sign(secret, body, stamp) for secret in secrets], provided):
        raise WebhookVerificationError("stripe: webhook signature does not match", status=401)


def customer_of(event: Mapping[str, Any]) -> str | None:
    """The id of the customer an event is about, or None for events syncd does not follow."""
    kind = event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        return None
    if kind in CUSTOMER_EVENTS:
        found = obj.get("id")
    elif kind in BILLING_EVENTS:
        found = obj.get("customer")
        if isinstance(found, Mapping):
            found = found.get("id")
    else:
        return None
    return str(found) if isinstance(found, str) and found.startswith("cus_") else None


def parse(body: bytes, *, billing: bool) -> list[WebhookHint]:
    """The hints of one event delivery; ValueError (with the reason) if the body is malformed."""
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"stripe webhook body is not JSON: {exc}") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise ValueError("stripe webhook body is not an Event object")
    event_id, kind, created = event.get("id"), event.get("type"), event.get("created")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("stripe webhook event has no id")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"stripe webhook event {event_id} has no type")
    if not isinstance(created, int) or isinstance(created, bool):
        raise ValueError(f"stripe webhook event {event_id}: created must be Unix seconds")
    if kind not in CUSTOMER_EVENTS and not (billing and kind in BILLING_EVENTS):
        return []
    customer = customer_of(event)
    if customer is None:
        raise ValueError(f"stripe webhook event {event_id} ({kind}) names no customer")
    return [
        WebhookHint(
            event_id=event_id,
            object=OBJECT,
            record_id=customer,
            deleted=kind == "customer.deleted",
            occurred_at=datetime.fromtimestamp(created, UTC),
        )
    ]
