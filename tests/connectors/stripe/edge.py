"""A thin proxy in front of localstripe adding the real-Stripe behaviours localstripe lacks.

localstripe ignores ``Idempotency-Key``, never answers 429, lists oldest first and does not cap
``limit``. Stripe does all four, and the connector must cope, so this proxy speaks Stripe's HTTP
API on a loopback port and forwards everything to localstripe, except that it:

* replays the saved first response of a POST whose ``Idempotency-Key`` it has seen (the key is
  claimed before forwarding, so a concurrent retry waits for the first attempt's answer);
* answers the next ``n`` requests with Stripe's 429 (``rate_limit`` error; a ``Retry-After``
  header only when asked for, as Stripe documents none);
* serves list endpoints newest first with ``starting_after`` paging and ``limit`` capped at 100
  (it re-pages localstripe's full answer itself).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

_LISTS = ("/v1/customers", "/v1/events", "/v1/subscriptions", "/v1/invoices")


@dataclass
class Saved:
    status: int
    body: bytes


@dataclass
class StripeEdge:
    upstream: str
    url: str = ""
    #: Every request seen: (method, path, Idempotency-Key or None).
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    _saved: dict[str, asyncio.Future[Saved]] = field(default_factory=dict)
    _throttle: list[str | None] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _client: httpx.AsyncClient | None = None

    def throttle(self, times: int, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with 429 (with ``Retry-After`` if given)."""
        self._throttle.extend([retry_after] * times)

    def creates(self) -> list[str | None]:
        """The Idempotency-Key of every customer create received (retries included)."""
        return [key for method, path, key in self.requests if method == "POST" and path == "/v1/customers"]

    async def start(self) -> None:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=10.0)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.url = f"http://127.0.0.1:{getattr(server, 'sockets', [])[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.aclose()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        self.requests.append((request.method, request.path, key))
        if self._throttle:
            retry_after = self._throttle.pop(0)
            body = {
                "error": {
                    "type": "invalid_request_error",
                    "code": "rate_limit",
                    "message": "Too many requests",
                }
            }
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.json_response(body, status=429, headers=headers)
        if request.method == "GET" and request.path in _LISTS:
            return await self._list(request)
        if request.method == "POST" and key:
            return await self._idempotent(request, key)
        saved = await self._forward(request)
        return web.Response(status=saved.status, body=saved.body, content_type="application/json")

    async def _forward(self, request: web.Request, query: Any = None) -> Saved:
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        response = await self._client.request(
            request.method,
            request.path,
            params=query if query is not None else list(request.query.items()),
            content=await request.read(),
            headers=headers,
        )
        return Saved(response.status_code, response.content)

    async def _idempotent(self, request: web.Request, key: str) -> web.StreamResponse:
        first = self._saved.get(key)
        if first is None:
            future: asyncio.Future[Saved] = asyncio.get_running_loop().create_future()
            self._saved[key] = future
            saved = await self._forward(request)
            future.set_result(saved)
        else:
            saved = await first
        headers = {"Idempotent-Replayed": "true"} if first is not None else {}
        return web.Response(
            status=saved.status, body=saved.body, content_type="application/json", headers=headers
        )

    async def _list(self, request: web.Request) -> web.StreamResponse:
        limit = int(request.query.get("limit", "10"))
        if not 1 <= limit <= 100:
            body = {
                "error": {
                    "type": "invalid_request_error",
                    "message": "limit must be between 1 and 100",
                    "param": "limit",
                }
            }
            return web.json_response(body, status=400)
        starting_after = request.query.get("starting_after")
        query = [(k, v) for k, v in request.query.items() if k not in ("limit", "starting_after")]
        saved = await self._forward(request, [*query, ("limit", "100000")])
        if saved.status != 200:
            return web.Response(status=saved.status, body=saved.body, content_type="application/json")
        everything = json.loads(saved.body)
        items = list(reversed(everything["data"]))  # localstripe keeps insertion order: oldest first
        start = 0
        if starting_after is not None:
            ids = [i["id"] for i in items]
            if starting_after not in ids:
                body = {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "resource_missing",
                        "message": f"No such object: '{starting_after}'",
                        "param": "starting_after",
                    }
                }
                return web.json_response(body, status=400)
            start = ids.index(starting_after) + 1
        page = items[start : start + limit]
        body = {"object": "list", "url": request.path, "data": page, "has_more": start + limit < len(items)}
        return web.json_response(body)
