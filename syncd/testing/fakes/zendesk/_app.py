"""``ZendeskFake``: the HTTP server, the account's state changes, jobs, rate limits, webhooks, backdoor."""

from __future__ import annotations

import base64
import binascii
import collections
import hmac
import itertools
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .._clock import FakeClock
from .._server import FakeApp
from ._errors import ZendeskError, invalid, not_found, record_invalid
from ._model import (
    EXPORT_EXCLUSION_SECONDS,
    FIELD_TYPES,
    MAX_BULK,
    MAX_EXPORT_PAGE,
    MAX_JOBS,
    MAX_PAGE_SIZE,
    OFFSET_DEPTH,
    ROLES,
    Identity,
    Job,
    Organization,
    User,
    UserField,
    decode_cursor,
    encode_cursor,
    iso_s,
    sign,
    valid_email,
)

API = "/api/v2"
#: Routes answer with and without the ``.json`` suffix, like Zendesk does.
_EXT = "{ext:(?:\\.json)?}"
_ID = "{id:\\d+}"
MINUTE_MS = 60_000
#: Permanent user deletions allowed per rolling ten minutes.
ERASE_LIMIT = 700
ERASE_WINDOW_MS = 600_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Hit:
    """One request the fake admitted: when (fake clock, ms), how and where."""

    at_ms: int
    method: str
    path: str
    auth: str


