"""The admin API (aiohttp): health, readiness, metrics, status, conflicts, change log, one entity.

Every route but ``/healthz`` (and the webhooks, which carry their own signatures) needs
``Authorization: Bearer <SYNCD_DAEMON__ADMIN_TOKEN>``, compared in constant time. Without a
configured token the API refuses everything but ``/healthz``; the daemon says so at start.
``openapi.json`` beside this module describes every route and is served at ``/api/openapi.json``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Protocol

import structlog
from aiohttp import web
from pydantic import SecretStr

from syncd.errors import ConflictClosed, ConflictNotFound, HoldDecided, HoldNotFound, NotASide, RefusedValue
from syncd.store import AsyncStore, ChangeRow, ConflictRow, StateStore

from .throttle import FailedAuthThrottle

log = structlog.get_logger("syncd.daemon")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Paths served without the admin token.
OPEN_PATHS = ("/healthz",)
OPEN_PREFIXES = ("/webhooks/",)
MAX_LIMIT = 1000


class AdminBackend(Protocol):
    """What the admin API needs from the daemon."""

    @property
    def store(self) -> AsyncStore: ...

    def readiness(self) -> tuple[bool, str]: ...

    async def status(self) -> dict[str, Any]: ...

    async def metrics_text(self) -> bytes: ...

    async def resolve_conflict(
        self, conflict_id: int, take: str | None, value: Any, allow_empty: bool = False
    ) -> ConflictRow: ...

    async def forget(self, key: str, dry_run: bool) -> dict[str, Any]: ...


def openapi_document() -> dict[str, Any]:
    text = resources.files("syncd.daemon").joinpath("openapi.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def _error(status: int, reason: str, **headers: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers or None)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def bearer_matches(header: str, secret: bytes) -> bool:
    """True if ``header`` is ``Bearer <token>`` with ``token`` equal to ``secret`` (constant time).

    An empty presented token never matches, whatever ``secret`` is, and neither does any token
    when ``secret`` itself is empty: an unset or blank admin token must never open the API.
    """
    scheme, _, given = header.partition(" ")
    presented = given.strip().encode()
    same = hmac.compare_digest(presented, secret)
    return scheme.lower() == "bearer" and bool(presented) and bool(secret) and same


def auth_middleware(
    token: SecretStr | None,
    pages: Callable[[str], bool] | None = None,
    throttle: FailedAuthThrottle | None = None,
) -> Any:
    """Bearer-token check for every path but the open ones (see the module docstring). Paths for
    which ``pages`` is true belong to the review web page, which checks its own sessions. An
    address that presented too many wrong tokens lately gets 429 (``syncd.daemon.throttle``)."""
    secret = token.get_secret_value().strip().encode() if token is not None else b""
    throttle = throttle or FailedAuthThrottle()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return await handler(request)
        if pages is not None and pages(request.path):
            return await handler(request)
        challenge = {"WWW-Authenticate": 'Bearer realm="syncd"'}
        if not secret:
            return _error(
                401,
                "the admin API is disabled: no admin token is configured (SYNCD_DAEMON__ADMIN_TOKEN)",
                **challenge,
            )
        header = request.headers.get("Authorization", "")
        if not header.strip():
            return _error(401, "missing or wrong bearer token", **challenge)
        wait = throttle.retry_after(request.remote)
        if wait is not None:
            seconds = str(math.ceil(wait))
            return _error(
                429,
                f"too many wrong tokens from this address: retry in {seconds} s",
                **{"Retry-After": seconds},
            )
        if not bearer_matches(header, secret):
            throttle.failed(request.remote)
            return _error(401, "missing or wrong bearer token", **challenge)
        throttle.succeeded(request.remote)
        return await handler(request)

    return check


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unexpected failures become a logged JSON 500 instead of aiohttp's plain-text page."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("admin request failed", method=request.method, path=request.path)
        return _error(500, "internal error; see the daemon's log")


def _int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be an integer, not {raw[:40]!r}"}),
            content_type="application/json",
        ) from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be between {low} and {high}"}),
            content_type="application/json",
        )
    return value


class AdminApi:
    """The admin handlers over an ``AdminBackend``."""

    def __init__(self, backend: AdminBackend, *, body_timeout: float = 10.0) -> None:
        self.backend = backend
        self.body_timeout = body_timeout

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
            web.get("/api/status", self.status),
            web.get("/api/conflicts", self.conflicts),
            web.post("/api/conflicts/{id}/resolve", self.resolve),
            web.post("/api/forget", self.forget),
            web.get("/api/deletes", self.held_deletes),
            web.post("/api/deletes/{id}/approve", self.decide_held_delete),
            web.post("/api/deletes/{id}/reject", self.decide_held_delete),
            web.get("/api/entities/{key}", self.entity),
            web.get("/api/changelog", self.changelog),
            web.get("/api/openapi.json", self.openapi),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready, reason = self.backend.readiness()
        return _json({"ready": ready, "reason": reason}, 200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        body = await self.backend.metrics_text()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def status(self, request: web.Request) -> web.Response:
        return _json(await self.backend.status())

    async def conflicts(self, request: web.Request) -> web.Response:
        which = request.query.get("status", "open")
        if which not in ("open", "all", "resolved", "auto"):
            return _error(400, "status must be one of open, all, resolved, auto")
        limit = _int_param(request, "limit", 100, 1, MAX_LIMIT)

        def query(store: StateStore) -> list[ConflictRow]:
            return store.conflicts(status=None if which == "all" else which, limit=limit or 100)

        return _json({"conflicts": await self.backend.store.call(query)})

    async def resolve(self, request: web.Request) -> web.Response:
        raw = request.match_info["id"]
        if not raw.isdigit():
            return _error(400, f"conflict id must be a number, not {raw[:40]!r}")
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await request.json()
        except TimeoutError:
            return _error(408, f"body not received within {self.body_timeout:g}s", Connection="close")
        except web.RequestPayloadError:
            return _error(400, "the body cannot be read (its Content-Encoding does not match it)")
        except (ValueError, UnicodeDecodeError):
            return _error(400, 'body must be JSON: {"take": APP} or {"value": VALUE}')
        if (
            not isinstance(body, dict)
            or ("take" in body) == ("value" in body)
            or set(body) - {"take", "value", "allow_empty"}
            or ("allow_empty" in body and ("value" not in body or not isinstance(body["allow_empty"], bool)))
        ):
            return _error(
                400,
                'give exactly one of {"take": APP} or {"value": VALUE} (optionally with "allow_empty": true)',
            )
        take = body.get("take")
        if "take" in body and not isinstance(take, str):
            return _error(400, "take must be an app name")
        conflict = await self.backend.store.call(lambda s: s.conflict(int(raw)))
        if conflict is None:
            return _error(404, f"no conflict {raw}")
        if conflict["status"] != "open":
            return _error(409, f"conflict {raw} is already {conflict['status']}")
        try:
            done = await self.backend.resolve_conflict(
                int(raw), take, body.get("value"), bool(body.get("allow_empty", False))
            )
        except ConflictNotFound as exc:
            return _error(404, str(exc))
        except ConflictClosed as exc:  # settled meanwhile, by another admin
            return _error(409, str(exc))
        except (NotASide, RefusedValue) as exc:
            return _error(400, str(exc))
        log.info("conflict resolved by admin", conflict=int(raw), field=done.get("field"), take=take)
        return _json({"resolved": int(raw), "field": done.get("field"), "resolution": done.get("resolution")})

    async def forget(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, 'body must be JSON: {"key": EMAIL, "dry_run": false}')
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("key"), str)
            or not body["key"].strip()
            or set(body) - {"key", "dry_run"}
            or not isinstance(body.get("dry_run", False), bool)
        ):
            return _error(400, 'give {"key": EMAIL} and optionally {"dry_run": true}')
        try:
            receipt = await self.backend.forget(body["key"], bool(body.get("dry_run", False)))
        except ValueError as exc:
            return _error(400, str(exc))
        # The receipt carries no personal data; neither does this log line.
        log.info(
            "erasure requested by admin",
            status=receipt.get("status", "dry run"),
            erasure=receipt.get("erasure_id"),
        )
        return _json(receipt)

    async def held_deletes(self, request: web.Request) -> web.Response:
        from syncd.sync.operations import held_deletes

        return _json({"deletes": await self.backend.store.call(held_deletes)})

    async def decide_held_delete(self, request: web.Request) -> web.Response:
        from syncd.sync.operations import decide_held_delete

        raw, approve = request.match_info["id"], request.path.endswith("/approve")
        if not raw.isdigit():
            return _error(400, f"held delete id must be a number, not {raw[:40]!r}")
        body: Any = {}
        if request.can_read_body:
            try:
                async with asyncio.timeout(self.body_timeout):
                    body = await request.json()
            except TimeoutError:
                return _error(408, f"body not received within {self.body_timeout:g}s", Connection="close")
            except (ValueError, UnicodeDecodeError, web.RequestPayloadError):
                return _error(400, 'body must be JSON: {"by": NAME, "why": TEXT}')
        if (
            not isinstance(body, dict)
            or set(body) - {"by", "why"}
            or not all(isinstance(body.get(k, ""), str) for k in ("by", "why"))
        ):
            return _error(400, 'give {"by": NAME, "why": TEXT} (both optional strings)')
        who = body.get("by", "").strip() or "admin API"
        why = body.get("why", "").strip()
        try:
            hold = await self.backend.store.call(decide_held_delete, int(raw), approve, who, why)
        except HoldNotFound as exc:
            return _error(404, str(exc))
        except HoldDecided as exc:
            return _error(409, str(exc))
        log.info("held deletes decided by admin", hold=hold["id"], app=hold["app"], status=hold["status"])
        return _json(hold)

    async def entity(self, request: web.Request) -> web.Response:
        from syncd.sync.operations import entity_view

        key = request.match_info["key"]
        limit = _int_param(request, "limit", 20, 1, MAX_LIMIT) or 20
        view = await self.backend.store.call(lambda store: entity_view(store, key, limit))
        if view is None:
            return _error(404, f"no entity with key {key!r}")
        return _json(view)

    async def changelog(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 100, 1, MAX_LIMIT) or 100
        before = _int_param(request, "before", None, 1, 2**62)
        after = _int_param(request, "after", None, 0, 2**62)
        entity = _int_param(request, "entity", None, 1, 2**62)
        sync = request.query.get("sync") or None
        if after is not None:
            # Following: entries written after a position, oldest first (``changes_after``); a
            # row folded into since comes with only its new entries, under the id it always had.
            def follow(store: StateStore) -> tuple[list[ChangeRow], int]:
                return store.changes_after(after, limit)

            found, upto = await self.backend.store.call(follow)
            entries = [
                e
                for e in found
                if (entity is None or e["entity_id"] == entity) and (sync is None or e["sync"] == sync)
            ]
            return _json({"entries": entries, "next_before": None, "next_after": upto})

        def query(store: StateStore) -> list[ChangeRow]:
            return store.changelog(entity_id=entity, sync=sync, limit=limit, before=before)

        entries = await self.backend.store.call(query)
        # ``limit`` counts stored rows; entries folded into one share its id.
        more = len({e["id"] for e in entries}) == limit and entries[-1]["id"] > 1
        return _json({"entries": entries, "next_before": entries[-1]["id"] if more else None})

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(openapi_document())
