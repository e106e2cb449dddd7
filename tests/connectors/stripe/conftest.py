"""Fixtures: localstripe on loopback (one process per test worker, emptied before each test).

localstripe is a stateful fake Stripe server from PyPI (in the ``dev`` extra). When it cannot be
imported or started, every test that needs it is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from syncd.connector.http import RetryPolicy
from syncd_stripe import StripeConfig, StripeConnector, form

SECRET_KEY = "sk_test_syncd_0123456789"
WEBHOOK_SECRET = "whsec_syncd_current"
OLD_WEBHOOK_SECRET = "whsec_syncd_previous"
#: Retries without real waiting worth mentioning.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.005, max_delay=0.02, jitter=0.0)
_STARTUP_DEADLINE = 20.0
_SERVER = Path(__file__).with_name("localstripe_server.py")


@dataclass
class LocalStripe:
    """A running localstripe and a backdoor into it (plain API calls, as a person or script would)."""

    url: str
    process: subprocess.Popen[str]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, auth=(SECRET_KEY, ""), timeout=10.0)

    async def call(self, method: str, path: str, fields: Mapping[str, Any] | None = None) -> Any:
        async with self.client() as client:
            response = await client.request(method, path, data=form(fields) if fields else None)
        assert response.status_code < 300, (
            f"localstripe {method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    async def customers(self, email: str | None = None) -> list[dict[str, Any]]:
        query = f"?limit=1000&email={email}" if email else "?limit=1000"
        body = await self.call("GET", "/v1/customers" + query)
        return list(body["data"])

    def reset(self) -> None:
        response = httpx.delete(f"{self.url}/_config/data", timeout=10.0)
        response.raise_for_status()
        # Deliveries to an earlier test's receiver are switched off (an event type nothing sends).
        httpx.post(
            f"{self.url}/_config/webhooks/syncd",
            data=form({"url": "http://127.0.0.1:9/", "secret": "off", "events": ["syncd.none"]}),
            timeout=10.0,
        ).raise_for_status()


def _start() -> LocalStripe:
    try:
        import localstripe  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"localstripe is not installed ({exc}); install the dev extra")
    process = subprocess.Popen(
        [sys.executable, str(_SERVER)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        process.stdout.close()
        pytest.skip(f"localstripe did not start (exit code {process.wait()}, first line {port!r})")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + _STARTUP_DEADLINE
    while True:
        try:
            if httpx.get(f"{url}/v1/customers", auth=(SECRET_KEY, ""), timeout=1.0).status_code == 200:
                return LocalStripe(url, process)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.stdout.close()
            pytest.skip(f"localstripe did not answer on {url} within {_STARTUP_DEADLINE:.0f}s")
        time.sleep(0.02)  # polling a starting process, with the deadline above


@pytest.fixture(scope="session")
def localstripe_server() -> Iterator[LocalStripe]:
    server = _start()
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        if server.process.stdout is not None:
            server.process.stdout.close()


@pytest.fixture
def localstripe(localstripe_server: LocalStripe) -> LocalStripe:
    """localstripe, emptied."""
    localstripe_server.reset()
    return localstripe_server


ConnectorFactory = Callable[..., StripeConnector]


@pytest.fixture
async def make_connector() -> AsyncIterator[ConnectorFactory]:
    made: list[StripeConnector] = []

    def make(
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = FAST_RETRY,
        sleep: Any = None,
        now: Callable[[], float] = time.time,
        **settings: Any,
    ) -> StripeConnector:
        config = StripeConfig.model_validate(
            {
                "secret_key": SECRET_KEY,
                "base_url": base_url,
                "webhook_secret": WEBHOOK_SECRET,
                "requests_per_second": 1000.0,
                **settings,
            }
        )
        connector = StripeConnector(config, transport=transport, retry=retry, sleep=sleep, now=now)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


@dataclass
class Receiver:
    """A loopback HTTP endpoint standing in for syncd's webhook server."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/stripe", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = int(getattr(server, "sockets", [])[0].getsockname()[1])
    target.url = f"http://127.0.0.1:{port}/webhooks/stripe"
    try:
        yield target
    finally:
        await runner.cleanup()


@pytest.fixture
async def edge(localstripe: LocalStripe) -> AsyncIterator[Any]:
    """The Stripe behaviours localstripe lacks, in front of it (see ``edge.py``)."""
    from .edge import StripeEdge

    proxy = StripeEdge(localstripe.url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


class LoseResponses(httpx.AsyncBaseTransport):
    """Sends requests on, but loses the response of the next ``n`` matching ones (a timeout after
    the server acted): the hazard an idempotency key exists for."""

    def __init__(self, method: str, path: str, times: int = 1) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.method, self.path, self.left = method, path, times
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.left and request.method == self.method and request.url.path == self.path:
            self.left -= 1
            self.lost += 1
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("response lost after the server acted", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
