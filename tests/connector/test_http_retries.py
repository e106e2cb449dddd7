"""HttpClient error paths against respx-mocked responses: what is retried, how long it waits, what is raised.

Sleeps go to a recorder (``client(sleep=...)``), so the tests never wait and assert the exact
back-off the client chose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from syncd.connector import (
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
from syncd.connector.http import HttpClient, RateLimiter, RetryPolicy, parse_retry_after
from tests.connector.fake_clock import FakeClock

BASE = "https://api.acme.test/v1"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TOKEN = "sk_live_0123456789abcdef"


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def api() -> respx.MockRouter:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def make_client(sleeps: Sleeps, **kw: object) -> HttpClient:
    options: dict[str, object] = {
        "app": "acme",
        "base_url": BASE,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "retry": RetryPolicy(attempts=4, base_delay=0.5, max_delay=30.0, jitter=0.0),
        "sleep": sleeps,
        "clock": lambda: NOW,
    }
    options.update(kw)
    return HttpClient(**options)  # type: ignore[arg-type]


@pytest.fixture
async def client(sleeps: Sleeps) -> AsyncIterator[HttpClient]:
    async with make_client(sleeps) as c:
        yield c


# -- Retry-After ---------------------------------------------------------------------------------


def test_retry_after_parses_delta_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=42), usegmt=True), now=NOW) == 42.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:10 GMT", now=NOW) == 10.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=NOW) == 0.0, "a past date means now"


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "nan", "inf", "Mon, 99 Foo 2026"])
def test_missing_or_garbled_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


async def test_429_with_retry_after_seconds_waits_that_long_then_succeeds(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    route = api.get("/contacts").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={"ok": 1})]
    )
    response = await client.get("/contacts")
    assert response.json() == {"ok": 1}
    assert route.call_count == 2
    assert sleeps == [3.0]


async def test_429_with_http_date_retry_after_waits_until_that_date(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    when = format_datetime(NOW + timedelta(seconds=7), usegmt=True)
    api.get("/contacts").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, json={})]
    )
    await client.get("/contacts")
    assert sleeps == [7.0]


async def test_429_without_retry_after_backs_off_exponentially(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    api.get("/contacts").mock(side_effect=[httpx.Response(429), httpx.Response(429), httpx.Response(200)])
    await client.get("/contacts")
    assert sleeps == [0.5, 1.0]


async def test_429_on_every_attempt_raises_rate_limited_carrying_retry_after(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    route = api.get("/contacts").mock(return_value=httpx.Response(429, headers={"Retry-After": "2"}))
    with pytest.raises(RateLimited) as caught:
        await client.get("/contacts")
    assert caught.value.retry_after == 2.0
    assert caught.value.status == 429
    assert route.call_count == 4
    assert sleeps == [2.0, 2.0, 2.0]


async def test_retry_after_longer_than_max_delay_is_raised_at_once_not_waited_out(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    route = api.get("/contacts").mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimited) as caught:
        await client.get("/contacts")
    assert caught.value.retry_after == 3600.0
    assert route.call_count == 1
    assert sleeps == []


async def test_429_tightens_the_rate_limiter(api: respx.MockRouter, sleeps: Sleeps, clock: FakeClock) -> None:
    limiter = RateLimiter(10, burst=10, clock=clock, sleep=clock.sleep)
    api.get("/contacts").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200)]
    )
    async with make_client(sleeps, rate_limiter=limiter) as client:
        await client.get("/contacts")
    assert limiter.current_rate < 10
    assert clock.sleeps == pytest.approx([0.2]), "the retry after the 429 waited for the tightened limiter"


# -- 5xx, timeouts, transport errors ---------------------------------------------------------------


async def test_5xx_then_success_is_retried_with_backoff(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    route = api.get("/contacts").mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"id": "7"})]
    )
    response = await client.get("/contacts")
    assert response.status_code == 200
    assert route.call_count == 3
    assert sleeps == [0.5, 1.0]


# -- writes whose answer was lost are not sent again blindly ------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(502),
        httpx.Response(504),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.Response(201, content=b'{"id": "7", "em', headers={"content-type": "application/json"}),
    ],
    ids=["500", "502", "504", "read-timeout", "disconnected", "cut-off-body"],
)
@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
async def test_a_write_whose_answer_was_lost_is_raised_as_outcome_unknown_and_sent_once(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps, method: str, failure: object
) -> None:
    # The first attempt may have taken effect; a person may have edited the record since. Sending
    # it again would overwrite that edit: the engine retries it instead (lookup or re-read first).
    route = api.route(method=method, path="/contacts/7").mock(
        side_effect=[failure, httpx.Response(200, json={"id": "7"})]
    )
    with pytest.raises(OutcomeUnknown) as caught:
        await client.request(method, "/contacts/7", json={"name": "Ada"})
    assert isinstance(caught.value, TransientError)
    assert route.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(429), httpx.Response(503), httpx.Response(408), httpx.ConnectError("refused")],
    ids=["429", "503", "408", "connect-error"],
)
async def test_a_write_the_app_refused_before_acting_is_sent_again(
    api: respx.MockRouter, client: HttpClient, failure: object
) -> None:
    route = api.post("/contacts").mock(side_effect=[failure, httpx.Response(201, json={"id": "7"})])
    response = await client.post("/contacts", json={"email": "a@b.c"})
    assert response.status_code == 201
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("method", "headers", "repeatable"),
    [
        ("POST", {"Idempotency-Key": "k-1"}, None),
        ("PUT", {"If-Match": '"etag-1"'}, None),
        ("PUT", {"If-None-Match": "*"}, None),
        ("DELETE", {}, None),
        ("POST", {}, True),
    ],
    ids=["idempotency-key", "if-match", "if-none-match", "delete", "declared-repeatable"],
)
async def test_a_repeatable_write_is_sent_again_after_a_lost_answer(
    api: respx.MockRouter,
    client: HttpClient,
    method: str,
    headers: dict[str, str],
    repeatable: bool | None,
) -> None:
    route = api.route(method=method, path="/contacts/7").mock(
        side_effect=[httpx.Response(502), httpx.ReadTimeout("slow"), httpx.Response(200, json={"id": "7"})]
    )
    response = await client.request(method, "/contacts/7", headers=headers, repeatable=repeatable)
    assert response.status_code == 200
    assert route.call_count == 3


async def test_persistent_5xx_raises_transient_error_with_the_app_message(
    api: respx.MockRouter, client: HttpClient
) -> None:
    route = api.get("/contacts").mock(return_value=httpx.Response(500, json={"message": "db on fire"}))
    with pytest.raises(TransientError) as caught:
        await client.get("/contacts")
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.status == 500
    assert "db on fire" in str(caught.value)
    assert "acme" in str(caught.value)
    assert route.call_count == 4


async def test_408_is_retried(api: respx.MockRouter, client: HttpClient) -> None:
    route = api.get("/x").mock(side_effect=[httpx.Response(408), httpx.Response(200)])
    await client.get("/x")
    assert route.call_count == 2


async def test_timeouts_are_retried_then_the_call_succeeds(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    route = api.get("/contacts").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.Response(200, json=[])]
    )
    assert (await client.get("/contacts")).json() == []
    assert route.call_count == 3
    assert sleeps == [0.5, 1.0]


async def test_timeout_on_every_attempt_raises_transient_error(
    api: respx.MockRouter, client: HttpClient
) -> None:
    route = api.get("/contacts").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError, match="timed out"):
        await client.get("/contacts")
    assert route.call_count == 4


async def test_connection_refused_is_transient(api: respx.MockRouter, client: HttpClient) -> None:
    api.get("/contacts").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200)])
    assert (await client.get("/contacts")).status_code == 200


async def test_a_base_url_with_an_unknown_scheme_is_a_config_error(sleeps: Sleeps) -> None:
    async with make_client(sleeps, base_url="ftp://files.acme.test") as client:
        with pytest.raises(ConfigError):
            await client.get("/contacts")
    assert sleeps == []


# -- non-retryable statuses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (412, PreconditionFailed),
        (400, PermanentError),
        (409, PermanentError),
        (422, PermanentError),
    ],
)
async def test_client_errors_raise_their_typed_error_without_retry(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps, status: int, error: type[ConnectorError]
) -> None:
    route = api.get("/contacts/1").mock(return_value=httpx.Response(status, json={"message": "nope"}))
    with pytest.raises(error) as caught:
        await client.get("/contacts/1")
    assert type(caught.value) is error, f"{status} must map to exactly {error.__name__}"
    assert caught.value.status == status
    assert caught.value.detail == {"message": "nope"}
    assert route.call_count == 1
    assert sleeps == []


async def test_2xx_and_304_responses_are_returned_as_they_are(
    api: respx.MockRouter, client: HttpClient
) -> None:
    api.get("/a").mock(return_value=httpx.Response(204))
    api.get("/b").mock(return_value=httpx.Response(304))
    assert (await client.get("/a")).status_code == 204
    assert (await client.get("/b")).status_code == 304


async def test_an_unexpected_redirect_is_not_followed_but_raised(
    api: respx.MockRouter, client: HttpClient
) -> None:
    api.get("/moved").mock(return_value=httpx.Response(302, headers={"Location": "https://evil.test/"}))
    with pytest.raises(PermanentError):
        await client.get("/moved")


# -- classify ---------------------------------------------------------------------------------------


async def test_classify_override_turns_a_bodiless_403_into_a_retried_rate_limit(
    api: respx.MockRouter, sleeps: Sleeps
) -> None:
    def mailchimp_style(response: httpx.Response) -> ConnectorError | None:
        if response.status_code == 403 and not response.content:
            return RateLimited("throttled", retry_after=1.5, status=403)
        return None

    route = api.get("/lists").mock(side_effect=[httpx.Response(403), httpx.Response(200)])
    async with make_client(sleeps, classify=mailchimp_style) as client:
        assert (await client.get("/lists")).status_code == 200
    assert route.call_count == 2
    assert sleeps == [1.5]


async def test_classify_returning_none_falls_back_to_the_default_mapping(
    api: respx.MockRouter, sleeps: Sleeps
) -> None:
    seen: list[int] = []

    def no_opinion(response: httpx.Response) -> ConnectorError | None:
        seen.append(response.status_code)
        return None

    api.get("/lists").mock(return_value=httpx.Response(403, json={"detail": "forbidden"}))
    async with make_client(sleeps, classify=no_opinion) as client:
        with pytest.raises(AuthError, match="forbidden"):
            await client.get("/lists")
    assert seen == [403], "classify runs once per non-2xx response"


async def test_classify_can_make_a_4xx_permanent_error_out_of_a_5xx(
    api: respx.MockRouter, sleeps: Sleeps
) -> None:
    def strict(response: httpx.Response) -> ConnectorError | None:
        return (
            PermanentError("validation", status=response.status_code) if response.status_code == 500 else None
        )

    route = api.post("/lists").mock(return_value=httpx.Response(500))
    async with make_client(sleeps, classify=strict) as client:
        with pytest.raises(PermanentError):
            await client.post("/lists", json={})
    assert route.call_count == 1


# -- logging and secrets ---------------------------------------------------------------------------


async def test_each_retry_is_logged_with_its_attempt_and_delay(
    api: respx.MockRouter, client: HttpClient
) -> None:
    api.get("/contacts").mock(side_effect=[httpx.Response(500), httpx.Response(503), httpx.Response(200)])
    with capture_logs() as logs:
        await client.get("/contacts")
    retries = [e for e in logs if e["event"] == "http.retry"]
    assert [(e["attempt"], e["delay"], e["status"]) for e in retries] == [(1, 0.5, 500), (2, 1.0, 503)]
    assert all(e["app"] == "acme" and e["path"] == "/contacts" for e in retries)


async def test_giving_up_is_logged(api: respx.MockRouter, client: HttpClient) -> None:
    api.get("/contacts").mock(return_value=httpx.Response(502))
    with capture_logs() as logs, pytest.raises(TransientError):
        await client.get("/contacts")
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["http.retry"] * 3 + ["http.gave_up"]


async def test_the_token_never_reaches_an_error_message_or_a_log(
    api: respx.MockRouter, client: HttpClient
) -> None:
    echoing = {"message": f"invalid token {TOKEN}", "headers": {"authorization": f"Bearer {TOKEN}"}}
    api.get("/contacts").mock(
        side_effect=[httpx.Response(500, json=echoing), httpx.Response(401, json=echoing)]
    )
    with capture_logs() as logs, pytest.raises(AuthError) as caught:
        await client.get("/contacts")
    assert logs, "the failed attempt should have been logged"
    assert TOKEN not in repr(logs)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value.detail)
    assert "invalid token ***" in str(caught.value)
    assert api.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}", "the token is still sent"


# -- concurrency -------------------------------------------------------------------------------------


async def test_max_concurrency_caps_requests_in_flight(sleeps: Sleeps) -> None:
    gate = asyncio.Event()
    in_flight = 0
    peak = 0

    async def slow_app(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await gate.wait()
        in_flight -= 1
        return httpx.Response(200)

    transport = httpx.MockTransport(slow_app)
    async with make_client(sleeps, transport=transport, max_concurrency=2) as client:
        tasks = [asyncio.create_task(client.get(f"/r/{n}")) for n in range(6)]
        for _ in range(100):  # let every task run up to where it blocks (gate or semaphore)
            await asyncio.sleep(0)
        assert in_flight == 2
        gate.set()
        responses = await asyncio.gather(*tasks)
    assert [r.status_code for r in responses] == [200] * 6
    assert peak == 2


async def test_webdav_methods_send_their_raw_body_and_are_retried_like_any_other(sleeps: Sleeps) -> None:
    seen: list[tuple[str, bytes, str | None]] = []

    def dav(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.content, request.headers.get("Depth")))
        return httpx.Response(503 if len(seen) == 1 else 207, content=b"<multistatus/>")

    body = b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>'
    async with make_client(sleeps, transport=httpx.MockTransport(dav)) as client:
        response = await client.request("PROPFIND", "/book/", content=body, headers={"Depth": "1"})
    assert response.status_code == 207
    assert seen == [("PROPFIND", body, "1")] * 2, "the retry must resend the same method, body and headers"


async def test_a_cut_off_json_page_is_retried_not_taken_for_an_answer(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    """A 200 whose JSON body ends mid-way (a dropped connection) is a transient error: the page is
    asked for again, and the caller only ever sees complete JSON."""
    route = api.get("/records").mock(
        side_effect=[
            httpx.Response(
                200, content=b'{"results": [{"id": "1"}, {"id', headers={"Content-Type": "application/json"}
            ),
            httpx.Response(200, json={"results": [{"id": "1"}, {"id": "2"}]}),
        ]
    )
    response = await client.get("/records")
    assert response.json() == {"results": [{"id": "1"}, {"id": "2"}]}
    assert route.call_count == 2


async def test_a_page_that_is_never_complete_json_ends_as_a_transient_error(
    api: respx.MockRouter, client: HttpClient, sleeps: Sleeps
) -> None:
    api.get("/records").mock(
        return_value=httpx.Response(
            200, content=b'{"results": [', headers={"Content-Type": "application/json"}
        )
    )
    with pytest.raises(TransientError, match="not complete JSON"):
        await client.get("/records")
