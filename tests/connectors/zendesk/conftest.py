"""Fixtures: a Zendesk fake on loopback whose frozen clock is also the connector's clock.

The connector's waits (rate limiting, Retry-After, job polling, TooManyJobs backoff) go through
``VirtualTime.sleep``, which advances the fake's clock instead of waiting, so a minute of
Zendesk time passes in microseconds and every test is deterministic. The fake counts requests
on that same clock, which is what lets a test check the per-minute limits were kept.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from syncd.connector.http import RetryPolicy
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.zendesk import ZendeskFake
from syncd_zendesk import ZendeskConfig, ZendeskConnector

AGENT = "agent@lovelace.io"
TOKEN = "zd-api-token-0123456789"
OAUTH = "zd-oauth-access-token-abcdef"
SECRET = "zendesk-signing-secret-1"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RETRY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=65.0, jitter=0.0)


class VirtualTime:
    """Monotonic seconds read from the fake's clock; sleeping advances that clock (to the millisecond, never less)."""

    def __init__(self, clock: FakeClock) -> None:
        self.fake_clock = clock
        self.sleeps: list[float] = []
        #: Called after every sleep (a test can let "the world" move on while the connector waits).
        self.on_sleep: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.fake_clock.now_ms() / 1000.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.fake_clock.advance(math.ceil(max(seconds, 0.0) * 1000) / 1000)
        if self.on_sleep is not None:
            self.on_sleep(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START, frozen=True)


@pytest.fixture
def vtime(clock: FakeClock) -> VirtualTime:
    return VirtualTime(clock)


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[ZendeskFake]:
    server = ZendeskFake(
        agent_email=AGENT, api_token=TOKEN, oauth_token=OAUTH, webhook_secret=SECRET, clock=clock
    )
    server.add_user_field("plan", "Plan", "text")
    server.add_user_field("seats", "Seats", "integer")
    await server.start()
    yield server
    await server.stop()


def settings(fake: ZendeskFake, *, auth: str = "basic", **extra: Any) -> ZendeskConfig:
    credentials: dict[str, Any] = (
        {"email": AGENT, "api_token": TOKEN} if auth == "basic" else {"oauth_token": OAUTH}
    )
    return ZendeskConfig.model_validate(
        {"base_url": fake.url, "webhook_secret": SECRET, **credentials, **extra}
    )


ConnectorFactory = Callable[..., ZendeskConnector]


@pytest.fixture
async def make_connector(fake: ZendeskFake, vtime: VirtualTime) -> AsyncIterator[ConnectorFactory]:
    made: list[ZendeskConnector] = []

    def make(
        *, auth: str = "basic", transport: httpx.AsyncBaseTransport | None = None, **extra: Any
    ) -> ZendeskConnector:
        connector = ZendeskConnector(
            settings(fake, auth=auth, **extra),
            transport=transport,
            retry=RETRY,
            sleep=vtime.sleep,
            clock=vtime,
        )
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


@pytest.fixture
def connector(make_connector: ConnectorFactory) -> ZendeskConnector:
    return make_connector()
