"""HubSpot webhooks: v3 signature verification and parsing of event batches into hints.

HubSpot signs ``method + URI + raw body + timestamp`` with the app's client secret
(HMAC-SHA256, base64) and sends the millisecond timestamp in ``X-HubSpot-Request-Timestamp``.
The URI is the full URL HubSpot called, with a fixed list of percent-escapes decoded. Behind a
proxy the URL syncd sees differs from the one HubSpot called, so the configured public
``webhook_url`` is accepted as the signed URI too.

A delivery is a JSON array of up to 100 events. Each event becomes a hint to re-read the record;
deletions (``deletion``, ``privacyDeletion``) are marked deleted. A ``merge`` becomes one hint
for the record that holds the merged data (``newObjectId``, else ``primaryObjectId``) whose
``replaces`` names every other id of the event, so syncd moves their links instead of deleting
anything. A deletion of an id that a merge in the same delivery absorbed is dropped: the record
lives on in the survivor. Event ids are not unique on their own, so the hint's ``event_id``
combines the event's identifying fields (but not ``attemptNumber``, so a redelivery
de-duplicates).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from syncd.connector import WebhookHint, WebhookVerificationError
from syncd.connector.webhooks import check_timestamp, hmac_sha256_b64, matches_any

SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"

_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")

#: Webhook object prefixes and the connector's object names.
OBJECT_OF_PREFIX = {"contact": "contacts", "company": "companies"}
_DELETING = {"deletion", "privacyDeletion"}
#: Event kinds that say nothing about the record's own fields.
_IGNORED = {"associationChange"}


def signed_uri(url: str) -> str:
    """``url`` with the percent-escapes HubSpot decodes before signing."""
    return _ESCAPE.sub(lambda m: _DECODED.get(m.group(0).upper(), m.group(0)), url)


def signature_headers(
    headers: Mapping[str, str], secrets: Sequence[str], *, tolerance: float, now: float | None = None
) -> tuple[str, str]:
    """The signature and timestamp headers, once present, well-formed and fresh (no body needed)."""
    if not secrets:
        raise WebhookVerificationError("hubspot: no client_secret configured to verify webhooks", status=401)
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER)
    stamp = lowered.get(TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise WebhookVerificationError(
            "hubspot: missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header", status=401
        )
    if not stamp.strip().isdigit():
        raise WebhookVerificationError(f"hubspot: malformed webhook timestamp {stamp[:40]!r}", status=401)
    check_timestamp(int(stamp) / 1000, tolerance=tolerance, now=now)
    return signature, stamp


def verify(
    method: str,
    urls: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance: float,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless one secret signed this request for one of ``urls``."""
    signature, stamp = signature_headers(headers, secrets, tolerance=tolerance, now=now)
    verb = method.upper().encode()
    expected = [
        hmac_sha256_b64(secret, verb + uri.encode() + body + stamp.encode())
        for secret in secrets
        for uri in dict.fromkeys(signed_uri(u) for u in urls if u)
    ]
    if not matches_any(expected, [signature.strip()]):
        raise WebhookVerificationError("hubspot: webhook signature does not match", status=401)


def parse(body: bytes, served: Iterable[str]) -> list[WebhookHint]:
    """Hints for the events about served object types; ValueError (with the reason) if malformed."""
    try:
        events = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"hubspot webhook body is not JSON: {exc}") from exc
    if not isinstance(events, list):
        raise ValueError(f"hubspot webhook body must be a JSON array of events, not {type(events).__name__}")
    wanted = set(served)
    hints: list[WebhookHint] = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise ValueError(f"hubspot webhook event {index} is not an object")
        kind = event.get("subscriptionType") or event.get("eventType")
        if not isinstance(kind, str) or "." not in kind:
            raise ValueError(f"hubspot webhook event {index} has no subscriptionType/eventType")
        prefix, _, action = kind.partition(".")
        obj = OBJECT_OF_PREFIX.get(prefix)
        if obj is None or obj not in wanted or action in _IGNORED:
            continue
        hints.extend(_hints(event, index, obj, action))
    absorbed = {(h.object, i) for h in hints for i in h.replaces}
    return [h for h in hints if not (h.deleted and (h.object, h.record_id) in absorbed)]


