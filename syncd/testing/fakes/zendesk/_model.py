"""The Zendesk fake's data: users with email identities, organizations, custom user fields, jobs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Most cursor-paginated endpoints cap ``page[size]`` at 100; so do bulk endpoints and show_many.
MAX_PAGE_SIZE = 100
MAX_BULK = 100
#: Incremental exports return up to 1,000 items per page (per_page).
MAX_EXPORT_PAGE = 1000
#: Queued or running jobs per account before ``TooManyJobs``.
MAX_JOBS = 30
#: Offset pagination beyond this many records fails with ``InvalidPaginationDepth``.
OFFSET_DEPTH = 10_000
#: Items changed within this many seconds before an export request are left out of it.
EXPORT_EXCLUSION_SECONDS = 60

ROLES = ("end-user", "agent", "admin")
FIELD_TYPES = ("text", "textarea", "checkbox", "date", "integer", "decimal", "regexp", "dropdown")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def iso_s(ms: int) -> str:
    """Zendesk's timestamp format: ISO-8601 UTC to the second with ``Z``."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Zendesk-Webhook-Signature``: base64 HMAC-SHA256 of the timestamp header followed by the body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def encode_cursor(position: tuple[int, int]) -> str:
    """An opaque export cursor: the (updated_at seconds, id) of the last item handed out."""
    raw = json.dumps({"t": position[0], "i": position[1]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(token: str) -> tuple[int, int] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return int(data["t"]), int(data["i"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Identity:
    """One email identity of a user (the primary one is the user's ``email``)."""

    id: int
    user_id: int
    value: str
    primary: bool
    verified: bool
    created_ms: int
    updated_ms: int

    def to_json(self, base: str) -> dict[str, Any]:
        return {
            "url": f"{base}/api/v2/users/{self.user_id}/identities/{self.id}.json",
            "id": self.id,
            "user_id": self.user_id,
            "type": "email",
            "value": self.value,
            "verified": self.verified,
            "primary": self.primary,
            "created_at": iso_s(self.created_ms),
            "updated_at": iso_s(self.updated_ms),
            "undeliverable_count": 0,
            "deliverable_state": "deliverable",
        }


@dataclass
class UserField:
    """A custom user field definition (``/api/v2/user_fields``)."""

    id: int
    key: str
    title: str
    type: str = "text"
    options: tuple[str, ...] = ()
    created_ms: int = 0

    def to_json(self, base: str) -> dict[str, Any]:
        stamp = iso_s(self.created_ms)
        body: dict[str, Any] = {
            "url": f"{base}/api/v2/user_fields/{self.id}.json",
            "id": self.id,
            "type": self.type,
            "key": self.key,
            "title": self.title,
            "description": "",
            "position": self.id,
            "active": True,
            "system": False,
            "created_at": stamp,
            "updated_at": stamp,
        }
        if self.options:
            body["custom_field_options"] = [
                {"id": self.id * 100 + n, "name": o, "value": o} for n, o in enumerate(self.options)
            ]
        return body


@dataclass
class User:
    id: int
    name: str
    role: str
    created_ms: int
    updated_ms: int
    identities: list[Identity] = field(default_factory=list)
    phone: str | None = None
    external_id: str | None = None
    organization_id: int | None = None
    tags: list[str] = field(default_factory=list)
    user_fields: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    details: str = ""
    alias: str = ""
    time_zone: str = "UTC"
    locale: str = "en-US"
    verified: bool = False
    suspended: bool = False
    active: bool = True
    #: Set by a permanent deletion: the record stays as a "Permanently Deleted User" husk.
    erased: bool = False

    @property
    def email(self) -> str | None:
        for identity in self.identities:
            if identity.primary:
                return identity.value
        return None

    def to_json(self, base: str, fields: list[UserField]) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": f"{base}/api/v2/users/{self.id}.json",
            "name": self.name,
            "email": self.email,
            "created_at": iso_s(self.created_ms),
            "updated_at": iso_s(self.updated_ms),
            "time_zone": self.time_zone,
            "iana_time_zone": "Etc/UTC" if self.time_zone == "UTC" else self.time_zone,
            "phone": self.phone,
            "shared_phone_number": None,
            "photo": None,
            "locale_id": 1,
            "locale": self.locale,
            "organization_id": self.organization_id,
            "role": self.role,
            "verified": self.verified,
            "external_id": self.external_id,
            "tags": list(self.tags),
            "alias": self.alias,
            "active": self.active,
            "shared": False,
            "shared_agent": False,
            "last_login_at": None,
            "two_factor_auth_enabled": False,
            "signature": None,
            "details": self.details,
            "notes": self.notes,
            "role_type": None,
            "custom_role_id": None,
            "moderator": self.role != "end-user",
            "ticket_restriction": "requested" if self.role == "end-user" else None,
            "only_private_comments": False,
            "restricted_agent": self.role == "agent",
            "suspended": self.suspended,
            "default_group_id": None,
            "report_csv": False,
            "user_fields": {f.key: self.user_fields.get(f.key) for f in fields},
        }


@dataclass
class Organization:
    id: int
    name: str
    created_ms: int
    updated_ms: int
    external_id: str | None = None
    domain_names: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    details: str = ""
    notes: str = ""
    group_id: int | None = None
    shared_tickets: bool = False
    shared_comments: bool = False
    organization_fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self, base: str) -> dict[str, Any]:
        return {
            "url": f"{base}/api/v2/organizations/{self.id}.json",
            "id": self.id,
            "name": self.name,
            "shared_tickets": self.shared_tickets,
            "shared_comments": self.shared_comments,
            "external_id": self.external_id,
            "created_at": iso_s(self.created_ms),
            "updated_at": iso_s(self.updated_ms),
            "domain_names": list(self.domain_names),
            "details": self.details,
            "notes": self.notes,
            "group_id": self.group_id,
            "tags": list(self.tags),
            "organization_fields": dict(self.organization_fields),
        }


@dataclass
class Job:
    """An asynchronous bulk job: queued, then working, then completed with one result per item."""

    id: str
    total: int
    #: Runs the job's work when it completes; returns the per-item results.
    work: Any
    created_ms: int
    status: str = "queued"
    progress: int = 0
    results: list[dict[str, Any]] | None = None
    message: str | None = None
    #: Held jobs stay queued until released (another integration's long-running import).
    held: bool = False

    @property
    def open(self) -> bool:
        return self.status in ("queued", "working")

    def to_json(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": f"{base}/api/v2/job_statuses/{self.id}.json",
            "total": self.total,
            "progress": self.progress,
            "status": self.status,
            "message": self.message,
            "results": self.results,
        }
