"""A faithful fake of the Mailchimp Marketing API v3 (audiences, members, tags, merge fields, webhooks).

It serves the real paths under ``/3.0`` with HTTP Basic auth (any user, the API key as password),
offset paging (``count`` <= 1000), member ids that are the MD5 of the lowercased email (so changing
the email changes the id), problem-detail errors (``Member Exists``, ``Forgotten Email Not
Subscribed``, ``Invalid Resource`` with ``errors[]``), batch subscribe (``POST /lists/{id}``, up to
500 members, ``update_existing``, ``sync_tags``) with per-member errors and the same validation as
single-member writes, a
limit of 10 simultaneous requests (429), bodiless 429/403 throttling, and form-encoded webhooks
filtered by event type and by source (``user``/``admin``/``api``; writes through this API are
``api``). Where Mailchimp's behaviour is not documented the fake makes a choice and says so
("assumed"): ``since_last_changed`` is exclusive, archived members are listed only with
``status=archived``, and tag changes do not bump ``last_changed`` unless asked to. Response
trimming (``fields``/``exclude_fields``) is accepted and ignored.

Tests play the person or the account admin through the backdoor (``seed``, ``edit``, ``member``)
and drive time with a frozen ``FakeClock`` (``syncd.testing.fakes``). Run it alone with
``python -m syncd.testing.fakes.mailchimp --port 8101 --api-key KEY-us1 --list-id LIST``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import re
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from ._clock import FakeClock
from ._server import FakeApp

API_ROOT = "/3.0"
MAX_COUNT = 1000
DEFAULT_COUNT = 10
MAX_BATCH_MEMBERS = 500
MAX_IN_FLIGHT = 10
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")
#: Statuses a client may set (``archived`` comes from DELETE).
WRITABLE_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
SOURCES = ("user", "admin", "api")
SORT_FIELDS = ("timestamp_opt", "timestamp_signup", "last_changed")
MERGE_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
ERROR_DOC_URL = "https://mailchimp.com/developer/marketing/docs/errors/"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
VALIDATOR_USER_AGENT = "MailChimp.com WebHook Validator"

Source = Literal["user", "admin", "api"]
ThrottleStyle = Literal["json", "empty", "403-empty"]

_NOT_VALIDATED = (
    "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
)
_EMAIL_SYNTAX = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_MERGE_TAG = re.compile(r"^[A-Z0-9_]{1,10}$")
_BIRTHDAY = re.compile(r"^(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 hex digest of the lowercased email address."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def format_time(value: datetime) -> str:
    """Mailchimp's ISO-8601 form with an explicit offset: ``2026-01-01T10:00:00+00:00``."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


class Problem(Exception):
    """An API error, rendered as Mailchimp's problem-detail JSON."""

    def __init__(
        self, status: int, title: str, detail: str, errors: Sequence[Mapping[str, str]] | None = None
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors or [])

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": ERROR_DOC_URL,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": str(uuid.uuid4()),
        }
        if self.errors:
            body["errors"] = self.errors
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, content_type="application/problem+json")


def _invalid(detail: str = _NOT_VALIDATED, errors: Sequence[Mapping[str, str]] | None = None) -> Problem:
    return Problem(400, "Invalid Resource", detail, errors)


def _not_found() -> Problem:
    return Problem(404, "Resource Not Found", "The requested resource could not be found.")


@dataclass
class MergeField:
    merge_id: int
    tag: str
    name: str
    type: str = "text"
    required: bool = False
    default_value: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self, list_id: str) -> dict[str, Any]:
        return {
            "merge_id": self.merge_id,
            "tag": self.tag,
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default_value": self.default_value,
            "public": True,
            "display_order": self.merge_id,
            "options": self.options,
            "help_text": "",
            "list_id": list_id,
        }


@dataclass
class Member:
    email: str
    status: str
    merge_fields: dict[str, Any]
    tags: list[str]
    seq: int
    unique_email_id: str
    contact_id: str
    web_id: int
    last_changed: datetime
    timestamp_signup: datetime | None = None
    timestamp_opt: datetime | None = None
    email_type: str = "html"
    language: str = ""
    vip: bool = False
    #: What the status was before an archive, so a re-add cannot launder an unsubscribe.
    status_before_archive: str | None = None

    @property
    def id(self) -> str:
        return subscriber_hash(self.email)


@dataclass
class Webhook:
    id: str
    url: str
    events: dict[str, bool]
    sources: dict[str, bool]

    def to_json(self, list_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": dict(self.events),
            "sources": dict(self.sources),
            "list_id": list_id,
            "_links": [],
        }


@dataclass
class Audience:
    id: str
    name: str
    members: dict[str, Member] = field(default_factory=dict)
    #: Hashes of permanently deleted addresses: they can never be imported again.
    forgotten: set[str] = field(default_factory=set)
    merge_fields: dict[str, MergeField] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    tag_ids: dict[str, int] = field(default_factory=dict)


def _default_merge_fields() -> dict[str, MergeField]:
    fields = [
        MergeField(1, "FNAME", "First Name"),
        MergeField(2, "LNAME", "Last Name"),
        MergeField(3, "ADDRESS", "Address", "address"),
        MergeField(4, "PHONE", "Phone Number", "phone"),
        MergeField(5, "BIRTHDAY", "Birthday", "birthday"),
    ]
    return {f.tag: f for f in fields}