def changes(body: bytes, served: Iterable[str]) -> list[dict[str, Any]]:
    """What each event of a delivery (already parsed by ``parse``) says, for ``KnownRecords``.

    One entry per record an event names: ``object``, ``action``, ``record_id`` and, for a
    ``propertyChange``, ``property``, ``value`` and ``occurred_ms``. A merge names every id it
    involves.
    """
    events = json.loads(body)
    wanted = set(served)
    out: list[dict[str, Any]] = []
    for event in events if isinstance(events, list) else []:
        kind = event.get("subscriptionType") or event.get("eventType") if isinstance(event, dict) else None
        if not isinstance(kind, str):
            continue
        prefix, _, action = kind.partition(".")
        obj = OBJECT_OF_PREFIX.get(prefix)
        if obj is None or obj not in wanted or action in _IGNORED:
            continue
        ids = [event.get(k) for k in ("objectId", "primaryObjectId", "newObjectId")]
        ids += list(event.get("mergedObjectIds") or [])
        for record_id in dict.fromkeys(str(i).strip() for i in ids if i is not None):
            entry: dict[str, Any] = {"object": obj, "action": action, "record_id": record_id}
            # The event's value stands in for a re-read only when it carries one: an event without
            # ``propertyValue`` (or its time) says only that something changed, and is re-read.
            if (
                action == "propertyChange"
                and event.get("occurredAt") is not None
                and "propertyValue" in event
            ):
                entry |= {
                    "property": event.get("propertyName"),
                    "value": event.get("propertyValue"),
                    "occurred_ms": int(event["occurredAt"]),
                }
            out.append(entry)
    return out


def _hints(event: Mapping[str, Any], index: int, obj: str, action: str) -> list[WebhookHint]:
    object_id = _id(event.get("objectId"), index, "objectId")
    occurred = event.get("occurredAt")
    if occurred is not None and not (isinstance(occurred, int | float) or str(occurred).isdigit()):
        raise ValueError(f"hubspot webhook event {index}: occurredAt must be epoch milliseconds")
    when = datetime.fromtimestamp(int(occurred) / 1000, UTC) if occurred is not None else None
    base = ":".join(
        str(event.get(k, ""))
        for k in ("portalId", "subscriptionType", "eventType", "subscriptionId", "eventId")
    )
    identity = f"{base}:{object_id}:{occurred}:{event.get('propertyName', '')}"
    if event.get("eventId") is None:
        raise ValueError(f"hubspot webhook event {index} has no eventId")
    if action == "merge":
        return [_merge_hint(event, index, obj, f"hubspot:{identity}", object_id, when)]
    return [
        WebhookHint(
            event_id=f"hubspot:{identity}",
            object=obj,
            record_id=object_id,
            deleted=action in _DELETING,
            occurred_at=when,
        )
    ]


def _merge_hint(
    event: Mapping[str, Any], index: int, obj: str, event_id: str, object_id: str, when: datetime | None
) -> WebhookHint:
    """Re-read the record holding the merged data; the other ids of the merge are replaced by it."""
    merged = event.get("mergedObjectIds") or []
    if not isinstance(merged, list):
        raise ValueError(f"hubspot webhook event {index}: mergedObjectIds must be a list")
    primary = (
        _id(event["primaryObjectId"], index, "primaryObjectId")
        if event.get("primaryObjectId") is not None
        else None
    )
    new = _id(event["newObjectId"], index, "newObjectId") if event.get("newObjectId") is not None else None
    survivor = new or primary or object_id
    others = [object_id, *([primary] if primary else []), *(_id(m, index, "mergedObjectIds") for m in merged)]
    return WebhookHint(
        event_id=event_id,
        object=obj,
        record_id=survivor,
        occurred_at=when,
        replaces=tuple(i for i in dict.fromkeys(others) if i != survivor),
    )


def _id(value: Any, index: int, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ValueError(f"hubspot webhook event {index}: {field} must be a numeric id, not {value!r}")
    return str(value).strip()
