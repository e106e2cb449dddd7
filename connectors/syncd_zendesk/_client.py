"""Zendesk's HTTP surface: authentication, the plan's rate limit learned from headers, bulk jobs.

* ``RateBudget`` paces requests with the SDK's token buckets: one for the account (the plan's
  200-700 requests per minute, learned from ``X-Rate-Limit``/``ratelimit-limit`` on every answer)
  and one for the incremental export endpoints (10 per minute). A bucket of burst ``b`` refilling
  at ``(limit - b)`` per minute never sends more than ``limit`` requests in any minute. When the
  limit is first learned, the requests the account already spent this minute (``limit -
  remaining``) are charged against the bucket; a ``remaining`` of 0 (other integrations share the
  budget) pauses until the reset Zendesk announces. A 429 is retried after its ``Retry-After``.
* ``run_job`` submits a bulk request, backs off while Zendesk refuses with ``TooManyJobs`` (at
  most 30 open jobs per account), then polls ``/job_statuses/{id}`` until the job completes and
  returns its per-item results.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from syncd.connector import AuthError, ConnectorError, TransientError
from syncd.connector.http import HttpClient, RateLimiter, RetryPolicy, Sleep, error_text, parse_retry_after

from ._config import ZendeskConfig

JsonObject = dict[str, Any]

#: Requests per minute assumed until Zendesk's headers say (the smallest current plan).
DEFAULT_PLAN_LIMIT = 200
#: Permanent user deletions: 700 per 10 minutes.
ERASE_PER_TEN_MINUTES = 700
BULK_LIMIT = 100
EXPORT_PREFIX = "/incremental/"
#: Zendesk's default 429 wait is up to a minute; wait it out rather than failing the call.
DEFAULT_RETRY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=65.0)
_JOB_BACKOFF_START = 2.0
_JOB_BACKOFF_MAX = 60.0


class TooManyJobs(TransientError):
    """Zendesk refused a bulk request: the account already has 30 queued or running jobs."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


def classify(response: httpx.Response) -> ConnectorError | None:
    """Zendesk's own meaning of a failed answer; None leaves it to the SDK defaults."""
    try:
        body = response.json()
    except ValueError:
        body = None
    label = body.get("error") if isinstance(body, dict) else None
    if label == "TooManyJobs":
        return TooManyJobs(
            f"zendesk: too many open jobs: {error_text(response)}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            status=response.status_code,
        )
    if response.status_code == 401:
        return AuthError(f"zendesk: credentials rejected: {error_text(response)}", status=401, detail=body)
    return None


