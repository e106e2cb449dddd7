"""Translation between HubSpot's object JSON and syncd's ``RemoteRecord``/``WriteItem`` shapes.

A record's ``fields`` is ``{"properties": {...}}`` holding exactly the properties the connector
reads (unset ones as None), its ``version`` is HubSpot's ``updatedAt`` string and ``updated_at``
that instant. On the way out every property value becomes the string HubSpot stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from syncd.connector import PermanentError, RemoteRecord, WriteItem


def parse_time(value: Any) -> datetime | None:
    """A HubSpot timestamp (ISO-8601 ``...Z`` or epoch milliseconds) as an aware datetime."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def to_record(
    obj: Mapping[str, Any], properties: Sequence[str], *, present_only: bool = False
) -> RemoteRecord:
    """A ``RemoteRecord`` from a ``SimplePublicObject``, keeping only ``properties``.

    Reads report every wanted property (None when unset). Write responses carry only what was
    written, so with ``present_only`` the properties the response does not mention are left out
    rather than reported as None (which would read as "cleared").
    """
    values = obj.get("properties") or {}
    updated = obj.get("updatedAt")
    kept = [n for n in properties if n in values] if present_only else list(properties)
    return RemoteRecord(
        id=str(obj["id"]),
        fields={"properties": {name: values.get(name) for name in kept}},
        version=str(updated) if updated is not None else None,
        updated_at=parse_time(updated),
        deleted=bool(obj.get("archived", False)),
    )


def modified_ms(obj: Mapping[str, Any], last_modified: str) -> int | None:
    """When the object was last modified, in epoch ms (its last-modified property, else ``updatedAt``)."""
    values = obj.get("properties") or {}
    moment = parse_time(values.get(last_modified)) or parse_time(obj.get("updatedAt"))
    return epoch_ms(moment) if moment is not None else None


def wire_value(value: Any) -> str:
    """The string HubSpot stores for a value: ``""`` clears, lists join with ``;`` (multi-checkbox)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ";".join(str(v) for v in value)
    raise ValueError(f"{type(value).__name__} is not a value HubSpot can store")


def wire_properties(item: WriteItem, app: str) -> dict[str, str]:
    """The ``properties`` body of a write; PermanentError if the item's fields have another shape."""
    extra = sorted(set(item.fields) - {"properties"})
    if extra:
        raise PermanentError(f"{app}: HubSpot records only have properties.*, not {extra}")
    raw = item.fields.get("properties") or {}
    if not isinstance(raw, Mapping):
        raise PermanentError(f"{app}: fields.properties must be a mapping, not {type(raw).__name__}")
    try:
        return {str(name): wire_value(value) for name, value in raw.items()}
    except ValueError as exc:
        raise PermanentError(f"{app}: {exc}") from exc
