"""Stripe customers as syncd records, and the payloads written back.

``RemoteRecord.fields`` keeps the customer fields that sync — ``email``, ``name``, ``phone``,
``description``, ``address``, ``shipping``, ``metadata``, ``preferred_locales`` — plus read-only
context: ``currency``, ``balance``, ``delinquent``, ``created`` and, when enabled, the derived
``billing`` object (see ``_billing``). Stripe has no last-modified time on customers, so the
version is a digest of these fields: it changes exactly when one of them does.

Empty strings read as None and metadata keys holding ``""`` are left out: that is what a
cleared field looks like in Stripe's answers (and what localstripe leaves behind), so a value
syncd cleared reads back as it was written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from syncd.connector import ConnectorError, PermanentError, RemoteRecord

from ._billing import BILLING_FIELDS

#: Fields syncd may write.
WRITABLE = ("email", "name", "phone", "description", "address", "shipping", "metadata", "preferred_locales")
#: Fields that are read-only context.
READ_ONLY = ("currency", "balance", "delinquent", "created", "billing")
#: Every path a mapping can use (the billing object by its leaves).
FIELDS = (
    *WRITABLE,
    *(name for name in READ_ONLY if name != "billing"),
    *(f"billing.{name}" for name in BILLING_FIELDS),
)
_TEXT = ("email", "name", "phone", "description")


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _object(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    cleaned = {str(k): (None if v == "" else v) for k, v in value.items()}
    return cleaned if any(v is not None for v in cleaned.values()) else None


def version_of(fields: Mapping[str, Any]) -> str:
    """A digest of a record's fields: its version (Stripe customers carry no updated-at)."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def customer_fields(customer: Mapping[str, Any], billing: Mapping[str, Any] | None) -> dict[str, Any]:
    metadata = customer.get("metadata")
    fields: dict[str, Any] = {name: _text(customer.get(name)) for name in _TEXT}
    fields["address"] = _object(customer.get("address"))
    fields["shipping"] = _object(customer.get("shipping"))
    fields["metadata"] = (
        {str(k): str(v) for k, v in metadata.items() if v not in ("", None)}
        if isinstance(metadata, Mapping)
        else {}
    )
    locales = customer.get("preferred_locales")
    fields["preferred_locales"] = [str(x) for x in locales] if isinstance(locales, list) else []
    fields["currency"] = _text(customer.get("currency"))
    fields["balance"] = customer.get("balance")
    fields["delinquent"] = bool(customer.get("delinquent"))
    fields["created"] = customer.get("created")
    if billing is not None:
        fields["billing"] = dict(billing)
    return fields


def is_deleted(customer: Mapping[str, Any]) -> bool:
    return customer.get("deleted") is True


def to_record(customer: Mapping[str, Any], billing: Mapping[str, Any] | None = None) -> RemoteRecord:
    """The record of a customer JSON object (a ``deleted: true`` stub becomes a tombstone)."""
    try:
        customer_id = str(customer["id"])
    except (KeyError, TypeError) as exc:
        raise ConnectorError(f"stripe: customer payload without an id ({type(exc).__name__})") from exc
    if is_deleted(customer):
        return tombstone(customer_id)
    fields = customer_fields(customer, billing)
    return RemoteRecord(id=customer_id, fields=fields, version=version_of(fields))


def tombstone(customer_id: str) -> RemoteRecord:
    return RemoteRecord(id=customer_id, fields={}, deleted=True)


def check_writable(fields: Mapping[str, Any]) -> None:
    """Refuse (for this item only) a write to a read-only or unknown field."""
    read_only = sorted(k for k in fields if k in READ_ONLY)
    if read_only:
        raise PermanentError(
            f"stripe: {', '.join(read_only)} is read-only (derived by Stripe or from subscriptions "
            "and invoices); remove it from the mapping's outbound fields"
        )
    unknown = sorted(k for k in fields if k not in WRITABLE)
    if unknown:
        raise PermanentError(f"stripe: customers have no writable field {', '.join(unknown)}")


def _merged(current: Any, wanted: Any) -> Any:
    """A nested object to send whole: the current one with the wanted leaves applied."""
    if not isinstance(wanted, Mapping):
        return wanted
    base = dict(current) if isinstance(current, Mapping) else {}
    for key, value in wanted.items():
        base[key] = _merged(base.get(key), value)
    return base


def update_payload(current: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The form fields of an update: only what changes; nested objects are sent whole."""
    payload: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "metadata":
            if not isinstance(value, Mapping):
                raise PermanentError("stripe: metadata must be an object of strings")
            have = current.get("metadata") or {}
            changed = {k: v for k, v in value.items() if (have.get(k) or None) != (v or None)}
            if changed:
                payload["metadata"] = changed
        elif key in ("address", "shipping"):
            merged = _merged(current.get(key), value)
            if merged != current.get(key):
                payload[key] = {k: v for k, v in merged.items() if v is not None} or None
        elif (current.get(key) or None) != (value or None):
            payload[key] = value
    return payload
