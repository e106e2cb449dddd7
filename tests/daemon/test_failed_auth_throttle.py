"""Wrong tokens are throttled per address: the throttle itself, the admin API and the login form
of a real daemon (both share one count)."""

from __future__ import annotations

import pytest

from syncd.daemon import Daemon
from syncd.daemon.throttle import DEFAULT_LIMIT, FailedAuthThrottle

from .conftest import Client
from .harness import ADMIN_TOKEN
from .test_review_page import page


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_after_the_limit_until_its_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    throttle = FailedAuthThrottle(limit=3, window=60.0, clock=clock)
    for _ in range(2):
        throttle.failed("10.0.0.1")
        clock.now += 10
    assert throttle.retry_after("10.0.0.1") is None
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == pytest.approx(40.0)
    assert throttle.retry_after("10.0.0.2") is None  # another address is not affected
    clock.now += 40.5
    assert throttle.retry_after("10.0.0.1") is None  # the oldest failure is over a minute old


def test_a_right_token_clears_the_address_and_the_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("syncd.daemon.throttle.MAX_ADDRESSES", 5)
    throttle = FailedAuthThrottle(limit=2, window=60.0, clock=Clock())
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") is None
    for n in range(10):
        throttle.failed(f"10.0.0.{n}")
    assert len(throttle._failures) == 5


async def test_the_admin_api_answers_429_after_too_many_wrong_tokens_even_to_the_right_one(
    daemon: Daemon, client: Client
) -> None:
    async with (
        client(daemon, token=ADMIN_TOKEN + "x") as wrong,
        client(daemon, token=ADMIN_TOKEN) as right,
        client(daemon, token=None) as anonymous,
    ):
        assert (await right.get("/api/status")).status_code == 200
        for _ in range(DEFAULT_LIMIT):
            assert (await wrong.get("/api/status")).status_code == 401
        refused = await wrong.get("/api/status")
        assert refused.status_code == 429
        assert "too many wrong tokens" in refused.json()["error"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # From the same address the right token is not even compared meanwhile.
        assert (await right.get("/api/status")).status_code == 429
        # No token at all is not a guess: still 401, and it does not lengthen the wait.
        assert (await anonymous.get("/api/status")).status_code == 401
        assert (await anonymous.get("/healthz")).status_code == 200
        # A minute later the address may try again; the right token clears its record.
        assert daemon.review_page is not None
        throttle = daemon.review_page.throttle
        start = throttle.clock()
        throttle.clock = lambda: start + 61.0
        assert (await right.get("/api/status")).status_code == 200
        assert (await wrong.get("/api/status")).status_code == 401


async def test_wrong_tokens_on_the_login_form_and_the_api_count_together(
    daemon: Daemon, client: Client
) -> None:
    async with page(daemon, token=None) as browser, client(daemon, token=ADMIN_TOKEN + "x") as wrong:
        for _ in range(DEFAULT_LIMIT - 1):
            assert (await wrong.get("/api/status")).status_code == 401
        assert (await browser.login(ADMIN_TOKEN + "y")).status_code == 401
        throttled = await browser.login(ADMIN_TOKEN)
        assert throttled.status_code == 429
        assert "Too many wrong tokens" in throttled.text
        assert int(throttled.headers["Retry-After"]) >= 1
        assert browser.session is None
        assert daemon.review_page is not None
        throttle = daemon.review_page.throttle
        start = throttle.clock()
        throttle.clock = lambda: start + 61.0
        assert (await browser.login(ADMIN_TOKEN)).status_code == 303