def _pace(per_minute: int) -> tuple[float, int]:
    """(tokens per second, burst) so that no minute ever holds more than ``per_minute`` requests."""
    burst = max(1, min(10, per_minute // 20))
    return max(per_minute - burst, 1) / 60.0, burst


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def _bucket(value: str | None) -> dict[str, int]:
    """``total=10; remaining=9; resets=41`` as a dict."""
    out: dict[str, int] = {}
    for part in (value or "").split(";"):
        key, _, number = part.partition("=")
        parsed = _int(number)
        if parsed is not None:
            out[key.strip().lower()] = parsed
    return out


class RateBudget:
    """The account's and the export endpoints' request budgets, fed by Zendesk's headers."""

    def __init__(self, config: ZendeskConfig, *, clock: Callable[[], float], sleep: Sleep) -> None:
        self.cap = config.requests_per_minute
        #: The per-minute limit in force (None until Zendesk announced one).
        self.limit: int | None = None
        self.export_limit = config.export_requests_per_minute
        initial = min(self.cap or DEFAULT_PLAN_LIMIT, DEFAULT_PLAN_LIMIT)
        rate, burst = _pace(initial)
        self.account = RateLimiter(rate, burst=1, clock=clock, sleep=sleep)
        rate, burst = _pace(self.export_limit)
        self.export = RateLimiter(rate, burst=burst, clock=clock, sleep=sleep)
        self.erase = RateLimiter((ERASE_PER_TEN_MINUTES - 10) / 600.0, burst=10, clock=clock, sleep=sleep)
        #: The server's time at its last answer (from ``Date``), to place cursors on its clock.
        self.server_time: datetime | None = None

    def observe(self, path: str, headers: httpx.Headers) -> None:
        date = headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                self.server_time = parsedate_to_datetime(date)
        limit = _int(headers.get("X-Rate-Limit") or headers.get("ratelimit-limit"))
        remaining = _int(headers.get("X-Rate-Limit-Remaining") or headers.get("ratelimit-remaining"))
        reset = _int(headers.get("ratelimit-reset"))
        if limit is not None and limit > 0:
            effective = min(limit, self.cap) if self.cap else limit
            if effective != self.limit:
                self.limit = effective
                rate, burst = _pace(effective)
                self.account.set_rate(rate, burst)
                if remaining is not None:
                    # Requests already spent this minute (ours and other integrations') count too.
                    self.account.drain(burst - max(0, limit - remaining))
            elif remaining is not None and remaining <= 0:
                self._pause(self.account, reset if reset is not None else 60)
        if EXPORT_PREFIX in path:
            for name, value in headers.items():
                if name.lower().startswith("zendesk-ratelimit-") and "incremental" in name.lower():
                    self._observe_export(_bucket(value))

    def _observe_export(self, bucket: Mapping[str, int]) -> None:
        total, remaining, resets = bucket.get("total"), bucket.get("remaining"), bucket.get("resets")
        if total is not None and total > 1 and total != self.export_limit:
            self.export_limit = total
            rate, burst = _pace(total)
            self.export.set_rate(rate, burst)
        if remaining is not None and remaining <= 0:
            self._pause(self.export, resets if resets is not None else 60)

    @staticmethod
    def _pause(limiter: RateLimiter, seconds: float) -> None:
        limiter.drain(1.0 - seconds * limiter.current_rate)


class _Observer(httpx.AsyncBaseTransport):
    """Hands every answer's headers (429s included) to the budget before the client sees it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, budget: RateBudget) -> None:
        self.inner = inner
        self.budget = budget

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.budget.observe(request.url.path, response.headers)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class ZendeskApi:
    """The Zendesk calls the connector makes, over the SDK's ``HttpClient``."""

    def __init__(
        self,
        config: ZendeskConfig,
        *,
        app: str,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.app = app
        self.sleep: Sleep = sleep or asyncio.sleep
        self.clock = clock
        self.budget = RateBudget(config, clock=clock, sleep=self.sleep)
        auth: tuple[str, str] | None = None
        headers = {"Accept": "application/json"}
        if config.oauth_token is not None:
            headers["Authorization"] = f"Bearer {config.oauth_token.get_secret_value()}"
        else:
            assert config.email is not None
            assert config.api_token is not None
            auth = (f"{config.email}/token", config.api_token.get_secret_value())
        self.http = HttpClient(
            app=app,
            base_url=config.api_root(),
            auth=auth,
            headers=headers,
            rate_limiter=self.budget.account,
            retry=retry or DEFAULT_RETRY,
            timeout=config.timeout_seconds,
            classify=classify,
            transport=_Observer(transport or httpx.AsyncHTTPTransport(), self.budget),
            sleep=self.sleep,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> JsonObject:
        if EXPORT_PREFIX in path:
            await self.budget.export.acquire()
        body: JsonObject = (await self.http.get(path, params=params)).json()
        return body

    async def send(self, method: str, path: str, payload: Any = None) -> JsonObject:
        response = await self.http.request(method, path, json=payload)
        if response.status_code == 204 or not response.content:
            return {}
        body: JsonObject = response.json()
        return body

    async def run_job(self, method: str, path: str, payload: Any) -> list[JsonObject]:
        """Submit a bulk request and wait for its job; the job's per-item results."""
        deadline = self.clock() + self.config.job_timeout_seconds
        delay = _JOB_BACKOFF_START
        while True:
            try:
                submitted = await self.send(method, path, payload)
                break
            except TooManyJobs as exc:
                wait = exc.retry_after if exc.retry_after is not None else delay
                if self.clock() + wait > deadline:
                    raise
                await self.sleep(wait)
                delay = min(delay * 2, _JOB_BACKOFF_MAX)
        job = submitted.get("job_status") or {}
        job_id = job.get("id")
        if not job_id:
            raise TransientError(f"{self.app}: {method} {path} answered without a job_status id")
        while job.get("status") in ("queued", "working"):
            if self.clock() > deadline:
                raise TransientError(
                    f"{self.app}: job {job_id} still {job.get('status')} after "
                    f"{self.config.job_timeout_seconds:.0f}s; the batch will be retried"
                )
            await self.sleep(self.config.job_poll_seconds)
            job = (await self.get(f"/job_statuses/{job_id}")).get("job_status") or {}
        if job.get("status") != "completed":
            raise TransientError(f"{self.app}: job {job_id} ended {job.get('status')}: {job.get('message')}")
        results = job.get("results") or []
        return [r for r in results if isinstance(r, dict)]
