"""HttpClient against a real aiohttp server on a loopback port: the happy path and rate limiting.

The rate limiter runs on a fake clock (its sleeps advance time instantly), so pacing is asserted
from the sleeps it asked for, never from wall-clock timings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from syncd.connector import AuthError, NotFound
from syncd.connector.http import HttpClient, RateLimiter, RetryPolicy
from tests.connector.fake_clock import FakeClock

TOKEN = "loopback-token-5f2c9a"


class RecordsApp:
    """A tiny JSON API: bearer auth, CRUD on /v1/records, and a switch to answer 429s."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.seen: list[tuple[str, str]] = []
        self.rate_limited = 0
        self.app = web.Application(middlewares=[self.middleware])
        self.app.router.add_get("/v1/records", self.list_records)
        self.app.router.add_post("/v1/records", self.create)
        self.app.router.add_patch("/v1/records/{id}", self.patch)
        self.app.router.add_delete("/v1/records/{id}", self.delete)
        self.app.router.add_get("/v1/records/{id}", self.get)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen.append((request.method, request.path_qs))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "bad credentials"}, status=401)
        if self.rate_limited:
            self.rate_limited -= 1
            return web.json_response({"message": "slow down"}, status=429, headers={"Retry-After": "2"})
        response: web.StreamResponse = await handler(request)
        return response

    async def list_records(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        return web.json_response({"data": list(self.records.values())[:limit]})

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        rid = str(len(self.records) + 1)
        self.records[rid] = {"id": rid, **body}
        return web.json_response(self.records[rid], status=201)

    async def get(self, request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        if rid not in self.records:
            return web.json_response({"message": f"record {rid} not found"}, status=404)
        return web.json_response(self.records[rid])

    async def patch(self, request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        self.records[rid].update(await request.json())
        return web.json_response(self.records[rid])

    async def delete(self, request: web.Request) -> web.Response:
        self.records.pop(request.match_info["id"], None)
        return web.Response(status=204)


@pytest.fixture
async def server() -> AsyncIterator[tuple[RecordsApp, str]]:
    records = RecordsApp()
    runner = web.AppRunner(records.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield records, f"http://127.0.0.1:{port}/v1/"
    finally:
        await runner.cleanup()


def client_for(base_url: str, clock: FakeClock, **kw: Any) -> HttpClient:
    return HttpClient(
        app="loopback",
        base_url=base_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        retry=RetryPolicy(attempts=3, base_delay=0.1, jitter=0.0),
        sleep=clock.sleep,
        **kw,
    )


async def test_crud_round_trip_over_a_real_socket(server: tuple[RecordsApp, str], clock: FakeClock) -> None:
    records, base_url = server
    async with client_for(base_url, clock) as client:
        created = (await client.post("records", json={"email": "ann@example.com"})).json()
        assert created == {"id": "1", "email": "ann@example.com"}
        patched = await client.patch(f"records/{created['id']}", json={"name": "Ann"})
        assert patched.json()["name"] == "Ann"
        listing = await client.get("records", params={"limit": 10})
        assert listing.json() == {"data": [{"id": "1", "email": "ann@example.com", "name": "Ann"}]}
        assert (await client.delete("records/1")).status_code == 204
        with pytest.raises(NotFound, match="record 1 not found"):
            await client.get("records/1")
    assert ("GET", "/v1/records?limit=10") in records.seen, "params are encoded and the base path is kept"
    assert clock.sleeps == []


async def test_wrong_credentials_raise_auth_error_after_one_request(
    server: tuple[RecordsApp, str], clock: FakeClock
) -> None:
    records, base_url = server
    async with HttpClient(
        app="loopback", base_url=base_url, headers={"Authorization": "Bearer wrong"}
    ) as client:
        with pytest.raises(AuthError, match="bad credentials"):
            await client.get("records")
    assert len(records.seen) == 1


async def test_rate_limiter_paces_requests_to_the_server(
    server: tuple[RecordsApp, str], clock: FakeClock
) -> None:
    records, base_url = server
    limiter = RateLimiter(5, burst=2, clock=clock, sleep=clock.sleep)
    async with client_for(base_url, clock, rate_limiter=limiter) as client:
        for _ in range(5):
            await client.get("records")
    assert len(records.seen) == 5
    assert clock.sleeps == pytest.approx([0.2, 0.2, 0.2]), "two in a burst, then one every 1/rate seconds"


async def test_server_429_is_waited_out_and_slows_the_limiter(
    server: tuple[RecordsApp, str], clock: FakeClock
) -> None:
    records, base_url = server
    limiter = RateLimiter(10, burst=10, clock=clock, sleep=clock.sleep)
    records.rate_limited = 1
    async with client_for(base_url, clock, rate_limiter=limiter) as client:
        response = await client.get("records")
        assert response.status_code == 200
        assert limiter.current_rate < 10, "a 429 must tighten the limiter"
        await client.get("records")
    assert 2.0 in clock.sleeps, "the client honours the server's Retry-After"
    assert len(records.seen) == 3


async def test_a_shared_budget_is_asked_for_every_rate_limited_request_and_holds_it_back(
    server: tuple[RecordsApp, str], clock: FakeClock
) -> None:
    """Several daemons share one app's limit: each request waits for the shared budget too."""
    from syncd.connector.http import share_budget

    records, base_url = server
    asked: list[tuple[float, int]] = []
    waiting, release = asyncio.Event(), asyncio.Event()

    async def budget(rate: float, burst: int) -> None:
        asked.append((rate, burst))
        if len(asked) == 2:
            waiting.set()
            await release.wait()  # the second request waits until the shared bucket has a token

    share_budget("loopback", budget)
    try:
        limiter = RateLimiter(rate=50.0, burst=5, clock=clock, sleep=clock.sleep)
        async with client_for(base_url, clock, rate_limiter=limiter) as client:
            await client.get("records")
            second = asyncio.create_task(client.get("records"))
            await waiting.wait()
            assert not second.done()
            assert len(records.seen) == 1
            release.set()
            await second
        assert asked == [(50.0, 5), (50.0, 5)]
        assert len(records.seen) == 2
    finally:
        share_budget("loopback", None)
    async with client_for(base_url, clock, rate_limiter=limiter) as client:
        await client.get("records")
    assert len(asked) == 2, "once unshared, the budget is no longer asked"
