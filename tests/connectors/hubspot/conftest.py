"""Fixtures for the HubSpot connector tests: a fake HubSpot on loopback and a connector bound to it.

The fake runs on a frozen clock (``clock.advance`` moves time: timestamps, search index lag) and
the connector never sleeps between retries, so every test is deterministic and fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from syncd.connector.http import RetryPolicy
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.hubspot import HubSpotFake
from syncd_hubspot import HubSpotConfig, HubSpotConnector

TOKEN = "pat-na1-test-token-0000"
SECRET = "hubspot-client-secret-for-tests"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def no_sleep(seconds: float) -> None:
    """Retries happen at once: backoff timing is the SDK's business, not these tests'."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START, frozen=True)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[HubSpotFake]:
    server = HubSpotFake(token=TOKEN, client_secret=SECRET, clock=clock)
    await server.start()
    yield server
    await server.stop()


def make_connector(
    fake: HubSpotFake, *, transport: httpx.AsyncBaseTransport | None = None, **settings: Any
) -> HubSpotConnector:
    config = HubSpotConfig.model_validate(
        {
            "base_url": fake.url,
            "token": TOKEN,
            "client_secret": SECRET,
            "requests_per_second": 10_000,
            "search_requests_per_second": 10_000,
            **settings,
        }
    )
    retry = RetryPolicy(attempts=4, base_delay=0.01, jitter=0)
    return HubSpotConnector(config, retry=retry, sleep=no_sleep, transport=transport)


@pytest.fixture
async def connector(fake: HubSpotFake) -> AsyncIterator[HubSpotConnector]:
    conn = make_connector(fake)
    yield conn
    await conn.aclose()


class WebhookReceiver:
    """A loopback endpoint recording the webhook requests the fake delivers (method, url, headers, body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((request.method, str(request.url), dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/hubspot", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/webhooks/hubspot"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver(fake: HubSpotFake) -> AsyncIterator[WebhookReceiver]:
    sink = WebhookReceiver()
    await sink.start()
    fake.webhook_url = sink.url
    yield sink
    await sink.stop()


@pytest.fixture
def contacts_seeded(fake: HubSpotFake) -> list[str]:
    return [fake.seed({"email": f"person{i}@example.com", "firstname": f"P{i}"}) for i in range(5)]
