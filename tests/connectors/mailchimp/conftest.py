"""Fixtures: a Mailchimp fake on loopback, connectors configured against it, a webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from syncd.connector.http import RetryPolicy
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.mailchimp import MailchimpFake
from syncd_mailchimp import MailchimpConfig, MailchimpConnector

#: Where the fake's frozen clock starts (Mailchimp timestamps have whole-second precision).
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
API_KEY = "0123456789abcdef0123456789abcdef-us1"
LIST_ID = "a1b2c3d4e5"
WEBHOOK_SECRET = "hook-secret-1"
#: Retries without real waiting worth mentioning.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05, jitter=0.0)

ConnectorFactory = Callable[..., MailchimpConnector]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START, frozen=True)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[MailchimpFake]:
    app = MailchimpFake(api_key=API_KEY, list_ids=[LIST_ID], clock=clock)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def make_connector(fake: MailchimpFake) -> AsyncIterator[ConnectorFactory]:
    made: list[MailchimpConnector] = []

    def make(*, retry: RetryPolicy = FAST_RETRY, **settings: Any) -> MailchimpConnector:
        config = MailchimpConfig.model_validate(
            {
                "api_key": API_KEY,
                "base_url": fake.url,
                "list_id": LIST_ID,
                "webhook_secret": WEBHOOK_SECRET,
                **settings,
            }
        )
        connector = MailchimpConnector(config, retry=retry)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


@pytest.fixture
def connector(make_connector: ConnectorFactory) -> MailchimpConnector:
    return make_connector()


@dataclass
class Received:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP endpoint standing in for syncd's webhook server."""

    requests: list[Received] = field(default_factory=list)
    get_status: int = 200
    url: str = ""

    @property
    def posts(self) -> list[Received]:
        return [r for r in self.requests if r.method == "POST"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.method, str(request.url), dict(request.headers), body))
        return web.Response(status=self.get_status if request.method == "GET" else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    app = web.Application()
    app.router.add_route("*", "/webhooks/mailchimp", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = int(getattr(server, "sockets", [])[0].getsockname()[1])
    target.url = f"http://127.0.0.1:{port}/webhooks/mailchimp"
    try:
        yield target
    finally:
        await runner.cleanup()
