"""Translation between HubSpot's object JSON and syncd's ``RemoteRecord``/``WriteItem`` shapes.

A record's ``fields`` is ``{"properties": {...}}`` holding exactly the properties the connector
reads (unset ones as None), its ``version`` is HubSpot's ``updatedAt`` string and ``updated_at``
that instant. Every read also asks for ``hs_merged_object_ids`` (the ids merged into the record,
``;``-separated), which becomes ``replaces`` rather than a field. On the way out every property
value becomes the string HubSpot stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from syncd.connector import PermanentError, RemoteRecord, WriteItem

#: The property naming the records merged into this one (HubSpot's name; not in the OpenAPI
#: documents, which list no properties).
MERGED_IDS = "hs_merged_object_ids"


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


def read_names(properties: Sequence[str]) -> list[str]:
    """The properties to ask HubSpot for: the synced ones plus the merged-ids property."""
    return list(dict.fromkeys([*properties, MERGED_IDS]))


def merged_ids(values: Mapping[str, Any], own_id: str) -> tuple[str, ...]:
    """The ids in a ``hs_merged_object_ids`` value, without ``own_id``."""
    raw = values.get(MERGED_IDS)
    if not isinstance(raw, str):
        return ()
    found = (part.strip() for part in raw.split(";"))
    return tuple(dict.fromkeys(i for i in found if i.isdigit() and i != own_id))


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
    record_id = str(obj["id"])
    return RemoteRecord(
        id=record_id,
        fields={"properties": {name: values.get(name) for name in kept}},
        version=str(updated) if updated is not None else None,
        updated_at=parse_time(updated),
        deleted=bool(obj.get("archived", False)),
        replaces=merged_ids(values, record_id),
    )


def credit_requested(records: Sequence[RemoteRecord], requested: Sequence[str]) -> list[RemoteRecord]:
    """``records`` read by id, each once, naming in ``replaces`` a requested id it answered for.

    Reading a merged-away id can answer with the record it was merged into. Its merged-ids
    property normally names the requested id already; when it does not (the property is
    missing), a lone unanswered id is credited to a lone record that was not asked for.
    """
    unique = list({r.id: r for r in records}.values())
    answered = {r.id for r in unique} | {i for r in unique for i in r.replaces}
    unanswered = [i for i in dict.fromkeys(requested) if i not in answered]
    strangers = [r for r in unique if r.id not in requested]
    if len(unanswered) == 1 and len(strangers) == 1:
        stranger = strangers[0]
        credited = replace(stranger, replaces=(*stranger.replaces, unanswered[0]))
        return [credited if r is stranger else r for r in unique]
    return unique


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
