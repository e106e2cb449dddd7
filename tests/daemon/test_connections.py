"""The connection cap: idle connections make room for newcomers, busy ones are never cut off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from syncd.daemon.connections import ConnectionLimiter

PATIENCE = 15.0


@dataclass
class Served:
    port: int
    limiter: ConnectionLimiter
    release: asyncio.Event
    entered: asyncio.Queue[None]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A server capped at two connections; ``/slow`` stays busy until ``release`` is set."""
    release = asyncio.Event()
    entered: asyncio.Queue[None] = asyncio.Queue()

    async def slow(request: web.Request) -> web.Response:
        entered.put_nowait(None)
        await release.wait()
        return web.Response(text="slow done")

    async def fast(request: web.Request) -> web.Response:
        return web.Response(text="fast")

    holder: list[web.AppRunner] = []

    def handler() -> asyncio.BaseProtocol:
        server = holder[0].server
        assert server is not None
        return server()

    limiter = ConnectionLimiter(handler, 2)
    app = web.Application(middlewares=[limiter.middleware])
    app.add_routes([web.get("/slow", slow), web.get("/fast", fast)])
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=60.0)
    holder.append(runner)
    await runner.setup()
    listener = await asyncio.get_running_loop().create_server(limiter, "127.0.0.1", 0)
    try:
        yield Served(listener.sockets[0].getsockname()[1], limiter, release, entered)
    finally:
        release.set()
        listener.close()
        await runner.cleanup()


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _get(port: int, path: str) -> bytes:
    reader, writer = await _connect(port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return await asyncio.wait_for(reader.read(), PATIENCE)
    finally:
        writer.close()


async def test_a_newcomer_closes_the_oldest_idle_connection_when_the_cap_is_reached(served: Served) -> None:
    first = await _connect(served.port)
    second = await _connect(served.port)
    for _, writer in (first, second):
        writer.write(b"GET /fast HTTP/1.1\r\nHost: x\r\n")  # headers never finished: idle
    answer = await _get(served.port, "/fast")
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"fast")
    # The oldest idle connection was closed to make room; the second one is still open.
    assert await asyncio.wait_for(first[0].read(), PATIENCE) == b""
    assert not second[0].at_eof()
    assert served.limiter.evicted == 1
    for _, writer in (first, second):
        writer.close()


async def test_busy_connections_are_never_closed_and_a_newcomer_gets_503_instead(served: Served) -> None:
    busy = []
    for _ in range(2):
        reader, writer = await _connect(served.port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        busy.append((reader, writer))
    for _ in range(2):
        await asyncio.wait_for(served.entered.get(), PATIENCE)
    refused = await _get(served.port, "/fast")
    assert refused.startswith(b"HTTP/1.1 503"), refused
    assert b"too many open connections" in refused
    assert served.limiter.refused == 1
    served.release.set()
    for reader, writer in busy:
        assert (await asyncio.wait_for(reader.read(), PATIENCE)).endswith(b"slow done")
        writer.close()
    assert (await _get(served.port, "/fast")).endswith(b"fast")