class ZendeskFake(FakeApp):
    """Zendesk Support API v2 on a loopback port. See the package docstring for what it reproduces."""

    name = "zendesk"

    def __init__(
        self,
        *,
        agent_email: str = "admin@syncd-fake.example",
        api_token: str = "zendesk-test-token",
        oauth_token: str | None = "zendesk-oauth-token",
        webhook_secret: str = "zendesk-webhook-secret",
        webhook_url: str | None = None,
        clock: FakeClock | None = None,
        rate_limit: int = 700,
        export_limit: int = 10,
        max_jobs: int = MAX_JOBS,
        job_polls: int = 2,
        account_id: int = 10_483_921,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.agent_email = agent_email
        self.api_token = api_token
        self.oauth_token = oauth_token
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.clock = clock or FakeClock()
        #: Requests per rolling minute for the account (the plan's limit: 200 to 700).
        self.rate_limit = rate_limit
        #: Requests per rolling minute to ``/incremental/*`` (10, or 30 with the add-on).
        self.export_limit = export_limit
        self.max_jobs = max_jobs
        #: Status polls a job needs before it completes (the first ones see queued/working).
        self.job_polls = job_polls
        self.account_id = account_id
        #: Webhook deliveries are signed with wall time (Zendesk stamps the delivery).
        self.wall_clock = wall_clock
        #: Every admitted request, oldest first (tests count them per minute).
        self.hits: list[Hit] = []
        #: 429 answers given because a limit was reached.
        self.throttled = 0
        #: Job submissions refused with ``TooManyJobs``.
        self.refused_jobs = 0
        self.users: dict[int, User] = {}
        self.organizations: dict[int, Organization] = {}
        self.user_fields: dict[str, UserField] = {}
        self.jobs: dict[str, Job] = {}
        self._account_window: collections.deque[int] = collections.deque()
        self._export_window: collections.deque[int] = collections.deque()
        self._erase_window: collections.deque[int] = collections.deque()
        self._user_ids = itertools.count(1_000_001)
        self._org_ids = itertools.count(360_001)
        self._identity_ids = itertools.count(7_000_001)
        self._field_ids = itertools.count(51)
        self._polls: collections.Counter[str] = collections.Counter()
        self.app.middlewares.append(self._zendesk_middleware)
        now = self.clock.now_ms()
        owner = User(next(self._user_ids), "Account Owner", "admin", now, now, verified=True)
        owner.identities.append(
            Identity(next(self._identity_ids), owner.id, agent_email, True, True, now, now)
        )
        self.users[owner.id] = owner
        self.owner_id = owner.id

    # -- routes --------------------------------------------------------------------------------

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        u = API + "/users"
        o = API + "/organizations"
        router.add_get(u + "/me" + _EXT, self._me)
        router.add_get(u + _EXT, self._list_users)
        router.add_post(u + _EXT, self._create_user)
        router.add_get(u + "/show_many" + _EXT, self._show_many_users)
        router.add_get(u + "/search" + _EXT, self._search_users)
        router.add_post(u + "/create_or_update" + _EXT, self._create_or_update_user)
        router.add_post(u + "/create_many" + _EXT, self._create_many_users)
        router.add_post(u + "/create_or_update_many" + _EXT, self._create_or_update_many_users)
        router.add_put(u + "/update_many" + _EXT, self._update_many_users)
        router.add_delete(u + "/destroy_many" + _EXT, self._destroy_many_users)
        router.add_get(u + "/" + _ID + _EXT, self._get_user)
        router.add_put(u + "/" + _ID + _EXT, self._update_user)
        router.add_delete(u + "/" + _ID + _EXT, self._delete_user)
        ident = u + "/{id:\\d+}/identities"
        router.add_get(ident + _EXT, self._list_identities)
        router.add_post(ident + _EXT, self._add_identity)
        router.add_put(ident + "/{iid:\\d+}/make_primary" + _EXT, self._make_primary)
        router.add_delete(ident + "/{iid:\\d+}" + _EXT, self._delete_identity)
        router.add_get(API + "/deleted_users" + _EXT, self._list_deleted)
        router.add_get(API + "/deleted_users/" + _ID + _EXT, self._get_deleted)
        router.add_delete(API + "/deleted_users/" + _ID + _EXT, self._erase_user)
        router.add_get(API + "/incremental/users/cursor" + _EXT, self._export_users)
        router.add_get(API + "/incremental/organizations" + _EXT, self._export_organizations)
        router.add_get(API + "/job_statuses/{job_id:[0-9a-f]+}" + _EXT, self._job_status)
        router.add_get(API + "/user_fields" + _EXT, self._list_user_fields)
        router.add_post(API + "/user_fields" + _EXT, self._create_user_field)
        router.add_get(o + _EXT, self._list_orgs)
        router.add_post(o + _EXT, self._create_org)
        router.add_get(o + "/show_many" + _EXT, self._show_many_orgs)
        router.add_get(o + "/search" + _EXT, self._search_orgs)
        router.add_post(o + "/create_or_update" + _EXT, self._create_or_update_org)
        router.add_post(o + "/create_many" + _EXT, self._create_many_orgs)
        router.add_put(o + "/update_many" + _EXT, self._update_many_orgs)
        router.add_get(o + "/" + _ID + _EXT, self._get_org)
        router.add_put(o + "/" + _ID + _EXT, self._update_org)
        router.add_delete(o + "/" + _ID + _EXT, self._delete_org)

    # -- middleware: auth, rate limits, errors, headers ----------------------------------------

    @web.middleware
    async def _zendesk_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        now = self.clock.now_ms()
        try:
            scheme = self._authenticate(request)
            exporting = request.path.startswith(API + "/incremental/")
            refusal = self._admit(now, exporting)
            if refusal is not None:
                self.throttled += 1
                response: web.StreamResponse = refusal
            else:
                self.hits.append(Hit(now, request.method, request.path, scheme))
                response = await handler(request)
        except ZendeskError as exc:
            response = exc.response()
        except web.HTTPNotFound:
            response = ZendeskError(404, "InvalidEndpoint", "Not found").response()
        except web.HTTPMethodNotAllowed:
            response = ZendeskError(405, "InvalidEndpoint", "Method not allowed").response()
        response.headers.update(self._rate_headers(now, request.path))
        response.headers["Date"] = format_datetime(datetime.fromtimestamp(now / 1000, UTC), usegmt=True)
        return response

    def _authenticate(self, request: web.Request) -> str:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.oauth_token is not None:
            if hmac.compare_digest(credential.strip().encode(), self.oauth_token.encode()):
                return "bearer"
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
            expected_user = f"{self.agent_email}/token"
            if user.lower() == expected_user.lower() and hmac.compare_digest(
                password.encode(), self.api_token.encode()
            ):
                return "basic"
        raise ZendeskError(401, "Couldn't authenticate you")

    @staticmethod
    def _prune(window: collections.deque[int], now: int, span: int) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    def _admit(self, now: int, exporting: bool) -> web.Response | None:
        """Count the request in the rolling windows, or answer 429 if a window is full."""
        self._prune(self._account_window, now, MINUTE_MS)
        self._prune(self._export_window, now, MINUTE_MS)
        if len(self._account_window) >= self.rate_limit:
            return self._too_many(now, self._account_window, "APIRateLimitExceeded")
        if exporting and len(self._export_window) >= self.export_limit:
            return self._too_many(now, self._export_window, "APIRateLimitExceeded")
        self._account_window.append(now)
        if exporting:
            self._export_window.append(now)
        return None

    def _too_many(self, now: int, window: collections.deque[int], label: str) -> web.Response:
        wait = max(1, math.ceil((window[0] + MINUTE_MS - now) / 1000))
        body = {"error": label, "description": "Number of allowed API requests per minute exceeded"}
        return web.json_response(body, status=429, headers={"Retry-After": str(wait)})

    def _rate_headers(self, now: int, path: str) -> dict[str, str]:
        self._prune(self._account_window, now, MINUTE_MS)
        remaining = max(0, self.rate_limit - len(self._account_window))
        reset = (
            max(1, math.ceil((self._account_window[0] + MINUTE_MS - now) / 1000))
            if self._account_window
            else 60
        )
        headers = {
            "X-Rate-Limit": str(self.rate_limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "ratelimit-limit": str(self.rate_limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }
        if path.startswith(API + "/incremental/"):
            # Endpoint bucket in Zendesk's "total=; remaining=; resets=" form (bucket name unverified).
            self._prune(self._export_window, now, MINUTE_MS)
            left = max(0, self.export_limit - len(self._export_window))
            resets = (
                max(1, math.ceil((self._export_window[0] + MINUTE_MS - now) / 1000))
                if self._export_window
                else 60
            )
            headers["Zendesk-RateLimit-incremental-exports"] = (
                f"total={self.export_limit}; remaining={left}; resets={resets}"
            )
        return headers

    def rate_limit_response(self, request: web.Request) -> web.StreamResponse:
        body = {
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed API requests per minute exceeded",
        }
        return web.json_response(body, status=429, headers={"Retry-After": "1"})

    def server_error_response(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"error": "InternalError", "description": "Something went wrong"}, status=500
        )

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    async def _body(request: web.Request, key: str) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ZendeskError(400, "InvalidValue", "The request body is not valid JSON") from None
        if not isinstance(body, dict) or key not in body:
            raise ZendeskError(400, "InvalidValue", f"The request body must be an object with {key!r}")
        return body[key]

    def _now(self) -> int:
        return self.clock.now_ms()

    def _fields(self) -> list[UserField]:
        return list(self.user_fields.values())

    def user_json(self, user: User) -> dict[str, Any]:
        data = user.to_json(self.url, self._fields())
        if user.erased:
            data.update(name="Permanently Deleted User", email=None, phone=None)
        return data

    def _user(self, request: web.Request) -> User:
        user = self.users.get(int(request.match_info["id"]))
        if user is None or not user.active:
            raise not_found()
        return user

    def _live_users(self) -> Iterable[User]:
        return (u for u in self.users.values() if u.active)

    def _user_by_email(self, email: str, *, exclude: int | None = None) -> User | None:
        wanted = email.strip().lower()
        for user in self._live_users():
            if user.id != exclude and any(i.value.lower() == wanted for i in user.identities):
                return user
        return None

    def _user_by_external_id(self, external_id: str, *, exclude: int | None = None) -> User | None:
        wanted = external_id.strip().lower()
        for user in self._live_users():
            if user.id != exclude and user.external_id is not None and user.external_id.lower() == wanted:
                return user
        return None

    @staticmethod
    def _ids_param(request: web.Request, name: str) -> list[str]:
        raw = request.query.get(name, "")
        values = [part.strip() for part in raw.split(",") if part.strip()]
        if len(values) > MAX_BULK:
            raise invalid(f"{name} accepts at most {MAX_BULK} values")
        return values

    def _page_links(
        self, request: web.Request, after: str | None, before: str | None, size: int
    ) -> dict[str, Any]:
        def link(key: str, token: str | None) -> str | None:
            if token is None:
                return None
            query = [(k, v) for k, v in request.query.items() if not k.startswith("page[")]
            query += [("page[size]", str(size)), (key, token)]
            return f"{self.url}{request.path}?{urlencode(query)}"

        return {"prev": link("page[before]", before), "next": link("page[after]", after)}

    def _paginate(
        self, request: web.Request, key: str, items: list[Any], render: Callable[[Any], Any]
    ) -> web.Response:
        """Cursor pagination when ``page[size]``/``page[after]`` is given, else offset pagination."""
        query = request.query
        if "page[size]" in query or "page[after]" in query:
            size = self._int(query.get("page[size]", "100"), "page[size]")
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise invalid(f"page[size] must be between 1 and {MAX_PAGE_SIZE}")
            start = 0
            if "page[after]" in query:
                position = decode_cursor(query["page[after]"])
                if position is None:
                    raise invalid("page[after] is not a valid cursor")
                start = next((n for n, item in enumerate(items) if item.id > position[1]), len(items))
            page = items[start : start + size]
            has_more = start + size < len(items)
            after = encode_cursor((0, page[-1].id)) if page else None
            before = encode_cursor((0, page[0].id)) if page else None
            return web.json_response(
                {
                    key: [render(i) for i in page],
                    "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
                    "links": self._page_links(request, after, before, size),
                }
            )
        per_page = min(self._int(query.get("per_page", "100"), "per_page"), MAX_PAGE_SIZE)
        page_no = max(1, self._int(query.get("page", "1"), "page"))
        offset = (page_no - 1) * per_page
        if offset >= OFFSET_DEPTH:
            raise ZendeskError(
                400, "InvalidPaginationDepth", "Offset pagination is limited to the first 10,000 records"
            )
        chunk = items[offset : offset + per_page]
        more = offset + per_page < len(items)
        base = f"{self.url}{request.path}"
        return web.json_response(
            {
                key: [render(i) for i in chunk],
                "next_page": f"{base}?page={page_no + 1}&per_page={per_page}" if more else None,
                "previous_page": f"{base}?page={page_no - 1}&per_page={per_page}" if page_no > 1 else None,
                "count": len(items),
            }
        )

    @staticmethod
    def _int(raw: str, name: str) -> int:
        try:
            return int(raw)
        except ValueError:
            raise invalid(f"{name} must be an integer") from None

    # -- user validation and changes ---------------------------------------------------------------

    def _check_user(self, data: Any, *, user: User | None) -> dict[str, Any]:
        """Validated changes for a new (``user=None``) or existing user; 422 ``RecordInvalid`` otherwise."""
        if not isinstance(data, dict):
            raise invalid("user must be an object")
        own = user.id if user is not None else None
        out: dict[str, Any] = {}
        if "name" in data or user is None:
            name = data.get("name")
            if not isinstance(name, str) or not name.strip():
                raise record_invalid("name", "BlankValue", "Name: cannot be blank")
            out["name"] = name.strip()
        if data.get("email") is not None:
            email = data["email"]
            if not isinstance(email, str) or not valid_email(email.strip()):
                raise record_invalid("email", "InvalidFormat", f"Email: {email} is not properly formatted")
            other = self._user_by_email(email, exclude=own)
            if other is not None:
                raise record_invalid(
                    "email", "DuplicateValue", f"Email: {email.strip()} is already being used by another user"
                )
            out["email"] = email.strip()
        if "external_id" in data:
            ext = data["external_id"]
            if ext is not None and not isinstance(ext, str | int):
                raise record_invalid("external_id", "InvalidValue", "External ID: is invalid")
            if ext is not None and str(ext).strip():
                if self._user_by_external_id(str(ext), exclude=own) is not None:
                    raise record_invalid(
                        "external_id", "DuplicateValue", "External ID: has already been taken"
                    )
                out["external_id"] = str(ext).strip()
            else:
                out["external_id"] = None
        if "role" in data:
            if data["role"] not in ROLES:
                raise record_invalid("role", "InvalidValue", f"Role: {data['role']} is not a valid role")
            out["role"] = data["role"]
        elif user is None:
            out["role"] = "end-user"
        if "organization_id" in data:
            org_id = data["organization_id"]
            if org_id is not None and (
                isinstance(org_id, bool) or not isinstance(org_id, int) or org_id not in self.organizations
            ):
                raise record_invalid("organization_id", "InvalidValue", "Organization: is invalid")
            out["organization_id"] = org_id
        for key in ("phone", "notes", "details", "alias", "time_zone", "locale"):
            if key in data:
                value = data[key]
                if value is not None and not isinstance(value, str):
                    raise record_invalid(key, "InvalidValue", f"{key.capitalize()}: must be text")
                out[key] = value if key == "phone" else (value or "")
        if "tags" in data:
            tags = data["tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise record_invalid("tags", "InvalidValue", "Tags: must be a list of strings")
            out["tags"] = sorted({t.strip().lower().replace(" ", "_") for t in tags if t.strip()})
        if "verified" in data:
            out["verified"] = bool(data["verified"])
        if "user_fields" in data:
            out["user_fields"] = self._check_user_fields(data["user_fields"])
        return out

    def _check_user_fields(self, values: Any) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise record_invalid("user_fields", "InvalidValue", "User fields: must be an object")
        checked: dict[str, Any] = {}
        for key, value in values.items():
            definition = self.user_fields.get(key)
            if definition is None:
                continue  # Zendesk ignores keys that are not defined user fields
            if value is None or value == "":
                checked[key] = None
                continue
            kind = definition.type
            ok = True
            if kind == "integer":
                ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                    isinstance(value, str) and value.lstrip("-").isdigit()
                )
                value = int(value) if ok else value
            elif kind == "decimal":
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    ok = False
            elif kind == "checkbox":
                ok = isinstance(value, bool)
            elif kind == "date":
                try:
                    datetime.strptime(str(value)[:10], "%Y-%m-%d")
                except ValueError:
                    ok = False
            elif kind == "dropdown":
                ok = str(value) in definition.options
            elif not isinstance(value, str):
                value = str(value)
            if not ok:
                raise record_invalid(key, "InvalidValue", f"{definition.title}: {value!r} is invalid")
            checked[key] = value
        return checked

    def _new_user(self, changes: Mapping[str, Any], *, source: str = "api") -> User:
        now = self._now()
        user = User(next(self._user_ids), changes["name"], changes.get("role", "end-user"), now, now)
        email = changes.get("email")
        if email:
            user.identities.append(Identity(next(self._identity_ids), user.id, email, True, False, now, now))
        self._apply_user(
            user, {k: v for k, v in changes.items() if k not in ("email", "name", "role")}, bump=False
        )
        self.users[user.id] = user
        self._user_event(user, "user.created", {})
        return user

    def _apply_user(self, user: User, changes: Mapping[str, Any], *, bump: bool = True) -> bool:
        """Apply validated changes; a new email becomes a secondary identity (Zendesk's quirk)."""
        events: list[tuple[str, dict[str, Any]]] = []
        changed = False
        now = self._now()
        for key, value in changes.items():
            if key == "email":
                if not any(i.value.lower() == value.lower() for i in user.identities):
                    identity = Identity(
                        next(self._identity_ids), user.id, value, not user.identities, False, now, now
                    )
                    user.identities.append(identity)
                    events.append(
                        ("user.email_identity_created", {"current": {"id": str(identity.id), "value": value}})
                    )
                    changed = True
                continue
            if key == "user_fields":
                for field_key, field_value in value.items():
                    old = user.user_fields.get(field_key)
                    if old != field_value:
                        user.user_fields[field_key] = field_value
                        events.append(
                            (
                                "user.custom_field_changed",
                                {"current": field_value, "previous": old, "field": {"key": field_key}},
                            )
                        )
                        changed = True
                continue
            old = getattr(user, key)
            if old != value:
                setattr(user, key, value)
                changed = True
                if key in ("name", "external_id", "role", "notes", "details", "alias", "time_zone", "tags"):
                    kind = {"tags": "tags_changed", "time_zone": "time_zone_changed"}.get(
                        key, f"{key}_changed"
                    )
                    events.append((f"user.{kind}", {"current": value, "previous": old}))
                elif key == "organization_id":
                    events.append(("user.default_organization_changed", {"current": value, "previous": old}))
        if changed and bump:
            user.updated_ms = now
            for kind, event in events:
                self._user_event(user, kind, event)
        return changed

    def _soft_delete(self, user: User) -> None:
        user.active = False
        user.updated_ms = self._now()
        self._user_event(user, "user.active_changed", {"current": False, "previous": True})
        self._user_event(user, "user.deleted", {})

    # -- webhooks ------------------------------------------------------------------------------

    def _user_event(self, user: User, kind: str, event: Mapping[str, Any]) -> None:
        detail = {
            "created_at": iso_s(user.created_ms),
            "email": user.email,
            "external_id": user.external_id,
            "default_group_id": None,
            "id": str(user.id),
            "organization_id": str(user.organization_id) if user.organization_id is not None else None,
            "role": user.role,
            "updated_at": iso_s(user.updated_ms),
        }
        self._send_event(f"zen:event-type:{kind}", f"zen:user:{user.id}", detail, event)

    def _org_event(self, org: Organization, kind: str, event: Mapping[str, Any]) -> None:
        detail = {
            "created_at": iso_s(org.created_ms),
            "external_id": org.external_id,
            "group_id": None,
            "id": str(org.id),
            "name": org.name,
            "shared_comments": org.shared_comments,
            "shared_tickets": org.shared_tickets,
            "updated_at": iso_s(org.updated_ms),
        }
        self._send_event(f"zen:event-type:{kind}", f"zen:organization:{org.id}", detail, event)

    def _send_event(
        self, kind: str, subject: str, detail: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        if self.webhook_url is None:
            return
        payload = {
            "account_id": self.account_id,
            "detail": dict(detail),
            "event": dict(event),
            "id": str(uuid.uuid4()),
            "subject": subject,
            "time": iso_s(self._now()),
            "type": kind,
            "zendesk_event_version": "2022-11-06",
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.emit(body, self.signed_headers(body))

    def signed_headers(
        self, body: bytes, *, timestamp: str | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """The headers Zendesk adds to a webhook delivery of ``body``."""
        stamp = timestamp or datetime.fromtimestamp(int(self.wall_clock()), UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        return {
            "X-Zendesk-Webhook-Id": "01HSYNCDFAKEWEBHOOK00000000",
            "X-Zendesk-Webhook-Invocation-Id": str(uuid.uuid4().int)[:19],
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Signature": sign(secret or self.webhook_secret, stamp, body),
        }

    # -- users: read -------------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        # The user the credentials belong to (the API token's agent; the OAuth grant's, here the same).
        return web.json_response({"user": self.user_json(self.users[self.owner_id])})

    async def _list_users(self, request: web.Request) -> web.Response:
        roles = set(request.query.getall("role[]", [])) | set(request.query.getall("role", []))
        users = sorted((u for u in self._live_users() if not roles or u.role in roles), key=lambda u: u.id)
        return self._paginate(request, "users", users, self.user_json)

    async def _get_user(self, request: web.Request) -> web.Response:
        return web.json_response({"user": self.user_json(self._user(request))})

    async def _show_many_users(self, request: web.Request) -> web.Response:
        found: dict[int, User] = {}
        for raw in self._ids_param(request, "ids"):
            if raw.isdigit():
                user = self.users.get(int(raw))
                if user is not None and user.active:
                    found[user.id] = user
        for ext in self._ids_param(request, "external_ids"):
            user = self._user_by_external_id(ext)
            if user is not None:
                found[user.id] = user
        return web.json_response(
            {
                "users": [self.user_json(u) for u in found.values()],
                "next_page": None,
                "previous_page": None,
                "count": len(found),
            }
        )

    async def _search_users(self, request: web.Request) -> web.Response:
        if "external_id" in request.query:
            user = self._user_by_external_id(request.query["external_id"])
            hits = [user] if user is not None else []
        else:
            query = request.query.get("query", "").strip()
            if not query:
                raise invalid("query or external_id is required")
            hits = []
            if query.lower().startswith("email:"):
                wanted = query[6:].strip().strip('"').lower()
                hits = [u for u in self._live_users() if any(i.value.lower() == wanted for i in u.identities)]
            else:
                needle = query.strip('"').lower()
                hits = [
                    u
                    for u in self._live_users()
                    if needle in u.name.lower() or any(needle in i.value.lower() for i in u.identities)
                ]
        hits.sort(key=lambda u: u.id)
        return self._paginate(request, "users", hits, self.user_json)

    # -- users: write ------------------------------------------------------------------------------

    async def _create_user(self, request: web.Request) -> web.Response:
        changes = self._check_user(await self._body(request, "user"), user=None)
        user = self._new_user(changes)
        return web.json_response({"user": self.user_json(user)}, status=201)

    def _match(self, data: Mapping[str, Any]) -> User | None:
        email = data.get("email")
        if isinstance(email, str) and email.strip():
            found = self._user_by_email(email)
            if found is not None:
                return found
        ext = data.get("external_id")
        if isinstance(ext, str | int) and str(ext).strip():
            return self._user_by_external_id(str(ext))
        return None

    def _upsert(self, data: Any) -> tuple[User, bool]:
        if not isinstance(data, dict):
            raise invalid("user must be an object")
        existing = self._match(data)
        if existing is None:
            return self._new_user(self._check_user(data, user=None)), True
        changes = self._check_user(data, user=existing)
        self._apply_user(existing, changes)
        return existing, False

    async def _create_or_update_user(self, request: web.Request) -> web.Response:
        user, created = self._upsert(await self._body(request, "user"))
        return web.json_response({"user": self.user_json(user)}, status=201 if created else 200)

    async def _update_user(self, request: web.Request) -> web.Response:
        user = self._user(request)
        changes = self._check_user(await self._body(request, "user"), user=user)
        self._apply_user(user, changes)
        return web.json_response({"user": self.user_json(user)})

    async def _delete_user(self, request: web.Request) -> web.Response:
        user = self._user(request)
        self._soft_delete(user)
        return web.json_response({"user": self.user_json(user)})

    # -- identities ----------------------------------------------------------------------------------

    async def _list_identities(self, request: web.Request) -> web.Response:
        user = self._user(request)
        return web.json_response(
            {
                "identities": [i.to_json(self.url) for i in user.identities],
                "next_page": None,
                "previous_page": None,
                "count": len(user.identities),
            }
        )

    async def _add_identity(self, request: web.Request) -> web.Response:
        user = self._user(request)
        data = await self._body(request, "identity")
        if not isinstance(data, dict) or data.get("type") != "email":
            raise record_invalid(
                "type", "InvalidValue", "Type: only email identities are modelled by the fake"
            )
        value = data.get("value")
        if not isinstance(value, str) or not valid_email(value.strip()):
            raise record_invalid("value", "InvalidFormat", f"Value: {value} is not properly formatted")
        if self._user_by_email(value) is not None:
            raise record_invalid(
                "value", "DuplicateValue", f"Value: {value.strip()} is already being used by another user"
            )
        now = self._now()
        identity = Identity(
            next(self._identity_ids),
            user.id,
            value.strip(),
            not user.identities,
            bool(data.get("verified")),
            now,
            now,
        )
        user.identities.append(identity)
        user.updated_ms = now
        self._user_event(
            user,
            "user.email_identity_created",
            {"current": {"id": str(identity.id), "value": identity.value}},
        )
        return web.json_response({"identity": identity.to_json(self.url)}, status=201)

    def _identity(self, user: User, request: web.Request) -> Identity:
        iid = int(request.match_info["iid"])
        for identity in user.identities:
            if identity.id == iid:
                return identity
        raise not_found()

    async def _make_primary(self, request: web.Request) -> web.Response:
        user = self._user(request)
        target = self._identity(user, request)
        if not target.primary:
            now = self._now()
            previous = user.email
            for identity in user.identities:
                identity.primary = identity is target
                identity.updated_ms = now
            user.updated_ms = now
            self._user_event(
                user, "user.email_identity_changed", {"current": target.value, "previous": previous}
            )
        return web.json_response({"identities": [i.to_json(self.url) for i in user.identities]})

    async def _delete_identity(self, request: web.Request) -> web.Response:
        user = self._user(request)
        identity = self._identity(user, request)
        if identity.primary and len(user.identities) > 1:
            raise ZendeskError(
                422, "RecordInvalid", "Cannot delete the primary identity; make another one primary first"
            )
        user.identities.remove(identity)
        user.updated_ms = self._now()
        self._user_event(
            user,
            "user.email_identity_deleted",
            {"previous": {"id": str(identity.id), "value": identity.value}},
        )
        return web.Response(status=204)

    # -- deleted users and permanent deletion -------------------------------------------------------

    def _deleted_json(self, user: User) -> dict[str, Any]:
        data = self.user_json(user)
        return {
            k: data[k]
            for k in (
                "id",
                "url",
                "name",
                "email",
                "created_at",
                "updated_at",
                "time_zone",
                "phone",
                "locale",
                "organization_id",
                "role",
                "active",
                "shared_phone_number",
                "photo",
            )
        }

    def _deleted(self, request: web.Request) -> User:
        user = self.users.get(int(request.match_info["id"]))
        if user is None or user.active:
            raise not_found()
        return user

    async def _list_deleted(self, request: web.Request) -> web.Response:
        users = sorted((u for u in self.users.values() if not u.active), key=lambda u: u.id)
        return self._paginate(request, "deleted_users", users, self._deleted_json)

    async def _get_deleted(self, request: web.Request) -> web.Response:
        return web.json_response({"deleted_user": self._deleted_json(self._deleted(request))})

    async def _erase_user(self, request: web.Request) -> web.Response:
        user = self._deleted(request)
        now = self._now()
        self._prune(self._erase_window, now, ERASE_WINDOW_MS)
        if len(self._erase_window) >= ERASE_LIMIT:
            wait = max(1, math.ceil((self._erase_window[0] + ERASE_WINDOW_MS - now) / 1000))
            raise ZendeskError(
                429,
                "APIRateLimitExceeded",
                "Permanent deletions are limited to 700 per 10 minutes",
                headers={"Retry-After": str(wait)},
            )
        self._erase_window.append(now)
        if not user.erased:
            user.erased = True
            user.identities.clear()
            user.name = "Permanently Deleted User"
            user.phone = user.external_id = None
            user.user_fields.clear()
            user.notes = user.details = user.alias = ""
            user.tags = []
            user.organization_id = None
            user.updated_ms = now
        return web.json_response({"deleted_user": self._deleted_json(user)})

    # -- incremental exports -------------------------------------------------------------------------

    def _export_size(self, request: web.Request) -> int:
        size = self._int(request.query.get("per_page", str(MAX_EXPORT_PAGE)), "per_page")
        return max(1, min(size, MAX_EXPORT_PAGE))

    def _export_cutoff(self) -> int:
        """Items whose updated_at second is at or after this one are left out (the last minute)."""
        return self._now() // 1000 - EXPORT_EXCLUSION_SECONDS

    async def _export_users(self, request: web.Request) -> web.Response:
        query = request.query
        cutoff = self._export_cutoff()
        if "cursor" in query:
            position = decode_cursor(query["cursor"])
            if position is None:
                raise invalid("cursor is invalid")
        elif "start_time" in query:
            start = self._int(query["start_time"], "start_time")
            if start > cutoff:
                raise invalid("Too recent start_time. Use a start_time older than 1 minute")
            position = (start - 1, 2**62)
        else:
            raise invalid("start_time or cursor is required")
        size = self._export_size(request)
        eligible = sorted(
            (
                u
                for u in self.users.values()
                if (u.updated_ms // 1000, u.id) > position and u.updated_ms // 1000 < cutoff
            ),
            key=lambda u: (u.updated_ms // 1000, u.id),
        )
        page = eligible[:size]
        last = (page[-1].updated_ms // 1000, page[-1].id) if page else position
        token = encode_cursor(last)
        return web.json_response(
            {
                "users": [self.user_json(u) for u in page],
                "after_cursor": token,
                "after_url": f"{self.url}{API}/incremental/users/cursor.json?{urlencode({'cursor': token, 'per_page': size})}",
                "before_cursor": None,
                "before_url": None,
                "end_of_stream": len(eligible) <= size,
            }
        )

    async def _export_organizations(self, request: web.Request) -> web.Response:
        if "start_time" not in request.query:
            raise invalid("start_time is required")
        start = self._int(request.query["start_time"], "start_time")
        cutoff = self._export_cutoff()
        if start > cutoff:
            raise invalid("Too recent start_time. Use a start_time older than 1 minute")
        size = self._export_size(request)
        eligible = sorted(
            (o for o in self.organizations.values() if start <= o.updated_ms // 1000 < cutoff),
            key=lambda o: (o.updated_ms // 1000, o.id),
        )
        page = eligible[:size]
        if page and len(eligible) > size:
            # A page never splits one second: the next page starts at end_time and would repeat it.
            last_second = page[-1].updated_ms // 1000
            page = [o for o in eligible if o.updated_ms // 1000 <= last_second]
        end_time = page[-1].updated_ms // 1000 if page else start
        if page and page[0].updated_ms // 1000 == end_time and len(eligible) > len(page):
            # The page holds every item of one crowded second: the next page starts after it
            # (modelling choice; otherwise end_time would repeat the same page forever).
            end_time += 1
        done = len(page) == len(eligible)
        next_page = f"{self.url}{API}/incremental/organizations.json?{urlencode({'start_time': end_time, 'per_page': size})}"
        return web.json_response(
            {
                "organizations": [o.to_json(self.url) for o in page],
                "next_page": next_page,
                "count": len(page),
                "end_time": end_time,
                "end_of_stream": done,
            }
        )

    # -- jobs ----------------------------------------------------------------------------------------

    def _submit(self, total: int, work: Callable[[], list[dict[str, Any]]], *, held: bool = False) -> Job:
        if total > MAX_BULK:
            raise invalid(f"A bulk request accepts at most {MAX_BULK} items")
        if sum(1 for j in self.jobs.values() if j.open) >= self.max_jobs:
            self.refused_jobs += 1
            raise ZendeskError(429, "TooManyJobs", f"Number of simultaneous jobs exceeded: {self.max_jobs}")
        job = Job(uuid.uuid4().hex, total, work, self._now(), held=held)
        self.jobs[job.id] = job
        return job

    def _job_reply(self, job: Job) -> web.Response:
        return web.json_response({"job_status": job.to_json(self.url)})

    def _advance(self, job: Job) -> None:
        if not job.open or job.held:
            return
        self._polls[job.id] += 1
        if self._polls[job.id] < self.job_polls:
            job.status = "working"
            job.progress = job.total // 2
            return
        self._complete(job)

    def _complete(self, job: Job) -> None:
        job.results = job.work()
        job.status = "completed"
        job.progress = job.total
        job.message = (
            f"Completed at {datetime.fromtimestamp(self._now() / 1000, UTC):%Y-%m-%d %H:%M:%S} +0000"
        )

    async def _job_status(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            raise not_found()
        self._advance(job)
        return self._job_reply(job)

    @staticmethod
    def _failure(index: int, exc: ZendeskError, **extra: Any) -> dict[str, Any]:
        detail = exc.description or exc.error
        if exc.details:
            detail = "; ".join(p["description"] for problems in exc.details.values() for p in problems)
        return {"index": index, "error": exc.error, "details": detail, "success": False, **extra}

    def _user_items(self, request_items: Any, key: str = "users") -> list[Any]:
        if not isinstance(request_items, list):
            raise invalid(f"{key} must be a list")
        if len(request_items) > MAX_BULK:
            raise invalid(f"A bulk request accepts at most {MAX_BULK} items")
        return request_items

    async def _create_many_users(self, request: web.Request) -> web.Response:
        items = self._user_items(await self._body(request, "users"))

        def work() -> list[dict[str, Any]]:
            results = []
            for index, data in enumerate(items):
                try:
                    user = self._new_user(self._check_user(data, user=None))
                except ZendeskError as exc:
                    results.append(self._failure(index, exc))
                    continue
                results.append(
                    {
                        "index": index,
                        "id": user.id,
                        "email": user.email,
                        "status": "Created",
                        "action": "create",
                        "success": True,
                    }
                )
            return results

        return self._job_reply(self._submit(len(items), work))

    async def _create_or_update_many_users(self, request: web.Request) -> web.Response:
        items = self._user_items(await self._body(request, "users"))

        def work() -> list[dict[str, Any]]:
            results = []
            for index, data in enumerate(items):
                try:
                    user, created = self._upsert(data)
                except ZendeskError as exc:
                    results.append(self._failure(index, exc))
                    continue
                results.append(
                    {
                        "index": index,
                        "id": user.id,
                        "email": user.email,
                        "status": "Created" if created else "Updated",
                        "action": "create" if created else "update",
                        "success": True,
                    }
                )
            return results

        return self._job_reply(self._submit(len(items), work))

    async def _update_many_users(self, request: web.Request) -> web.Response:
        items = self._user_items(await self._body(request, "users"))
        for data in items:
            if not isinstance(data, dict) or not isinstance(data.get("id"), int):
                raise invalid("every user of update_many needs an integer id")

        def work() -> list[dict[str, Any]]:
            results = []
            for index, data in enumerate(items):
                user = self.users.get(data["id"])
                try:
                    if user is None or not user.active:
                        raise not_found()
                    self._apply_user(
                        user, self._check_user({k: v for k, v in data.items() if k != "id"}, user=user)
                    )
                except ZendeskError as exc:
                    results.append(self._failure(index, exc, id=data["id"]))
                    continue
                results.append(
                    {"index": index, "id": user.id, "status": "Updated", "action": "update", "success": True}
                )
            return results

        return self._job_reply(self._submit(len(items), work))

    async def _destroy_many_users(self, request: web.Request) -> web.Response:
        ids = self._ids_param(request, "ids")
        if not ids:
            raise invalid("ids is required")

        def work() -> list[dict[str, Any]]:
            results = []
            for index, raw in enumerate(ids):
                user = self.users.get(int(raw)) if raw.isdigit() else None
                if user is None or not user.active:
                    results.append(self._failure(index, not_found(), id=raw))
                    continue
                self._soft_delete(user)
                results.append(
                    {"index": index, "id": user.id, "status": "Deleted", "action": "delete", "success": True}
                )
            return results

        return self._job_reply(self._submit(len(ids), work))

    # -- user fields ---------------------------------------------------------------------------------

    async def _list_user_fields(self, request: web.Request) -> web.Response:
        fields = [f.to_json(self.url) for f in self.user_fields.values()]
        return web.json_response(
            {"user_fields": fields, "next_page": None, "previous_page": None, "count": len(fields)}
        )

    async def _create_user_field(self, request: web.Request) -> web.Response:
        data = await self._body(request, "user_field")
        if not isinstance(data, dict) or not isinstance(data.get("key"), str) or not data.get("title"):
            raise record_invalid("key", "BlankValue", "Key: and Title: are required")
        if data.get("type", "text") not in FIELD_TYPES:
            raise record_invalid("type", "InvalidValue", f"Type: {data.get('type')} is invalid")
        if data["key"] in self.user_fields:
            raise record_invalid("key", "DuplicateValue", "Key: has already been taken")
        options = tuple(
            str(o.get("value")) for o in data.get("custom_field_options") or [] if isinstance(o, dict)
        )
        created = self.add_user_field(data["key"], str(data["title"]), str(data.get("type", "text")), options)
        return web.json_response({"user_field": created.to_json(self.url)}, status=201)

    # -- organizations ---------------------------------------------------------------------------------

    def _org(self, request: web.Request) -> Organization:
        org = self.organizations.get(int(request.match_info["id"]))
        if org is None:
            raise not_found()
        return org

    def _org_by_name(self, name: str, *, exclude: int | None = None) -> Organization | None:
        wanted = name.strip().lower()
        return next(
            (o for o in self.organizations.values() if o.id != exclude and o.name.lower() == wanted), None
        )

    def _org_by_external_id(self, ext: str, *, exclude: int | None = None) -> Organization | None:
        wanted = ext.strip().lower()
        return next(
            (
                o
                for o in self.organizations.values()
                if o.id != exclude and (o.external_id or "").lower() == wanted and o.external_id
            ),
            None,
        )

    def _check_org(self, data: Any, *, org: Organization | None) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise invalid("organization must be an object")
        own = org.id if org is not None else None
        out: dict[str, Any] = {}
        if "name" in data or org is None:
            name = data.get("name")
            if not isinstance(name, str) or not name.strip():
                raise record_invalid("name", "BlankValue", "Name: cannot be blank")
            if self._org_by_name(name, exclude=own) is not None:
                raise record_invalid("name", "DuplicateValue", "Name: has already been taken")
            out["name"] = name.strip()
        if "external_id" in data:
            ext = data["external_id"]
            if ext is not None and str(ext).strip():
                if self._org_by_external_id(str(ext), exclude=own) is not None:
                    raise record_invalid(
                        "external_id", "DuplicateValue", "External ID: has already been taken"
                    )
                out["external_id"] = str(ext).strip()
            else:
                out["external_id"] = None
        if "domain_names" in data:
            domains = data["domain_names"]
            if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
                raise record_invalid(
                    "domain_names", "InvalidValue", "Domain names: must be a list of strings"
                )
            out["domain_names"] = [d.strip().lower() for d in domains if d.strip()]
        for key in ("details", "notes"):
            if key in data:
                out[key] = data[key] or ""
        if "tags" in data and isinstance(data["tags"], list):
            out["tags"] = sorted({str(t).strip().lower() for t in data["tags"] if str(t).strip()})
        if "organization_fields" in data and isinstance(data["organization_fields"], dict):
            out["organization_fields"] = dict(data["organization_fields"])
        return out

    def _new_org(self, changes: Mapping[str, Any]) -> Organization:
        now = self._now()
        org = Organization(next(self._org_ids), changes["name"], now, now)
        for key, value in changes.items():
            setattr(org, key, value)
        self.organizations[org.id] = org
        self._org_event(org, "organization.created", {})
        return org

    def _apply_org(self, org: Organization, changes: Mapping[str, Any]) -> None:
        changed = {k: v for k, v in changes.items() if getattr(org, k) != v}
        if not changed:
            return
        previous = {k: getattr(org, k) for k in changed}
        for key, value in changed.items():
            setattr(org, key, value)
        org.updated_ms = self._now()
        for key, value in changed.items():
            self._org_event(org, f"organization.{key}_changed", {"current": value, "previous": previous[key]})

    async def _list_orgs(self, request: web.Request) -> web.Response:
        orgs = sorted(self.organizations.values(), key=lambda o: o.id)
        return self._paginate(request, "organizations", orgs, lambda o: o.to_json(self.url))

    async def _get_org(self, request: web.Request) -> web.Response:
        return web.json_response({"organization": self._org(request).to_json(self.url)})

    async def _show_many_orgs(self, request: web.Request) -> web.Response:
        found: dict[int, Organization] = {}
        for raw in self._ids_param(request, "ids"):
            org = self.organizations.get(int(raw)) if raw.isdigit() else None
            if org is not None:
                found[org.id] = org
        for ext in self._ids_param(request, "external_ids"):
            org = self._org_by_external_id(ext)
            if org is not None:
                found[org.id] = org
        return web.json_response(
            {
                "organizations": [o.to_json(self.url) for o in found.values()],
                "next_page": None,
                "previous_page": None,
                "count": len(found),
            }
        )

    async def _search_orgs(self, request: web.Request) -> web.Response:
        if "external_id" in request.query:
            org = self._org_by_external_id(request.query["external_id"])
        elif "name" in request.query:
            org = self._org_by_name(request.query["name"])
        else:
            raise invalid("name or external_id is required")
        hits = [org] if org is not None else []
        return web.json_response(
            {
                "organizations": [o.to_json(self.url) for o in hits],
                "next_page": None,
                "previous_page": None,
                "count": len(hits),
            }
        )

    async def _create_org(self, request: web.Request) -> web.Response:
        org = self._new_org(self._check_org(await self._body(request, "organization"), org=None))
        return web.json_response({"organization": org.to_json(self.url)}, status=201)

    def _upsert_org(self, data: Any) -> tuple[Organization, bool]:
        if not isinstance(data, dict):
            raise invalid("organization must be an object")
        existing = None
        if data.get("external_id"):
            existing = self._org_by_external_id(str(data["external_id"]))
        if existing is None and isinstance(data.get("name"), str):
            existing = self._org_by_name(data["name"])
        if existing is None:
            return self._new_org(self._check_org(data, org=None)), True
        self._apply_org(existing, self._check_org(data, org=existing))
        return existing, False

    async def _create_or_update_org(self, request: web.Request) -> web.Response:
        org, created = self._upsert_org(await self._body(request, "organization"))
        return web.json_response({"organization": org.to_json(self.url)}, status=201 if created else 200)

    async def _create_many_orgs(self, request: web.Request) -> web.Response:
        items = self._user_items(await self._body(request, "organizations"), "organizations")

        def work() -> list[dict[str, Any]]:
            results = []
            for index, data in enumerate(items):
                try:
                    org = self._new_org(self._check_org(data, org=None))
                except ZendeskError as exc:
                    results.append(self._failure(index, exc))
                    continue
                results.append(
                    {"index": index, "id": org.id, "status": "Created", "action": "create", "success": True}
                )
            return results

        return self._job_reply(self._submit(len(items), work))

    async def _update_many_orgs(self, request: web.Request) -> web.Response:
        items = self._user_items(await self._body(request, "organizations"), "organizations")
        for data in items:
            if not isinstance(data, dict) or not isinstance(data.get("id"), int):
                raise invalid("every organization of update_many needs an integer id")

        def work() -> list[dict[str, Any]]:
            results = []
            for index, data in enumerate(items):
                org = self.organizations.get(data["id"])
                try:
                    if org is None:
                        raise not_found()
                    self._apply_org(
                        org, self._check_org({k: v for k, v in data.items() if k != "id"}, org=org)
                    )
                except ZendeskError as exc:
                    results.append(self._failure(index, exc, id=data["id"]))
                    continue
                results.append(
                    {"index": index, "id": org.id, "status": "Updated", "action": "update", "success": True}
                )
            return results

        return self._job_reply(self._submit(len(items), work))

    async def _update_org(self, request: web.Request) -> web.Response:
        org = self._org(request)
        self._apply_org(org, self._check_org(await self._body(request, "organization"), org=org))
        return web.json_response({"organization": org.to_json(self.url)})

    async def _delete_org(self, request: web.Request) -> web.Response:
        org = self._org(request)
        self.remove_organization(org.id)
        return web.Response(status=204)

    # -- backdoor: an agent working in Zendesk's own UI, and test controls ----------------------------

    def add_user_field(
        self, key: str, title: str | None = None, type: str = "text", options: Iterable[str] = ()
    ) -> UserField:
        """Define a custom user field (``user_fields.<key>``)."""
        if type not in FIELD_TYPES:
            raise ValueError(f"unknown user field type {type!r}")
        definition = UserField(
            next(self._field_ids),
            key,
            title or key.replace("_", " ").title(),
            type,
            tuple(options),
            self._now(),
        )
        self.user_fields[key] = definition
        return definition

    def seed_user(self, **fields: Any) -> str:
        """Create a user as an agent would (validated like the API; fires webhooks); returns its id."""
        try:
            user = self._new_user(self._check_user(dict(fields), user=None))
        except ZendeskError as exc:
            raise ValueError(str(exc)) from None
        return str(user.id)

    def edit_user(self, user_id: str | int, **fields: Any) -> None:
        """Change a user as an agent would; a new ``email`` is added as a secondary identity."""
        user = self.users[int(user_id)]
        try:
            self._apply_user(user, self._check_user(dict(fields), user=user))
        except ZendeskError as exc:
            raise ValueError(str(exc)) from None

    def delete_user(self, user_id: str | int) -> None:
        """Soft-delete a user (it moves to deleted users, ``active: false``)."""
        user = self.users[int(user_id)]
        if user.active:
            self._soft_delete(user)

    def user(self, user_id: str | int) -> dict[str, Any] | None:
        """The API representation of a live user, or None."""
        user = self.users.get(int(user_id))
        return self.user_json(user) if user is not None and user.active else None

    def identities(self, user_id: str | int) -> list[dict[str, Any]]:
        return [i.to_json(self.url) for i in self.users[int(user_id)].identities]

    def seed_organization(self, **fields: Any) -> str:
        try:
            org = self._new_org(self._check_org(dict(fields), org=None))
        except ZendeskError as exc:
            raise ValueError(str(exc)) from None
        return str(org.id)

    def edit_organization(self, org_id: str | int, **fields: Any) -> None:
        org = self.organizations[int(org_id)]
        try:
            self._apply_org(org, self._check_org(dict(fields), org=org))
        except ZendeskError as exc:
            raise ValueError(str(exc)) from None

    def remove_organization(self, org_id: str | int) -> None:
        """Delete an organization (users keep no reference to it)."""
        org = self.organizations.pop(int(org_id))
        for user in self.users.values():
            if user.organization_id == org.id:
                user.organization_id = None
                user.updated_ms = self._now()
        self._org_event(org, "organization.deleted", {})

    def spend(self, count: int) -> None:
        """Count ``count`` requests by another integration sharing the account's budget, now."""
        now = self._now()
        for _ in range(count):
            self._account_window.append(now)
            self.hits.append(Hit(now, "GET", API + "/other-integration", "basic"))

    def hold_jobs(self, count: int) -> list[str]:
        """Queue ``count`` jobs that never progress until ``release_jobs`` (another integration's imports)."""
        return [self._submit(0, list, held=True).id for _ in range(count)]

    def release_jobs(self) -> None:
        for job in self.jobs.values():
            if job.held and job.open:
                job.held = False
                self._complete(job)

    def run_jobs(self) -> None:
        """Complete every queued job that is not held, as Zendesk's workers eventually would."""
        for job in list(self.jobs.values()):
            if job.open and not job.held:
                self._complete(job)

    def requests_per_minute(self, path_prefix: str = API) -> int:
        """The most requests under ``path_prefix`` admitted within any rolling minute."""
        stamps = [h.at_ms for h in self.hits if h.path.startswith(path_prefix)]
        worst = 0
        start = 0
        for end, stamp in enumerate(stamps):
            while stamps[start] <= stamp - MINUTE_MS:
                start += 1
            worst = max(worst, end - start + 1)
        return worst
