"""``/webhooks/{app}``: verified, size-limited, durable webhook intake (aiohttp handlers).

A delivery is checked in this order, each failure answered with a reason and counted:
503 while the daemon shuts down (the sender retries later), 404 for an app that is not synced
or takes no webhooks, 401 when the connector refuses the request from its method, URL and
headers alone (``verify_webhook_request``: a wrong URL secret, missing or stale signature
headers) — before any of the body is read —, 413 for a body over ``webhook_max_bytes``, 408 for
a body not received within ``body_timeout``, 401 when the connector's signature check over the
raw bytes fails (against the externally visible URL), 400 when the body cannot be parsed. A
client that disconnects while sending its body is logged at info level and forgotten. Accepted events are stored in the inbox before the 200 goes out; the inbox
worker is then woken to re-read the records they name. ``GET`` answers 200 for a known app,
since some apps (Mailchimp) validate a webhook URL with a GET before using it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import structlog
from aiohttp import ClientPayloadError, web

from syncd.connector import Connector, WebhookHint

from .inbox import Inbox
from .metrics import Metrics

log = structlog.get_logger("syncd.daemon")

_CHUNK = 64 * 1024
_REASON_MAX = 300


def _error(status: int, reason: str, **headers: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers or None)


class WebhookIntake:
    """The webhook handlers and what they need from the daemon."""

    def __init__(
        self,
        *,
        connectors: Callable[[], Mapping[str, Connector]],
        inbox: Inbox,
        metrics: Metrics,
        max_bytes: int,
        accepting: Callable[[], bool],
        on_stored: Callable[[], None],
        public_url: str | None = None,
        body_timeout: float = 10.0,
    ) -> None:
        self.connectors = connectors
        self.inbox = inbox
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.accepting = accepting
        self.on_stored = on_stored
        self.public_url = public_url.rstrip("/") if public_url else None
        self.body_timeout = body_timeout

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/{app}", self.post), web.get("/webhooks/{app}", self.get)]

    def _connector(self, app: str) -> Connector | None:
        connector = self.connectors().get(app)
        if connector is None or not connector.capabilities.webhooks:
            return None
        return connector

    def signed_url(self, request: web.Request) -> str:
        """The URL the sender signed: the configured public base plus the path, or the request URL."""
        if self.public_url is not None:
            return self.public_url + request.rel_url.path_qs
        return str(request.url)

    async def get(self, request: web.Request) -> web.Response:
        app = request.match_info["app"]
        if self._connector(app) is None:
            return _error(404, f"no app {app!r} takes webhooks here")
        return web.json_response({"app": app, "status": "ready"})

    def _reject(self, app: str, status: int, reason: str, label: str, **headers: str) -> web.Response:
        # Reasons may quote the sender's bytes: keep log lines and answers short.
        reason = reason if len(reason) <= _REASON_MAX else reason[: _REASON_MAX - 3] + "..."
        self.metrics.webhooks_rejected.labels(app=app, reason=label).inc()
        log.warning("webhook rejected", app=app, status=status, reason=reason)
        return _error(status, reason, **headers)

    async def _body(self, request: web.Request) -> bytes | None:
        """The raw body, or None once it exceeds the limit (never buffering more than that)."""
        if request.content_length is not None and request.content_length > self.max_bytes:
            return None
        body = bytearray()
        async for chunk in request.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self.max_bytes:
                return None
        return bytes(body)

    async def post(self, request: web.Request) -> web.Response:
        app = request.match_info["app"]
        if not self.accepting():
            # The app name is not checked yet: keep attacker-chosen names out of metric labels.
            return self._reject(
                "-", 503, "shutting down; retry later", "shutting_down", **{"Retry-After": "30"}
            )
        connector = self._connector(app)
        if connector is None:
            return self._reject("-", 404, f"no app {app!r} takes webhooks here", "unknown_app")
        headers = {k: v for k, v in request.headers.items()}
        try:
            connector.verify_webhook_request(request.method, self.signed_url(request), headers)
        except Exception as exc:  # as below: any failure of the check is a failed check
            return self._reject(app, 401, f"verification failed: {exc}", "unverified", Connection="close")
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._body(request)
        except TimeoutError:
            return self._reject(
                app, 408, f"body not received within {self.body_timeout:g}s", "timeout", Connection="close"
            )
        except (ConnectionError, ClientPayloadError) as exc:
            # Nobody is left to answer: not an error of ours, and no traceback.
            log.info("webhook sender disconnected before its body was complete", app=app, reason=str(exc))
            return _error(400, "connection closed before the body was complete")
        except web.RequestPayloadError as exc:  # a body aiohttp cannot decode (a bad gzip stream...)
            return self._reject(app, 400, f"unreadable body: {exc}", "malformed")
        if body is None:
            return self._reject(app, 413, f"body larger than {self.max_bytes} bytes", "too_large")
        try:
            connector.verify_webhook(request.method, self.signed_url(request), headers, body)
        except Exception as exc:  # a connector's check failing in any way is a failed check
            return self._reject(app, 401, f"verification failed: {exc}", "unverified")
        try:
            hints: list[WebhookHint] = connector.parse_webhook(headers, body)
        except Exception as exc:  # a verified but unparseable body is the sender's problem, not a 500
            return self._reject(app, 400, f"malformed webhook body: {exc}", "malformed")
        try:
            new = await self.inbox.accept(app, hints)
        except Exception:
            log.exception("webhook could not be stored; asking the sender to retry", app=app)
            return _error(503, "could not store the events; retry later", **{"Retry-After": "30"})
        self.metrics.webhooks_received.labels(app=app).inc()
        self.metrics.webhook_events.labels(app=app).inc(new)
        log.info("webhook accepted", app=app, events=len(hints), new=new, duplicates=len(hints) - new)
        if new:
            self.on_stored()
        return web.json_response({"received": len(hints), "new": new})
