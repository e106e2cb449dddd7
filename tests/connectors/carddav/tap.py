"""An httpx transport in front of the real Radicale: records requests, and can act or lie on cue.

Used for what a healthy server will not do by itself on demand: an edit landing between our read
and our write, a malformed card in an answer, a REPORT the server refuses.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx


class Tap(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        #: Runs before a request is forwarded (e.g. a person's edit racing our PUT).
        self.before: Callable[[httpx.Request], None] | None = None
        #: Answers a request instead of the server when it returns a response.
        self.answer: Callable[[httpx.Request], httpx.Response | None] | None = None
        #: Rewrites the body of the server's answer.
        self.rewrite: Callable[[httpx.Request, bytes], bytes] | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answer is not None:
            answered = self.answer(request)
            if answered is not None:
                return answered
        if self.before is not None:
            self.before(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1
        if self.rewrite is None:
            return response
        body = await response.aread()
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "content-encoding")
        }
        return httpx.Response(
            response.status_code, headers=headers, content=self.rewrite(request, body), request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
