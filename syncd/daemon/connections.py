"""A cap on simultaneous client connections, for the daemon's HTTP listener.

The listener's protocol factory is wrapped: every connection is counted, and when
``max_connections`` are open a newcomer closes the oldest *idle* connection (one waiting for
a request's headers, or for its next request on keep-alive) to make room. Clients that open
connections and never finish a request therefore cannot lock others out (nor exhaust the
process's file descriptors); a connection whose request is being handled is never closed for
this. When every connection is busy, the newcomer is answered 503 and closed.

Idle and busy are told apart by ``middleware``: a connection is busy while one of its requests
is in a handler.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger("syncd.daemon")

_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"
    b"Connection: close\r\nContent-Length: 39\r\n\r\n"
    b'{"error": "too many open connections"}\n'
)
#: Seconds between two warnings about closed or refused connections.
_WARN_EVERY = 60.0


class ConnectionLimiter:
    """Wraps a protocol factory (``web.AppRunner.server``) to cap open connections."""

    def __init__(self, factory: Callable[[], asyncio.BaseProtocol], limit: int) -> None:
        if limit < 1:
            raise ValueError("the connection limit must be at least 1")
        self._factory = factory
        self.limit = limit
        self._open: dict[_Tracked, None] = {}  # insertion order: oldest first
        self._busy: dict[asyncio.BaseProtocol, int] = {}
        self.evicted = 0
        self.refused = 0
        self._warned_at = -_WARN_EVERY

    def __call__(self) -> asyncio.Protocol:
        return _Tracked(self._factory(), self)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Marks the request's connection busy while its handler runs."""
        protocol = request.protocol
        self._busy[protocol] = self._busy.get(protocol, 0) + 1
        try:
            return await handler(request)
        finally:
            left = self._busy.pop(protocol, 1) - 1
            if left > 0:
                self._busy[protocol] = left

    def _admit(self, conn: _Tracked) -> bool:
        """Make room for ``conn`` (closing the oldest idle connection); False if there is none."""
        if len(self._open) >= self.limit:
            idle = next((c for c in self._open if c.inner not in self._busy), None)
            if idle is None:
                self.refused += 1
                self._warn()
                return False
            self._forget(idle)
            idle.close()
            self.evicted += 1
            self._warn()
        self._open[conn] = None
        return True

    def _forget(self, conn: _Tracked) -> None:
        # Its handler may still run (until it notices the loss): the middleware clears ``_busy``.
        self._open.pop(conn, None)

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "connection limit reached: idle connections closed, busy ones refused",
                limit=self.limit,
                closed_idle=self.evicted,
                refused=self.refused,
            )


class _Tracked(asyncio.Protocol):
    """One connection: hands every event to the wrapped protocol, tells the limiter its life."""

    def __init__(self, inner: asyncio.BaseProtocol, limiter: ConnectionLimiter) -> None:
        self.inner = inner
        self.limiter = limiter
        self.transport: asyncio.Transport | None = None
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.limiter._admit(self):
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self.admitted = True
        self.inner.connection_made(transport)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.admitted:
            self.limiter._forget(self)
            self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        if self.admitted:
            result: Any = self.inner.eof_received()  # type: ignore[attr-defined]
            return bool(result) if result is not None else None
        return None

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()
