"""Zendesk users and organizations as ``RemoteRecord``s, and write payloads from ``WriteItem``s.

A record's ``fields`` are the object as Zendesk returns it (``user_fields.plan`` is a mapping
path like any other), plus, for users, the read-only ``organization.name`` the connector resolves
from ``organization_id``. Zendesk timestamps have whole seconds, so two writes in one second
share an ``updated_at``: the version is ``updated_at`` plus a digest of the content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from syncd.connector import PermanentError, RemoteRecord

#: The derived, read-only field holding the name of a user's organization.
ORGANIZATION = "organization"
#: Fields left out of the version digest: they change without the record's content changing.
_VOLATILE = {"updated_at", "last_login_at", ORGANIZATION}

USER_WRITABLE = frozenset(
    {
        "name",
        "email",
        "phone",
        "external_id",
        "organization_id",
        "role",
        "tags",
        "user_fields",
        "notes",
        "details",
        "alias",
        "time_zone",
        "locale",
        "verified",
        "shared_phone_number",
    }
)
ORGANIZATION_WRITABLE = frozenset(
    {
        "name",
        "external_id",
        "domain_names",
        "tags",
        "details",
        "notes",
        "group_id",
        "shared_tickets",
        "shared_comments",
        "organization_fields",
    }
)
USER_FIELDS = (
    "name",
    "email",
    "phone",
    "external_id",
    "organization_id",
    "organization.name",
    "role",
    "tags",
    "user_fields",
    "notes",
    "details",
    "time_zone",
    "locale",
    "active",
    "created_at",
    "updated_at",
)
ORGANIZATION_FIELDS = (
    "name",
    "external_id",
    "domain_names",
    "tags",
    "details",
    "notes",
    "created_at",
    "updated_at",
)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def version_of(fields: Mapping[str, Any]) -> str:
    content = {k: v for k, v in fields.items() if k not in _VOLATILE}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{fields.get('updated_at') or ''}#{digest}"


def to_record(
    data: Mapping[str, Any], *, organization_name: str | None = None, resolve: bool = False
) -> RemoteRecord:
    """A user or organization object as a record; users are tombstones once ``active`` is false."""
    fields = dict(data)
    if resolve:
        fields[ORGANIZATION] = {"name": organization_name}
    return RemoteRecord(
        id=str(data["id"]),
        fields=fields,
        version=version_of(fields),
        updated_at=parse_time(data.get("updated_at")),
        deleted=data.get("active") is False,
    )


def payload(fields: Mapping[str, Any], writable: frozenset[str], what: str) -> dict[str, Any]:
    """The JSON object to send for ``fields``; a PermanentError names any field that cannot be written."""
    if ORGANIZATION in fields:
        raise PermanentError(
            f"zendesk: {ORGANIZATION}.name is derived from organization_id and read-only; "
            f'map it with direction = "in" (write organization_id instead)'
        )
    unknown = sorted(set(fields) - writable)
    if unknown:
        raise PermanentError(f"zendesk: {what} fields {unknown} are read-only or unknown")
    out = dict(fields)
    for key in ("user_fields", "organization_fields"):
        if key in out and not isinstance(out[key], Mapping):
            raise PermanentError(f"zendesk: {key} must be an object keyed by field key")
        if key in out:
            out[key] = dict(out[key])
    if "organization_id" in out and out["organization_id"] not in (None, ""):
        try:
            out["organization_id"] = int(out["organization_id"])
        except (TypeError, ValueError):
            raise PermanentError("zendesk: organization_id must be an integer id") from None
    return out
