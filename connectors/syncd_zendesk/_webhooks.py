"""Zendesk webhooks: signature verification and parsing of one event into hints.

Zendesk signs ``timestamp + raw body`` (plain concatenation) with the webhook's signing secret,
HMAC-SHA256, base64, in ``X-Zendesk-Webhook-Signature``; the timestamp it signed travels in
``X-Zendesk-Webhook-Signature-Timestamp`` (ISO-8601, e.g. ``2026-03-02T09:00:00Z``). Zendesk sets
no replay window, so syncd refuses timestamps further than ``webhook_tolerance_seconds`` from now.
Every secret in ``webhook_secret`` and ``previous_webhook_secrets`` is tried (key rotation).

A delivery is one JSON event (``type`` like ``zen:event-type:user.created``, ``subject`` like
``zen:user:123``, ``detail`` with ids as strings). Events carry no actor, so each becomes a hint
to re-read the record; ``user.deleted`` and ``organization.deleted`` are marked deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from syncd.connector import WebhookHint, WebhookVerificationError
from syncd.connector.webhooks import check_timestamp, hmac_sha256_b64, matches_any

SIGNATURE_HEADER = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER = "x-zendesk-webhook-signature-timestamp"
EVENT_PREFIX = "zen:event-type:"
OBJECT_OF_RESOURCE = {"user": "users", "organization": "organizations"}
_DELETING = {"deleted", "permanently_deleted"}


def _timestamp(value: str) -> float:
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WebhookVerificationError(
            f"zendesk: malformed webhook timestamp {text[:40]!r}", status=401
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance: float,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless one of ``secrets`` signed this body recently."""
    if not secrets:
        raise WebhookVerificationError("zendesk: no webhook_secret configured to verify webhooks", status=401)
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER)
    stamp = lowered.get(TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise WebhookVerificationError(
            "zendesk: missing X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp header",
            status=401,
        )
    check_timestamp(_timestamp(stamp), tolerance=tolerance, now=now)
    expected = [hmac_sha256_b64(secret, stamp.encode() + body) for secret in secrets]
    if not matches_any(expected, [signature.strip()]):
        raise WebhookVerificationError("zendesk: webhook signature does not match", status=401)


def parse(body: bytes, served: Iterable[str]) -> list[WebhookHint]:
    """Hints for an event about a served object type; ValueError (with the reason) if malformed."""
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"zendesk webhook body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise ValueError(f"zendesk webhook body must be a JSON object, not {type(event).__name__}")
    kind = event.get("type")
    if not isinstance(kind, str) or not kind.startswith(EVENT_PREFIX) or "." not in kind:
        raise ValueError("zendesk webhook event has no zen:event-type:<resource>.<change> type")
    resource, _, change = kind[len(EVENT_PREFIX) :].partition(".")
    obj = OBJECT_OF_RESOURCE.get(resource)
    if obj is None or obj not in set(served):
        return []
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("zendesk webhook event has no id")
    detail = event.get("detail")
    record_id = detail.get("id") if isinstance(detail, dict) else None
    if record_id is None:
        subject = event.get("subject")
        if isinstance(subject, str) and subject.startswith(f"zen:{resource}:"):
            record_id = subject.rsplit(":", 1)[1]
    if (
        isinstance(record_id, bool)
        or not isinstance(record_id, int | str)
        or not str(record_id).strip().isdigit()
    ):
        raise ValueError(
            f"zendesk webhook event {event_id}: no numeric {resource} id in detail.id or subject"
        )
    occurred = event.get("time")
    when = None
    if isinstance(occurred, str):
        try:
            when = datetime.fromisoformat(occurred.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"zendesk webhook event {event_id}: time is not ISO-8601") from None
    deleted = change in _DELETING
    current = (event.get("event") or {}).get("current") if isinstance(event.get("event"), dict) else None
    if change == "active_changed" and current is False:
        deleted = True
    return [
        WebhookHint(
            event_id=f"zendesk:{event_id}",
            object=obj,
            record_id=str(record_id).strip(),
            deleted=deleted,
            occurred_at=when,
        )
    ]
