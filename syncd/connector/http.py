"""The HTTP client every connector uses: retries, Retry-After, rate limiting and typed errors.

One place decides what is worth retrying (connection errors, timeouts, 408, 429, 5xx) and how
long to wait (exponential backoff with jitter, or the app's ``Retry-After``), so connectors only
declare their quirks: a ``classify`` hook maps an app's odd status/body combinations to a typed
error before the defaults apply. A write whose answer was lost (it may have taken effect) is not
sent again: it raises ``OutcomeUnknown`` for the engine to retry safely (``HttpClient.request``).
Every failed attempt is logged; credentials never are.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json as jsonlib
import math
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypedDict

import httpx
import structlog
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from ._base import ConfigT, Connector
from ._errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    NotFound,
    OutcomeUnknown,
    PermanentError,
    PreconditionFailed,
    RateLimited,
    TransientError,
)
from .redact import is_sensitive_key, redact_text, redact_value, register_secret

Sleep = Callable[[float], Awaitable[None]]

#: Methods that only read: repeating one after an unknown outcome changes nothing.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"})
#: Headers that make a write safe to send again: a conditional write is refused once the first
#: attempt took effect, an idempotency key makes the app answer the first attempt's result.
_REPEATABLE_HEADERS = ("if-match", "if-none-match", "idempotency-key")
#: Statuses of a request the app refused before acting on it (too slow to arrive, in conflict
#: with another request in flight, slow down, come back later).
_NOT_APPLIED_STATUSES = frozenset({408, 409, 429, 503})


def _repeatable(method: str, headers: Mapping[str, str] | None) -> bool:
    """Whether a request may be sent again after an unknown outcome (see ``OutcomeUnknown``)."""
    if method in _READ_METHODS or method == "DELETE":
        return True
    names = {name.lower() for name in headers or {}}
    return any(name in names for name in _REPEATABLE_HEADERS)


#: How much of an app's error body goes into an exception message.
_MAX_ERROR_TEXT = 500
#: Rounding slack when counting tokens: without it, a bucket a hair short of one token would ask
#: for a sleep too small to move a float clock, forever.
_TOKEN_EPSILON = 1e-9
_ERROR_TEXT_KEYS = ("message", "error_description", "error", "detail", "title", "description", "errors")

#: Waits until one request to an app may be sent under a budget shared with other processes,
#: given the client's own rate and burst: ``await budget(rate, burst)``.
SharedBudget = Callable[[float, int], Awaitable[None]]
_shared_budgets: dict[str, SharedBudget] = {}


def share_budget(app: str, budget: SharedBudget | None) -> None:
    """Make every rate-limited request to ``app`` from this process also take a token from
    ``budget`` (several daemons sharing one app's API limit); ``None`` stops that.

    The local ``RateLimiter`` still paces this process (and slows down after a 429); the shared
    budget keeps the sum of all processes within the app's limit.
    """
    if budget is None:
        _shared_budgets.pop(app, None)
    else:
        _shared_budgets[app] = budget


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    ``attempts`` counts the first try. The n-th retry waits ``base_delay * 2**(n-1)`` seconds
    (capped at ``max_delay``), spread by ``±jitter`` (a fraction) so clients do not retry in step.
    A ``Retry-After`` longer than ``max_delay`` is not waited out: the ``RateLimited`` error is
    raised at once so the caller can reschedule instead of holding the request open.
    """

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 30.0
    jitter: float = 0.2

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based), jitter included."""
        delay = min(self.max_delay, self.base_delay * 2.0 ** max(0, retry_number - 1))
        if self.jitter:
            uniform = rng.uniform if rng is not None else random.uniform
            delay *= 1 + uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.max_delay, delay))


class RateLimiter:
    """An async token bucket: at most ``rate`` requests per second, bursts up to ``burst``.

    After a 429, ``tighten`` cuts the rate (and drains the burst); the rate then climbs back to
    the nominal one linearly, regaining the full rate over ``recovery`` seconds. Waiters are
    served first come, first served. ``clock``/``sleep`` are seams for tests.
    """

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        recovery: float = 30.0,
        min_rate_fraction: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number of requests per second, not {rate!r}")
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = float(rate)
        self.burst = burst if burst is not None else max(1, math.ceil(rate))
        self.recovery = recovery
        self.min_rate = self.rate * min_rate_fraction
        self._min_rate_fraction = min_rate_fraction
        self._clock = clock
        self._sleep = sleep
        self._current = self.rate
        self._tokens = float(self.burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    @property
    def current_rate(self) -> float:
        """The rate in force right now (below ``rate`` for a while after ``tighten``)."""
        self._refill()
        return self._current

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self._current)
        if self._current < self.rate:
            step = self.rate * elapsed / self.recovery if self.recovery > 0 else self.rate
            self._current = min(self.rate, self._current + step)

    async def acquire(self) -> None:
        """Wait until a request may be sent, then take its token."""
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1.0 - _TOKEN_EPSILON:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                await self._sleep((1.0 - self._tokens) / self._current)

    def set_rate(self, rate: float, burst: int | None = None) -> None:
        """Change the nominal rate (and burst), e.g. when the app announces its limit in a header.

        A slowdown still in force after ``tighten`` keeps its proportion of the new rate; tokens
        saved beyond the new burst are dropped.
        """
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number of requests per second, not {rate!r}")
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self._refill()
        fraction = self._current / self.rate
        self.rate = float(rate)
        self.min_rate = self.rate * self._min_rate_fraction
        self._current = max(self.min_rate, self.rate * fraction)
        if burst is not None:
            self.burst = burst
        self._tokens = min(self._tokens, float(self.burst))

    def drain(self, tokens: float) -> None:
        """Keep at most ``tokens`` saved up. A negative value is a debt: the next request waits
        until it is repaid at the current rate (how an app's "remaining: 0" becomes a pause)."""
        self._refill()
        self._tokens = min(self._tokens, tokens)

    def tighten(self, factor: float = 0.5) -> None:
        """Slow down after the app said so: multiply the rate by ``factor`` and drop saved-up burst."""
        if not 0 < factor <= 1:
            raise ValueError(f"factor must be in (0, 1], not {factor!r}")
        self._refill()
        self._current = max(self.min_rate, self._current * factor)
        self._tokens = min(self._tokens, 0.0)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    return max(0.0, (when - reference).total_seconds())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def error_text(response: httpx.Response) -> str:
    """The app's own explanation of a failed response, short and free of registered secrets."""
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    text = ""
    if isinstance(body, Mapping):
        for key in _ERROR_TEXT_KEYS:
            if body.get(key):
                found = body[key]
                text = found if isinstance(found, str) else jsonlib.dumps(found, ensure_ascii=False)
                break
        else:
            text = jsonlib.dumps(body, ensure_ascii=False)
    elif body is not None:
        text = jsonlib.dumps(body, ensure_ascii=False)
    else:
        text = response.text.strip()
    text = redact_text(text or response.reason_phrase)
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


def _error_detail(response: httpx.Response) -> object:
    try:
        return redact_value(response.json())
    except (ValueError, UnicodeDecodeError):
        return redact_text(response.text[:_MAX_ERROR_TEXT]) or None


def default_error(
    app: str, method: str, path: str, response: httpx.Response, *, now: datetime
) -> ConnectorError:
    """The typed error syncd uses for a non-success response when ``classify`` has no opinion."""
    status = response.status_code
    message = f"{app}: {method} {path} -> {status}: {error_text(response)}"
    detail = _error_detail(response)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return RateLimited(message, retry_after=retry_after, status=status, detail=detail)
    if status in (401, 403):
        return AuthError(message, status=status, detail=detail)
    if status == 404:
        return NotFound(message, status=status, detail=detail)
    if status == 412:
        return PreconditionFailed(message, status=status, detail=detail)
    if status == 408 or status >= 500:
        return TransientError(message, status=status, detail=detail)
    return PermanentError(message, status=status, detail=detail)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context every client shares: the CA bundle is loaded once per process
    (httpx loads it for each new client otherwise, tens of milliseconds each)."""
    return httpx.create_ssl_context()


class HttpClient:
    """An httpx client bound to one app, with retries, rate limiting and typed errors.

    ``request`` returns 2xx (and 304) responses as they are and raises a ``ConnectorError``
    subclass for everything else, after retrying what is worth retrying. Credentials passed as
    ``auth`` or in credential-named ``headers`` are registered for redaction. ``sleep``, ``clock``
    and ``rng`` are seams for tests (no real waiting, deterministic jitter).
    """

    def __init__(
        self,
        *,
        app: str,
        base_url: str,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        classify: Callable[[httpx.Response], ConnectorError | None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrency: int | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.rate_limiter = rate_limiter
        self.retry = retry or RetryPolicy()
        if self.retry.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        self._classify = classify
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._semaphore = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._log = structlog.get_logger("syncd.connector").bind(app=app)
        _register_credentials(auth, headers)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            verify=_tls_context() if transport is None else True,
        )

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- requests ------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        repeatable: bool | None = None,
    ) -> httpx.Response:
        """Send one request, retrying transient failures; raise a typed ``ConnectorError`` on failure.

        Any method name goes (WebDAV's ``PROPFIND``, ``REPORT``...); ``content`` is a raw body
        (XML, vCard) for apps that speak neither JSON nor forms.

        A write whose answer is lost is not sent again here (``OutcomeUnknown`` is raised, for
        the engine to retry safely) unless it is ``repeatable``: by default reads, DELETE, and
        writes carrying ``If-Match``, ``If-None-Match`` or ``Idempotency-Key``; pass
        ``repeatable=True`` for a POST that only reads (a search). Requests the app refused
        before acting (429, 503, no connection) are retried either way.
        """
        method = method.upper()
        again = _repeatable(method, headers) if repeatable is None else repeatable
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=functools.partial(self._should_retry, again),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(
                        method,
                        path,
                        params=params,
                        json=json,
                        data=data,
                        headers=headers,
                        content=content,
                        unknown=TransientError if again else OutcomeUnknown,
                    )
        except TransientError as exc:
            self._log.warning(
                "http.gave_up",
                method=method,
                path=path,
                status=exc.status,
                error=redact_text(str(exc)),
            )
            raise
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    # -- one attempt ---------------------------------------------------------------------------

    async def _attempt(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        content: bytes | str | None = None,
        unknown: type[TransientError] = TransientError,
    ) -> httpx.Response:
        """One request. ``unknown`` is the error raised when the request may have taken effect
        but its answer was lost (``OutcomeUnknown`` for a write that must not be sent again)."""
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
            budget = _shared_budgets.get(self.app)
            if budget is not None:
                await budget(self.rate_limiter.rate, self.rate_limiter.burst)
        try:
            if self._semaphore is not None:
                async with self._semaphore:
                    response = await self._send(method, path, params, json, data, headers, content)
            else:
                response = await self._send(method, path, params, json, data, headers, content)
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never sent: safe to send again whatever the request.
            raise TransientError(f"{self.app}: {method} {path} timed out ({type(exc).__name__})") from exc
        except httpx.TimeoutException as exc:
            raise unknown(f"{self.app}: {method} {path} timed out ({type(exc).__name__})") from exc
        except httpx.UnsupportedProtocol as exc:
            raise ConfigError(
                f"{self.app}: bad base URL for {method} {path}: {redact_text(str(exc))}"
            ) from exc
        except httpx.ConnectError as exc:
            raise TransientError(
                f"{self.app}: {method} {path} failed: {type(exc).__name__}: {redact_text(str(exc))}"
            ) from exc
        except httpx.RequestError as exc:
            raise unknown(
                f"{self.app}: {method} {path} failed: {type(exc).__name__}: {redact_text(str(exc))}"
            ) from exc
        self._log.debug("http.response", method=method, path=path, status=response.status_code)
        if response.is_success or response.status_code == 304:
            if response.content and "json" in response.headers.get("content-type", ""):
                try:
                    jsonlib.loads(response.content)
                except ValueError as exc:
                    # A cut-off body (a dropped connection mid-page) is worth another try.
                    raise unknown(
                        f"{self.app}: {method} {path}: the response body is not complete JSON"
                    ) from exc
            return response
        error = self._classify(response) if self._classify is not None else None
        if error is None:
            error = default_error(self.app, method, path, response, now=self._clock())
        if isinstance(error, RateLimited) and self.rate_limiter is not None:
            self.rate_limiter.tighten()
        if (
            unknown is not TransientError
            and type(error) is TransientError
            and response.status_code not in _NOT_APPLIED_STATUSES
        ):
            # A 5xx to a write: it may have been carried out before the server failed.
            raise unknown(error.message, status=error.status, detail=error.detail) from error
        raise error

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        content: bytes | str | None = None,
    ) -> httpx.Response:
        return await self._client.request(
            method,
            path,
            params=dict(params) if params is not None else None,
            json=json,
            data=dict(data) if data is not None else None,
            content=content,
            headers=dict(headers) if headers is not None else None,
        )

    # -- retry policy --------------------------------------------------------------------------

    def _should_retry(self, repeatable: bool, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(exc, TransientError) or (isinstance(exc, OutcomeUnknown) and not repeatable):
            return False
        return not (
            isinstance(exc, RateLimited)
            and exc.retry_after is not None
            and exc.retry_after > self.retry.max_delay
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return self.retry.backoff(state.attempt_number, self._rng)

    def _log_retry(self, method: str, path: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else None
        self._log.warning(
            "http.retry",
            method=method,
            path=path,
            attempt=state.attempt_number,
            attempts=self.retry.attempts,
            delay=delay,
            status=getattr(exc, "status", None),
            error=redact_text(str(exc)) if exc is not None else None,
        )


class HttpSeams(TypedDict, total=False):
    """The test seams an ``HttpConnector`` takes, for subclasses to pass on:
    ``def __init__(self, config, *, app=None, **seams: Unpack[HttpSeams])``."""

    transport: httpx.AsyncBaseTransport | None
    retry: RetryPolicy | None
    sleep: Sleep | None
    now: Callable[[], float]


class HttpConnector(Connector[ConfigT]):
    """A connector that talks to its app over HTTP: its test seams and its client set-up, once.

    ``class AcmeConnector(HttpConnector[AcmeConfig])`` takes the settings, ``app`` and four seams
    for tests: ``transport`` (an httpx transport: a loopback fake, respx, injected failures),
    ``retry`` (a ``RetryPolicy`` replacing the connector's own), ``sleep`` (so retries need no
    real waiting) and ``now`` (Unix time, e.g. for webhook timestamps). ``http_client`` builds an
    ``HttpClient`` bound to the app with those seams applied; when to build it (in the
    constructor, or on first use inside the event loop that will use it) is the connector's call.
    A connector that needs more set-up takes ``**seams: Unpack[HttpSeams]`` and passes them on.
    """

    def __init__(
        self,
        config: ConfigT,
        *,
        app: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config, app=app)
        self._transport = transport
        self._retry = retry
        self._sleep = sleep
        self._now = now

    def http_client(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        classify: Callable[[httpx.Response], ConnectorError | None] | None = None,
        max_concurrency: int | None = None,
    ) -> HttpClient:
        """An ``HttpClient`` for this app; ``retry`` is the connector's default policy, which the
        ``retry`` seam overrides."""
        return HttpClient(
            app=self.app,
            base_url=base_url,
            auth=auth,
            headers=headers,
            rate_limiter=rate_limiter,
            retry=self._retry or retry,
            timeout=timeout,
            classify=classify,
            transport=self._transport,
            max_concurrency=max_concurrency,
            sleep=self._sleep or asyncio.sleep,
        )


def _register_credentials(auth: object, headers: Mapping[str, str] | None) -> None:
    if isinstance(auth, tuple) and len(auth) == 2:
        user, password = str(auth[0]), str(auth[1])
        register_secret(password)
        register_secret(base64.b64encode(f"{user}:{password}".encode()).decode("ascii"))
    for key, value in (headers or {}).items():
        if is_sensitive_key(key) and value:
            register_secret(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.isalpha():
                register_secret(credential.strip())


__all__ = [
    "HttpClient",
    "HttpConnector",
    "HttpSeams",
    "RateLimiter",
    "RetryPolicy",
    "SharedBudget",
    "Sleep",
    "default_error",
    "error_text",
    "parse_retry_after",
    "share_budget",
]