def _php_pairs(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
    """Flatten nested data into PHP-style bracket keys (``data[merges][FNAME]``)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _php_pairs(f"{prefix}[{key}]", inner)
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            yield from _php_pairs(f"{prefix}[{index}]", inner)
    elif isinstance(value, bool):
        yield prefix, "1" if value else "0"
    else:
        yield prefix, "" if value is None else str(value)


def _parse_time(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(
            errors=[{"field": name, "message": f"{value!r} is not an ISO-8601 date-time"}]
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _query_int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(errors=[{"field": name, "message": "must be an integer"}]) from None
    if value < 0:
        raise _invalid(errors=[{"field": name, "message": "must not be negative"}])
    return value


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.") from None
    if not isinstance(body, dict):
        raise Problem(400, "JSON Parse Error", "The request body must be a JSON object.")
    return body


class MailchimpFake(FakeApp):
    """The Mailchimp Marketing API v3 fake. See the module docstring for what it reproduces."""

    name = "mailchimp"

    def __init__(
        self,
        *,
        api_key: str = "0123456789abcdef0123456789abcdef-us1",
        list_ids: Sequence[str] = ("a1b2c3d4e5",),
        clock: Callable[[], datetime] | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        tags_bump_last_changed: bool = False,
        fake_domains: Iterable[str] = ("example.com", "example.org", "example.net", "test.com"),
    ) -> None:
        if not list_ids:
            raise ValueError("the fake needs at least one audience")
        self.api_key = api_key
        self.clock: Callable[[], datetime] = clock or FakeClock()
        self.max_in_flight = max_in_flight
        self.tags_bump_last_changed = tags_bump_last_changed
        self.fake_domains = {d.lower() for d in fake_domains}
        self.lists: dict[str, Audience] = {
            list_id: Audience(list_id, f"Audience {list_id}", merge_fields=_default_merge_fields())
            for list_id in list_ids
        }
        self.default_list_id = list_ids[0]
        #: Addresses that were sent a double opt-in confirmation email, in order.
        self.confirmations: list[str] = []
        #: Each member a batch subscribe created or updated, in order: (email, "created" or "updated").
        self.batch_members: list[tuple[str, str]] = []
        #: Every change of a member, in order: (its new ``last_changed``, email, source, merge fields).
        self.history: list[tuple[datetime, str, str, dict[str, Any]]] = []
        #: Requests refused because ``max_in_flight`` requests were already running.
        self.throttled = 0
        #: How injected 429s look, used in turn: JSON problem, empty 429, empty 403.
        self.throttle_styles: list[ThrottleStyle] = ["json", "empty"]
        self.in_flight = 0
        self._throttle_turn = itertools.count()
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._gate = asyncio.Event()
        self._gate.set()
        self._changed = asyncio.Event()
        self._implicit_hook: str | None = None
        super().__init__()
        self.app.middlewares.append(self._mailchimp_middleware)

    # -- webhook_url compatibility -------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        """Always "": each delivery carries its registered webhook's full URL as the suffix.

        Assigning a URL registers it as a webhook on the default audience with every event and
        source enabled (``None`` removes it), so code written for other fakes keeps working.
        """
        return ""

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        audience = self.lists[self.default_list_id]
        if self._implicit_hook is not None:
            audience.webhooks.pop(self._implicit_hook, None)
            self._implicit_hook = None
        if url:
            self._implicit_hook = self.add_webhook(url)

    # -- FakeApp hooks -------------------------------------------------------------------------

    def rate_limit_response(self, request: web.Request) -> web.StreamResponse:
        styles = self.throttle_styles or ["json"]
        style = styles[next(self._throttle_turn) % len(styles)]
        if style == "empty":
            return web.Response(status=429)
        if style == "403-empty":
            return web.Response(status=403)
        return Problem(
            429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."
        ).response()

    def server_error_response(self, request: web.Request) -> web.StreamResponse:
        return Problem(
            500,
            "Internal Server Error",
            "An unexpected internal error has occurred. Please contact Support for more information.",
        ).response()

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        root = API_ROOT
        member = root + "/lists/{list_id}/members/{member}"
        router.add_get(root + "/ping", self._ping)
        router.add_get(root + "/lists", self._get_lists)
        router.add_get(root + "/lists/{list_id}", self._get_list)
        router.add_post(root + "/lists/{list_id}", self._batch_subscribe)
        router.add_get(root + "/lists/{list_id}/members", self._list_members)
        router.add_post(root + "/lists/{list_id}/members", self._add_member)
        router.add_get(member, self._get_member)
        router.add_put(member, self._put_member)
        router.add_patch(member, self._patch_member)
        router.add_delete(member, self._archive_member)
        router.add_post(member + "/actions/delete-permanent", self._delete_permanent)
        router.add_get(member + "/tags", self._get_tags)
        router.add_post(member + "/tags", self._post_tags)
        router.add_get(root + "/lists/{list_id}/merge-fields", self._get_merge_fields)
        router.add_post(root + "/lists/{list_id}/merge-fields", self._add_merge_field_route)
        router.add_get(root + "/lists/{list_id}/webhooks", self._get_webhooks)
        router.add_post(root + "/lists/{list_id}/webhooks", self._add_webhook_route)
        router.add_get(root + "/lists/{list_id}/webhooks/{webhook_id}", self._get_webhook)
        router.add_patch(root + "/lists/{list_id}/webhooks/{webhook_id}", self._patch_webhook)
        router.add_delete(root + "/lists/{list_id}/webhooks/{webhook_id}", self._delete_webhook)

    # -- middleware: concurrency limit, auth, problem bodies -----------------------------------

    @web.middleware
    async def _mailchimp_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.in_flight >= self.max_in_flight:
            self.throttled += 1
            self._changed.set()
            return Problem(
                429,
                "Too Many Requests",
                f"You have exceeded the limit of {self.max_in_flight} simultaneous connections.",
            ).response()
        self.in_flight += 1
        self._changed.set()
        try:
            await self._gate.wait()
            self._authenticate(request)
            return await handler(request)
        except Problem as problem:
            return problem.response()
        except web.HTTPNotFound:
            return _not_found().response()
        except web.HTTPMethodNotAllowed:
            return Problem(
                405, "Method Not Allowed", "The requested method and resource are not compatible."
            ).response()
        finally:
            self.in_flight -= 1
            self._changed.set()

    def _authenticate(self, request: web.Request) -> None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        password = None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            _, sep, password = decoded.partition(":")
            if not sep:
                password = None
        if password != self.api_key:
            raise Problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )

    # -- test controls -------------------------------------------------------------------------

    def pause(self) -> None:
        """Hold every request after it is admitted (it counts as in flight) until ``resume``."""
        self._gate.clear()

    def resume(self) -> None:
        self._gate.set()

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait (no polling sleep) until ``predicate()`` holds after a request starts or ends."""
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    # -- backdoor: the person and the admin acting outside the API -----------------------------

    def audience(self, list_id: str | None = None) -> Audience:
        return self.lists[list_id or self.default_list_id]

    def add_list(self, list_id: str, name: str | None = None) -> Audience:
        audience = Audience(list_id, name or f"Audience {list_id}", merge_fields=_default_merge_fields())
        self.lists[list_id] = audience
        return audience

    def add_merge_field(
        self, tag: str, name: str, type: str = "text", *, required: bool = False, list_id: str | None = None
    ) -> MergeField:
        audience = self.audience(list_id)
        merge_field = MergeField(len(audience.merge_fields) + 1, tag, name, type, required)
        audience.merge_fields[tag] = merge_field
        return merge_field

    def add_webhook(
        self,
        url: str,
        *,
        list_id: str | None = None,
        events: Mapping[str, bool] | None = None,
        sources: Mapping[str, bool] | None = None,
    ) -> str:
        """Register a webhook without the validation GET; returns its id."""
        hook = Webhook(
            id=uuid.uuid4().hex[:10],
            url=url,
            events={e: bool((events or {}).get(e, events is None)) for e in EVENTS},
            sources={s: bool((sources or {}).get(s, sources is None)) for s in SOURCES},
        )
        self.audience(list_id).webhooks[hook.id] = hook
        return hook.id

    def seed(
        self,
        email: str,
        *,
        status: str = "subscribed",
        merge_fields: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        list_id: str | None = None,
        last_changed: datetime | None = None,
    ) -> str:
        """Put a member in place silently (no webhook, no validation); returns its id."""
        audience = self.audience(list_id)
        if subscriber_hash(email) in audience.members:
            raise ValueError(f"{email} is already in audience {audience.id}")
        member = self._new_member(audience, email, status, dict(merge_fields or {}))
        if last_changed is not None:
            member.last_changed = last_changed.replace(microsecond=0)
        for tag in tags:
            self._tag_id(audience, tag)
            member.tags.append(tag)
        return member.id

    def edit(
        self,
        email_or_id: str,
        *,
        source: Source = "admin",
        list_id: str | None = None,
        email: str | None = None,
        status: str | None = None,
        merge_fields: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Change a member as the person (``source="user"``) or an admin would; fires webhooks."""
        audience = self.audience(list_id)
        member = self._find(audience, email_or_id)
        if member is None:
            raise KeyError(email_or_id)
        self._change(
            audience,
            member,
            source=source,
            email=email,
            status=status,
            merge_fields=merge_fields,
            enforce=False,
        )
        if tags is not None:
            wanted = list(dict.fromkeys(tags))
            self._set_tags(audience, member, wanted)
        return self._member_json(audience, member)

    def remove(
        self,
        email_or_id: str,
        *,
        permanent: bool = False,
        source: Source = "admin",
        list_id: str | None = None,
    ) -> None:
        """Archive a member (or delete it permanently) as the admin would; fires the webhook."""
        audience = self.audience(list_id)
        member = self._find(audience, email_or_id)
        if member is None:
            raise KeyError(email_or_id)
        if permanent:
            self._forget(audience, member, source)
        else:
            self._change(audience, member, source=source, status="archived", enforce=False)

    def member(self, email_or_id: str, *, list_id: str | None = None) -> dict[str, Any] | None:
        """The member's API representation, or None if absent (or permanently deleted)."""
        audience = self.audience(list_id)
        member = self._find(audience, email_or_id)
        return None if member is None else self._member_json(audience, member)

    # -- model helpers -------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def _find(self, audience: Audience, email_or_id: str) -> Member | None:
        key = email_or_id if "@" not in email_or_id else subscriber_hash(email_or_id)
        return audience.members.get(key.lower())

    def _tag_id(self, audience: Audience, name: str) -> int:
        return audience.tag_ids.setdefault(name, len(audience.tag_ids) + 1)

    def _new_member(
        self, audience: Audience, email: str, status: str, merge_fields: dict[str, Any]
    ) -> Member:
        now = self._now()
        seq = next(self._seq)
        member = Member(
            email=email.strip(),
            status=status,
            merge_fields=merge_fields,
            tags=[],
            seq=seq,
            unique_email_id=hashlib.sha1(f"{audience.id}:{seq}".encode()).hexdigest()[:10],
            contact_id=hashlib.sha1(f"contact:{seq}".encode()).hexdigest()[:32],
            web_id=100000 + seq,
            last_changed=now,
            timestamp_signup=now if status == "pending" else None,
            timestamp_opt=now if status == "subscribed" else None,
        )
        audience.members[member.id] = member
        return member

    def _member_json(self, audience: Audience, member: Member) -> dict[str, Any]:
        merges = {tag: member.merge_fields.get(tag, "") for tag in audience.merge_fields}
        full_name = " ".join(str(merges.get(t) or "") for t in ("FNAME", "LNAME")).strip()
        link = f"{API_ROOT}/lists/{audience.id}/members/{member.id}"
        return {
            "id": member.id,
            "email_address": member.email,
            "unique_email_id": member.unique_email_id,
            "contact_id": member.contact_id,
            "full_name": full_name,
            "web_id": member.web_id,
            "email_type": member.email_type,
            "status": member.status,
            "merge_fields": merges,
            "interests": {},
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": "",
            "timestamp_signup": format_time(member.timestamp_signup) if member.timestamp_signup else "",
            "ip_opt": "",
            "timestamp_opt": format_time(member.timestamp_opt) if member.timestamp_opt else "",
            "member_rating": 2,
            "last_changed": format_time(member.last_changed),
            "language": member.language,
            "vip": member.vip,
            "email_client": "",
            "location": {"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0, "country_code": ""},
            "source": "API - Generic",
            "tags_count": len(member.tags),
            "tags": [{"id": self._tag_id(audience, t), "name": t} for t in member.tags],
            "list_id": audience.id,
            "_links": [{"rel": "self", "href": link, "method": "GET"}],
        }

    def _check_email(self, email: object) -> str:
        if not isinstance(email, str) or not email.strip():
            raise _invalid(errors=[{"field": "email_address", "message": "This value should not be blank."}])
        email = email.strip()
        if not _EMAIL_SYNTAX.match(email):
            raise _invalid("Please provide a valid email address.")
        local, _, domain = email.lower().rpartition("@")
        if domain in self.fake_domains or local in {"test", "fake", "asdf"}:
            raise _invalid(f"{email} looks fake or invalid, please enter a real email address.")
        return email

    def _check_merge_fields(
        self, audience: Audience, values: object, *, base: Mapping[str, Any], skip: bool
    ) -> dict[str, Any]:
        """Validate merge values written over ``base`` (the member's current values, {} if new).

        Unknown tags and badly typed values are refused; so is a required field left empty,
        unless the request said ``skip_merge_validation=true``.
        """
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise _invalid(
                errors=[{"field": "merge_fields", "message": "must be an object keyed by merge tag"}]
            )
        complete = {**base, **values}
        errors: list[dict[str, str]] = []
        for tag, value in values.items():
            merge_field = audience.merge_fields.get(tag)
            if merge_field is None:
                errors.append(
                    {"field": tag, "message": f"Merge field {tag} does not exist on this audience."}
                )
                continue
            problem = None if value in ("", None) else self._merge_type_problem(merge_field, value)
            if problem:
                errors.append({"field": tag, "message": problem})
        if not skip:
            for merge_field in audience.merge_fields.values():
                if merge_field.required and complete.get(merge_field.tag) in ("", None):
                    errors.append({"field": merge_field.tag, "message": "Please enter a value"})
        if errors:
            raise _invalid("Your merge fields were invalid.", errors)
        return dict(values)

    @staticmethod
    def _merge_type_problem(merge_field: MergeField, value: Any) -> str | None:
        kind = merge_field.type
        if kind == "address":
            required = ("addr1", "city", "state", "zip")
            if not isinstance(value, Mapping) or any(not value.get(k) for k in required):
                return "Please enter a complete address (addr1, city, state and zip)"
            return None
        if isinstance(value, Mapping | list):
            return "Please enter a single value"
        if kind == "number":
            try:
                float(value)
            except (TypeError, ValueError):
                return "Please enter a number"
            return None
        text = str(value)
        if kind == "birthday" and not _BIRTHDAY.match(text):
            return "Please enter the date in MM/DD format"
        if kind == "date" and not _DATE.match(text):
            return "Please enter the date in YYYY-MM-DD format"
        if len(text) > 255:
            return "Value must be 255 characters or fewer"
        return None

    @staticmethod
    def _check_status(email: str, current: str | None, wanted: object) -> str:
        if wanted not in WRITABLE_STATUSES:
            raise _invalid(errors=[{"field": "status", "message": f"Invalid status {wanted!r}"}])
        assert isinstance(wanted, str)
        if (current in ("unsubscribed", "cleaned") and wanted == "subscribed") or (
            current == "cleaned" and wanted == "pending"
        ):
            raise _invalid(
                f"{email} is in a compliance state due to unsubscribe, bounce, or compliance review "
                "and cannot be subscribed."
            )
        return wanted

    def _set_tags(self, audience: Audience, member: Member, wanted: list[str]) -> None:
        if wanted == member.tags:
            return
        for tag in wanted:
            self._tag_id(audience, tag)
        member.tags = wanted
        if self.tags_bump_last_changed:
            member.last_changed = self._now()

    # -- state changes and their webhooks ------------------------------------------------------

    def _create(
        self,
        audience: Audience,
        body: Mapping[str, Any],
        *,
        status: object,
        tags: object,
        skip_merge_validation: bool,
    ) -> Member:
        """Add a new member, or re-add an archived one, through the API (source "api")."""
        email = self._check_email(body.get("email_address"))
        member_id = subscriber_hash(email)
        if member_id in audience.forgotten:
            raise Problem(
                400,
                "Forgotten Email Not Subscribed",
                f"{email} was permanently deleted and cannot be re-imported. "
                "The contact must re-subscribe to get back on the list.",
            )
        existing = audience.members.get(member_id)
        if existing is not None and existing.status != "archived":
            raise Problem(
                400,
                "Member Exists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        previous = existing.status_before_archive if existing is not None else None
        wanted = self._check_status(email, previous, status)
        merges = self._check_merge_fields(
            audience, body.get("merge_fields"), base={}, skip=skip_merge_validation
        )
        tag_names = self._tag_names(tags)
        if existing is not None:
            self._change(audience, existing, source="api", status=wanted, merge_fields=merges, enforce=False)
            member = existing
        else:
            member = self._new_member(audience, email, wanted, merges)
            self._apply_extras(member, body)
            self._fire_status(audience, member, None, "api")
        if tag_names:
            self._set_tags(audience, member, list(dict.fromkeys([*member.tags, *tag_names])))
        return member

    @staticmethod
    def _tag_names(tags: object) -> list[str]:
        if tags is None:
            return []
        if not isinstance(tags, list):
            raise _invalid(errors=[{"field": "tags", "message": "must be an array"}])
        names: list[str] = []
        for tag in tags:
            name = tag.get("name") if isinstance(tag, Mapping) else tag
            if not isinstance(name, str) or not name.strip() or len(name) > 100:
                raise _invalid(errors=[{"field": "tags", "message": f"invalid tag {tag!r}"}])
            names.append(name.strip())
        return names

    @staticmethod
    def _apply_extras(member: Member, body: Mapping[str, Any]) -> None:
        if body.get("email_type") in ("html", "text"):
            member.email_type = str(body["email_type"])
        if isinstance(body.get("language"), str):
            member.language = str(body["language"])
        if isinstance(body.get("vip"), bool):
            member.vip = bool(body["vip"])

    def _change(
        self,
        audience: Audience,
        member: Member,
        *,
        source: Source,
        email: str | None = None,
        status: str | None = None,
        merge_fields: Mapping[str, Any] | None = None,
        enforce: bool = True,
        skip_merge_validation: bool = False,
    ) -> None:
        """Apply an update; bump ``last_changed`` and fire webhooks only if something changed."""
        new_email = self._check_email(email) if (enforce and email is not None) else email
        new_status = member.status
        if status is not None and status != member.status:
            current = member.status_before_archive if member.status == "archived" else member.status
            new_status = self._check_status(member.email, current, status) if enforce else status
        if enforce and merge_fields is not None:
            merge_fields = self._check_merge_fields(
                audience, merge_fields, base=member.merge_fields, skip=skip_merge_validation
            )
        merged = {**member.merge_fields, **(merge_fields or {})}
        old_email, old_status = member.email, member.status
        email_changed = new_email is not None and new_email != member.email
        if email_changed and new_email is not None:
            new_id = subscriber_hash(new_email)
            if new_id != member.id and new_id in audience.members:
                raise Problem(
                    400,
                    "Member Exists",
                    f"{new_email} is already a list member. Use PUT to insert or update list members.",
                )
            if new_id in audience.forgotten:
                raise Problem(400, "Forgotten Email Not Subscribed", f"{new_email} was permanently deleted.")
            del audience.members[member.id]
            member.email = new_email
            audience.members[member.id] = member
        profile_changed = merged != member.merge_fields
        member.merge_fields = merged
        member.status = new_status
        if new_status == "archived" and old_status != "archived":
            member.status_before_archive = old_status
        elif old_status == "archived" and new_status != "archived":
            member.status_before_archive = None
        if not (email_changed or profile_changed or new_status != old_status):
            return
        member.last_changed = self._now()
        self.history.append((member.last_changed, member.email.lower(), source, dict(merged)))
        if new_status == "subscribed" and old_status != "subscribed":
            member.timestamp_opt = member.last_changed
        if email_changed and subscriber_hash(old_email) != member.id:
            self._fire(
                audience,
                "upemail",
                source,
                {
                    "list_id": audience.id,
                    "new_id": member.unique_email_id,
                    "new_email": member.email,
                    "old_email": old_email,
                },
            )
        if profile_changed:
            self._fire(audience, "profile", source, self._event_data(audience, member))
        if new_status != old_status:
            self._fire_status(audience, member, old_status, source)

    def _fire_status(self, audience: Audience, member: Member, old: str | None, source: Source) -> None:
        status = member.status
        if status == "pending":
            member.timestamp_signup = member.last_changed
            self.confirmations.append(member.email)
        elif status == "subscribed":
            self._fire(audience, "subscribe", source, self._event_data(audience, member))
        elif status == "unsubscribed" and old is not None:
            data = {
                **self._event_data(audience, member),
                "action": "unsub",
                "reason": "manual",
                "campaign_id": "",
            }
            self._fire(audience, "unsubscribe", source, data)
        elif status == "cleaned" and old is not None:
            data = {"list_id": audience.id, "campaign_id": "", "reason": "hard", "email": member.email}
            self._fire(audience, "cleaned", source, data)
        elif status == "archived":
            self._fire_deleted(audience, member, source)

    def _forget(self, audience: Audience, member: Member, source: Source) -> None:
        """Permanent delete: the data goes and the address can never be imported again."""
        del audience.members[member.id]
        audience.forgotten.add(member.id)
        self._fire_deleted(audience, member, source)

    def _fire_deleted(self, audience: Audience, member: Member, source: Source) -> None:
        data = {
            **self._event_data(audience, member),
            "action": "delete",
            "reason": "manual",
            "campaign_id": "",
        }
        self._fire(audience, "unsubscribe", source, data)

    def _event_data(self, audience: Audience, member: Member) -> dict[str, Any]:
        merges = {"EMAIL": member.email}
        merges.update({tag: member.merge_fields.get(tag, "") for tag in audience.merge_fields})
        # data[id] is the short unique_email_id in Mailchimp's captures, not the subscriber hash.
        return {
            "id": member.unique_email_id,
            "email": member.email,
            "email_type": member.email_type,
            "ip_opt": "",
            "web_id": member.web_id,
            "merges": merges,
            "list_id": audience.id,
        }

    def _fire(self, audience: Audience, event: str, source: Source, data: Mapping[str, Any]) -> None:
        pairs = [("type", event), ("fired_at", self._now().strftime("%Y-%m-%d %H:%M:%S"))]
        pairs.extend(_php_pairs("data", data))
        body = urlencode(pairs).encode("ascii")
        for hook in audience.webhooks.values():
            if hook.events.get(event) and hook.sources.get(source):
                self.emit(
                    body, {"User-Agent": "MailChimp"}, content_type=FORM_CONTENT_TYPE, url_suffix=hook.url
                )

    # -- route handlers: account and lists -----------------------------------------------------

    def _audience_for(self, request: web.Request) -> Audience:
        audience = self.lists.get(request.match_info["list_id"])
        if audience is None:
            raise _not_found()
        return audience

    def _member_for(self, request: web.Request, audience: Audience) -> Member:
        member = self._find(audience, request.match_info["member"])
        if member is None:
            raise _not_found()
        return member

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"health_status": "Everything's Chimpy!"})

    def _list_json(self, audience: Audience) -> dict[str, Any]:
        counts = {s: sum(1 for m in audience.members.values() if m.status == s) for s in STATUSES}
        return {
            "id": audience.id,
            "web_id": int(subscriber_hash(audience.id)[:5], 16),
            "name": audience.name,
            "double_optin": False,
            "stats": {
                "member_count": counts["subscribed"],
                "unsubscribe_count": counts["unsubscribed"],
                "cleaned_count": counts["cleaned"],
                "total_contacts": sum(counts.values()),
            },
            "_links": [],
        }

    async def _get_lists(self, request: web.Request) -> web.StreamResponse:
        lists = [self._list_json(a) for a in self.lists.values()]
        return web.json_response({"lists": lists, "total_items": len(lists), "_links": []})

    async def _get_list(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._list_json(self._audience_for(request)))

    # -- members -------------------------------------------------------------------------------

    async def _list_members(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        query = request.query
        count = _query_int(request, "count", DEFAULT_COUNT)
        offset = _query_int(request, "offset", 0)
        if count > MAX_COUNT:
            raise _invalid(errors=[{"field": "count", "message": f"must be at most {MAX_COUNT}"}])
        status = query.get("status")
        if status and status not in STATUSES:
            raise _invalid(errors=[{"field": "status", "message": f"unknown status {status!r}"}])
        since = (
            _parse_time("since_last_changed", query["since_last_changed"])
            if query.get("since_last_changed")
            else None
        )
        before = (
            _parse_time("before_last_changed", query["before_last_changed"])
            if query.get("before_last_changed")
            else None
        )
        sort_field = query.get("sort_field")
        sort_dir = (query.get("sort_dir") or "ASC").upper()
        if sort_field and sort_field not in SORT_FIELDS:
            raise _invalid(
                errors=[{"field": "sort_field", "message": f"must be one of {', '.join(SORT_FIELDS)}"}]
            )
        if sort_dir not in ("ASC", "DESC"):
            raise _invalid(errors=[{"field": "sort_dir", "message": "must be ASC or DESC"}])

        members = [
            m
            for m in audience.members.values()
            # Assumed: archived members only show up when asked for by status.
            if (m.status == status if status else m.status != "archived")
            and (since is None or m.last_changed > since)
            and (before is None or m.last_changed < before)
        ]
        if sort_field:
            floor = datetime.min.replace(tzinfo=UTC)

            def key(m: Member) -> tuple[datetime, int]:
                value: datetime | None = getattr(m, sort_field)
                return (value or floor, m.seq)

            members.sort(key=key, reverse=sort_dir == "DESC")
        else:
            members.sort(key=lambda m: m.seq)
        page = members[offset : offset + count]
        return web.json_response(
            {
                "members": [self._member_json(audience, m) for m in page],
                "list_id": audience.id,
                "total_items": len(members),
                "_links": [],
            }
        )

    async def _add_member(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        body = await _json_body(request)
        if "status" not in body:
            raise _invalid(errors=[{"field": "status", "message": "This value should not be blank."}])
        member = self._create(
            audience,
            body,
            status=body.get("status"),
            tags=body.get("tags"),
            skip_merge_validation=request.query.get("skip_merge_validation") == "true",
        )
        return web.json_response(self._member_json(audience, member))

    async def _get_member(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        return web.json_response(self._member_json(audience, self._member_for(request, audience)))

    async def _put_member(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        body = await _json_body(request)
        skip = request.query.get("skip_merge_validation") == "true"
        path_key = request.match_info["member"]
        path_id = subscriber_hash(path_key) if "@" in path_key else path_key.lower()
        member = audience.members.get(path_id)
        if member is not None and member.status != "archived":
            self._change(
                audience,
                member,
                source="api",
                email=body.get("email_address"),
                status=body.get("status"),
                merge_fields=body.get("merge_fields"),
                skip_merge_validation=skip,
            )
            self._apply_extras(member, body)
            return web.json_response(self._member_json(audience, member))
        email = self._check_email(body.get("email_address"))
        if subscriber_hash(email) != path_id:
            raise _invalid(
                errors=[
                    {"field": "email_address", "message": "does not match the subscriber hash in the URL"}
                ]
            )
        status = body.get("status") or body.get("status_if_new")
        if status is None:
            raise _invalid(errors=[{"field": "status_if_new", "message": "This value should not be blank."}])
        member = self._create(
            audience, body, status=status, tags=body.get("tags"), skip_merge_validation=skip
        )
        return web.json_response(self._member_json(audience, member))

    async def _patch_member(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        member = self._member_for(request, audience)
        body = await _json_body(request)
        self._change(
            audience,
            member,
            source="api",
            email=body.get("email_address"),
            status=body.get("status"),
            merge_fields=body.get("merge_fields"),
            skip_merge_validation=request.query.get("skip_merge_validation") == "true",
        )
        self._apply_extras(member, body)
        return web.json_response(self._member_json(audience, member))

    async def _archive_member(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        member = self._member_for(request, audience)
        self._change(audience, member, source="api", status="archived", enforce=False)
        return web.Response(status=204)

    async def _delete_permanent(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        self._forget(audience, self._member_for(request, audience), "api")
        return web.Response(status=204)

    # -- tags ----------------------------------------------------------------------------------

    async def _get_tags(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        member = self._member_for(request, audience)
        tags = [
            {"id": self._tag_id(audience, t), "name": t, "date_added": format_time(member.last_changed)}
            for t in member.tags
        ]
        return web.json_response({"tags": tags, "total_items": len(tags), "_links": []})

    async def _post_tags(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        member = self._member_for(request, audience)
        body = await _json_body(request)
        changes = body.get("tags")
        if not isinstance(changes, list):
            raise _invalid(errors=[{"field": "tags", "message": "This value should not be blank."}])
        wanted = list(member.tags)
        for change in changes:
            if not isinstance(change, Mapping) or change.get("status") not in ("active", "inactive"):
                raise _invalid(errors=[{"field": "tags", "message": f"invalid tag change {change!r}"}])
            (name,) = self._tag_names([change])
            if change["status"] == "active" and name not in wanted:
                wanted.append(name)
            elif change["status"] == "inactive" and name in wanted:
                wanted.remove(name)
        self._set_tags(audience, member, wanted)
        return web.Response(status=204)

    # -- merge fields --------------------------------------------------------------------------

    async def _get_merge_fields(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        # Paged like every Mailchimp collection: count (default 10, at most 1000) and offset.
        count = _query_int(request, "count", DEFAULT_COUNT)
        offset = _query_int(request, "offset", 0)
        if count > MAX_COUNT:
            raise _invalid(errors=[{"field": "count", "message": f"must be at most {MAX_COUNT}"}])
        every = [f.to_json(audience.id) for f in audience.merge_fields.values()]
        fields = every[offset : offset + count]
        return web.json_response(
            {"merge_fields": fields, "list_id": audience.id, "total_items": len(every), "_links": []}
        )

    async def _add_merge_field_route(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        body = await _json_body(request)
        name, kind = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name.strip():
            raise _invalid(errors=[{"field": "name", "message": "This value should not be blank."}])
        if kind not in MERGE_TYPES:
            raise _invalid(errors=[{"field": "type", "message": f"must be one of {', '.join(MERGE_TYPES)}"}])
        tag = body.get("tag") or f"MMERGE{len(audience.merge_fields) + 1}"
        if not isinstance(tag, str) or not _MERGE_TAG.match(tag):
            raise _invalid(errors=[{"field": "tag", "message": "use up to 10 capital letters, digits or _"}])
        if tag in audience.merge_fields:
            raise _invalid(f'A Merge Field with the tag "{tag}" already exists for this list.')
        merge_field = MergeField(
            merge_id=max((f.merge_id for f in audience.merge_fields.values()), default=0) + 1,
            tag=tag,
            name=name.strip(),
            type=str(kind),
            required=bool(body.get("required", False)),
            default_value=str(body.get("default_value", "")),
            options=dict(body.get("options") or {}),
        )
        audience.merge_fields[tag] = merge_field
        return web.json_response(merge_field.to_json(audience.id))

    # -- batch subscribe -----------------------------------------------------------------------

    async def _batch_subscribe(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        body = await _json_body(request)
        entries = body.get("members")
        if not isinstance(entries, list):
            raise _invalid(errors=[{"field": "members", "message": "This value should not be blank."}])
        if len(entries) > MAX_BATCH_MEMBERS:
            raise _invalid(
                errors=[{"field": "members", "message": f"at most {MAX_BATCH_MEMBERS} members per call"}]
            )
        update_existing = bool(body.get("update_existing", False))
        # sync_tags only means something with update_existing (as documented); assumed: it makes
        # each existing member's tags exactly its entry's ``tags`` (none when the entry has none).
        sync_tags = update_existing and bool(body.get("sync_tags", False))
        skip = request.query.get("skip_merge_validation") == "true"
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for entry in entries:
            email = entry.get("email_address") if isinstance(entry, Mapping) else None
            try:
                if not isinstance(entry, Mapping):
                    raise _invalid(errors=[{"field": "members", "message": "each member must be an object"}])
                existing = self._find(audience, self._check_email(email))
                if existing is not None and existing.status != "archived":
                    if not update_existing:
                        raise Problem(
                            400,
                            "Member Exists",
                            f"{email} is already a list member, do you want to update? "
                            "please provide update_existing:true in the request body",
                        )
                    # The same checks as a PATCH: every value is validated before anything changes.
                    tags = self._tag_names(entry.get("tags")) if sync_tags else None
                    self._change(
                        audience,
                        existing,
                        source="api",
                        status=entry.get("status"),
                        merge_fields=entry.get("merge_fields"),
                        skip_merge_validation=skip,
                    )
                    self._apply_extras(existing, entry)
                    if tags is not None:
                        self._set_tags(audience, existing, list(dict.fromkeys(tags)))
                    updated.append(self._member_json(audience, existing))
                    self.batch_members.append((existing.email.lower(), "updated"))
                else:
                    status = entry.get("status_if_new") or entry.get("status")
                    member = self._create(
                        audience, entry, status=status, tags=entry.get("tags"), skip_merge_validation=skip
                    )
                    created.append(self._member_json(audience, member))
                    self.batch_members.append((member.email.lower(), "created"))
            except Problem as problem:
                error: dict[str, Any] = {
                    "email_address": email if isinstance(email, str) else "",
                    "error": problem.detail,
                    "error_code": "ERROR_CONTACT_EXISTS"
                    if problem.title == "Member Exists"
                    else "ERROR_GENERIC",
                }
                if problem.errors:
                    error["field"] = problem.errors[0].get("field", "")
                    error["field_message"] = problem.errors[0].get("message", "")
                errors.append(error)
        return web.json_response(
            {
                "new_members": created,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(created),
                "total_updated": len(updated),
                "error_count": len(errors),
                "_links": [],
            }
        )

    # -- webhooks ------------------------------------------------------------------------------

    def _webhook_for(self, request: web.Request, audience: Audience) -> Webhook:
        hook = audience.webhooks.get(request.match_info["webhook_id"])
        if hook is None:
            raise _not_found()
        return hook

    async def _get_webhooks(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        hooks = [h.to_json(audience.id) for h in audience.webhooks.values()]
        return web.json_response(
            {"webhooks": hooks, "list_id": audience.id, "total_items": len(hooks), "_links": []}
        )

    async def _get_webhook(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        return web.json_response(self._webhook_for(request, audience).to_json(audience.id))

    @staticmethod
    def _flags(body: Mapping[str, Any], key: str, names: Sequence[str]) -> dict[str, bool] | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping) or any(k not in names for k in value):
            raise _invalid(errors=[{"field": key, "message": f"keys must be among {', '.join(names)}"}])
        return {name: bool(value.get(name, False)) for name in names}

    async def _add_webhook_route(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        body = await _json_body(request)
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _invalid(errors=[{"field": "url", "message": "Please enter a valid URL."}])
        if any(h.url == url for h in audience.webhooks.values()):
            raise _invalid(errors=[{"field": "url", "message": "The URL you entered is already in use."}])
        events = self._flags(body, "events", EVENTS)
        sources = self._flags(body, "sources", SOURCES)
        await self._validate_webhook_url(url)
        hook_id = self.add_webhook(url, list_id=audience.id, events=events, sources=sources)
        return web.json_response(audience.webhooks[hook_id].to_json(audience.id))

    async def _validate_webhook_url(self, url: str) -> None:
        """Mailchimp checks a webhook URL with a GET before accepting it; anything but 200 is refused."""
        status: int | None = None
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    url,
                    headers={"User-Agent": VALIDATOR_USER_AGENT},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response,
            ):
                status = response.status
                await response.read()
        if status != 200:
            raise _invalid(
                errors=[
                    {
                        "field": "url",
                        "message": "We couldn't verify the URL is working. Please double check and try again. "
                        f"HTTP Code: {status if status is not None else 'no response'}",
                    }
                ]
            )

    async def _patch_webhook(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        hook = self._webhook_for(request, audience)
        body = await _json_body(request)
        events = self._flags(body, "events", EVENTS)
        sources = self._flags(body, "sources", SOURCES)
        if events is not None:
            hook.events = events
        if sources is not None:
            hook.sources = sources
        return web.json_response(hook.to_json(audience.id))

    async def _delete_webhook(self, request: web.Request) -> web.StreamResponse:
        audience = self._audience_for(request)
        hook = self._webhook_for(request, audience)
        del audience.webhooks[hook.id]
        return web.Response(status=204)


# -- standalone ------------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    fake = MailchimpFake(api_key=args.api_key, list_ids=args.list_id or ["a1b2c3d4e5"])
    url = await fake.start(args.port)
    if args.webhook_url:
        fake.add_webhook(args.webhook_url)
    print(f"mailchimp fake: {url}{API_ROOT} (audiences: {', '.join(fake.lists)})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m syncd.testing.fakes.mailchimp", description="Serve a fake Mailchimp Marketing API v3."
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument(
        "--api-key", default="0123456789abcdef0123456789abcdef-us1", help="the accepted API key"
    )
    parser.add_argument("--list-id", action="append", help="an audience id (repeatable)")
    parser.add_argument(
        "--webhook-url", help="register this webhook (all events and sources) on the first audience"
    )
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
