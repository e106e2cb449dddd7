"""Member identity and the record shape syncd sees.

A member's id is the subscriber hash: the MD5 of the lowercased email address, so it can be
computed from an email without a lookup (and changes when the email does). ``RemoteRecord.fields``
keeps the part of Mailchimp's member JSON that syncs: ``email_address``, ``status``,
``merge_fields``, ``tags`` (sorted tag names, a set in effect) and ``last_changed``, which is
also the version. Archived members come back as tombstones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from syncd.connector import ConnectorError, RemoteRecord

FIELDS = ("email_address", "status", "merge_fields", "tags", "last_changed")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id for ``email`` (case and surrounding spaces do not matter)."""
    return hashlib.md5(normalise_email(email).encode("utf-8"), usedforsecurity=False).hexdigest()


def parse_time(value: str) -> datetime:
    """An ISO-8601 ``last_changed``; one without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """The form Mailchimp's ``since_last_changed`` takes: ``2026-01-01T09:00:00+00:00``."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def tag_names(member: Mapping[str, Any]) -> list[str]:
    return sorted({str(tag["name"]) for tag in member.get("tags") or [] if isinstance(tag, Mapping)})


def to_record(member: Mapping[str, Any]) -> RemoteRecord:
    """The ``RemoteRecord`` of a member JSON object from the API."""
    try:
        member_id = str(member["id"])
        last_changed = str(member["last_changed"])
        fields = {
            "email_address": str(member["email_address"]),
            "status": str(member["status"]),
            "merge_fields": dict(member.get("merge_fields") or {}),
            "tags": tag_names(member),
            "last_changed": last_changed,
        }
        updated_at = parse_time(last_changed)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConnectorError(f"mailchimp: unexpected member payload ({type(exc).__name__}: {exc})") from exc
    return RemoteRecord(
        id=member_id,
        fields=fields,
        version=last_changed,
        updated_at=updated_at,
        deleted=fields["status"] == "archived",
        # The member id is the hash of the email and changes with it; the contact id stays.
        alias=str(member["contact_id"]) if member.get("contact_id") else None,
    )
