"""Shared machinery of the fake app servers: lifecycle, failure injection and webhook delivery.

A fake subclasses ``FakeApp``, adds its routes in ``setup_routes`` and calls ``self.emit(...)``
whenever a record changes; deliveries go to ``webhook_url`` (if set) in the background, in order,
and ``await fake.webhooks_idle()`` waits until every queued delivery has been attempted, so tests
never sleep.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from ._failures import Failure, FailureKind


@dataclass
class Delivery:
    """One webhook POST the fake made, kept for tests to inspect."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None


@dataclass
class _Outgoing:
    body: bytes
    headers: dict[str, str]
    content_type: str
    url_suffix: str = ""
    deliveries: list[Delivery] = field(default_factory=list)


class FakeApp:
    """Base class: an aiohttp application on 127.0.0.1 with failure injection and webhooks."""

    #: Name used in logs and by ``syncd demo``.
    name = "fake"

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._inject_failures])
        self.failures: collections.deque[Failure] = collections.deque()
        self.webhook_url: str | None = None
        self.deliveries: list[Delivery] = []
        self.requests: list[tuple[str, str]] = []
        self._queue: asyncio.Queue[_Outgoing] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port: int | None = None
        self.setup_routes(self.app.router)

    # -- to override ---------------------------------------------------------------------------

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        """Add the app's routes."""

    def rate_limit_response(self, request: web.Request) -> web.StreamResponse:
        """The app's own way of saying 429 (override for vendor-specific bodies/headers)."""
        return web.json_response({"message": "rate limited"}, status=429)

    def server_error_response(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "internal error"}, status=500)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} fake is not started")
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (``port=0`` picks a free port); returns the base URL."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._queue = asyncio.Queue()
        self._session = aiohttp.ClientSession()
        self._sender = asyncio.create_task(self._send_loop())
        return self.url

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._session = self._sender = None

    async def __aenter__(self) -> FakeApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- failure injection ---------------------------------------------------------------------

    def inject(
        self, kind: FailureKind, times: int = 1, path_prefix: str = "", stall_seconds: float = 30.0
    ) -> None:
        """Make the next ``times`` requests under ``path_prefix`` fail the app's way."""
        self.failures.append(Failure(kind, times, path_prefix, stall_seconds))

    @web.middleware
    async def _inject_failures(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        for failure in self.failures:
            if failure.times > 0 and request.path.startswith(failure.path_prefix):
                failure.times -= 1
                if failure.times == 0:
                    self.failures.remove(failure)
                if failure.kind == "429":
                    return self.rate_limit_response(request)
                if failure.kind == "500":
                    return self.server_error_response(request)
                await asyncio.sleep(failure.stall_seconds)
                return self.server_error_response(request)
        return await handler(request)

    # -- webhooks ------------------------------------------------------------------------------

    def emit(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        content_type: str = "application/json",
        url_suffix: str = "",
    ) -> None:
        """Queue one webhook delivery (already serialised and signed by the subclass)."""
        if self.webhook_url is None or self._queue is None:
            return
        self._queue.put_nowait(_Outgoing(body, dict(headers or {}), content_type, url_suffix))

    async def webhooks_idle(self) -> None:
        """Wait until every queued webhook delivery has been attempted."""
        if self._queue is not None:
            await self._queue.join()

    async def _send_loop(self) -> None:
        assert self._queue is not None
        assert self._session is not None
        while True:
            out = await self._queue.get()
            try:
                url = (self.webhook_url or "") + out.url_suffix
                delivery = Delivery(url=url, body=out.body, headers=out.headers)
                self.deliveries.append(delivery)
                try:
                    async with self._session.post(
                        url,
                        data=out.body,
                        headers={**out.headers, "Content-Type": out.content_type},
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as resp:
                        delivery.status = resp.status
                        await resp.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    delivery.error = f"{type(exc).__name__}: {exc}"
            finally:
                self._queue.task_done()
