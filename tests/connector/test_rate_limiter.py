"""RateLimiter: token bucket pacing, tightening after a 429 and gradual recovery (fake clock, no waiting)."""

from __future__ import annotations

import asyncio

import pytest

from syncd.connector.http import RateLimiter
from tests.connector.fake_clock import FakeClock


async def test_burst_passes_at_once_then_requests_are_spaced_by_the_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await limiter.acquire()
    assert clock.sleeps == pytest.approx([0.1, 0.1])


async def test_default_burst_is_one_second_of_requests(clock: FakeClock) -> None:
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    assert limiter.burst == 4
    for _ in range(4):
        await limiter.acquire()
    assert clock.sleeps == []


async def test_idle_time_refills_the_bucket_but_never_beyond_the_burst(clock: FakeClock) -> None:
    limiter = RateLimiter(2, burst=2, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    await limiter.acquire()
    clock.now += 3600
    for _ in range(3):
        await limiter.acquire()
    assert clock.sleeps == pytest.approx([0.5]), "an hour idle must not bank more than the burst"


async def test_tighten_halves_the_rate_and_drops_the_saved_burst(clock: FakeClock) -> None:
    limiter = RateLimiter(10, burst=5, clock=clock, sleep=clock.sleep)
    limiter.tighten()
    assert limiter.current_rate == pytest.approx(5.0)
    await limiter.acquire()
    assert clock.sleeps == pytest.approx([0.2]), "after a 429 the next request waits at the reduced rate"


async def test_rate_recovers_gradually_to_nominal_after_tightening(clock: FakeClock) -> None:
    limiter = RateLimiter(10, recovery=30.0, clock=clock, sleep=clock.sleep)
    limiter.tighten(0.5)
    clock.now += 15
    assert limiter.current_rate == pytest.approx(10.0), "half the recovery window restores half the rate"
    limiter.tighten(0.2)
    assert limiter.current_rate == pytest.approx(2.0)
    clock.now += 6
    assert limiter.current_rate == pytest.approx(4.0)
    clock.now += 1000
    assert limiter.current_rate == pytest.approx(10.0), "recovery never overshoots the nominal rate"


async def test_repeated_tightening_stops_at_a_floor_instead_of_stalling(clock: FakeClock) -> None:
    limiter = RateLimiter(10, min_rate_fraction=0.05, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        limiter.tighten()
    assert limiter.current_rate == pytest.approx(0.5)


async def test_waiters_are_served_in_arrival_order(clock: FakeClock) -> None:
    limiter = RateLimiter(1, burst=1, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    served: list[int] = []

    async def worker(n: int) -> None:
        await limiter.acquire()
        served.append(n)

    await asyncio.gather(*(worker(n) for n in range(4)))
    assert served == [0, 1, 2, 3]
    assert clock.sleeps == pytest.approx([1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (float("inf"), None), (5, 0)])
def test_nonsensical_limits_are_rejected(rate: float, burst: int | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(rate, burst)


def test_tighten_factor_must_slow_down() -> None:
    limiter = RateLimiter(5)
    for factor in (0.0, 1.5):
        with pytest.raises(ValueError, match="factor"):
            limiter.tighten(factor)


async def test_set_rate_lowers_the_pace_and_drops_tokens_beyond_the_new_burst(clock: FakeClock) -> None:
    limiter = RateLimiter(10, burst=10, clock=clock, sleep=clock.sleep)
    limiter.set_rate(2, burst=2)
    for _ in range(3):
        await limiter.acquire()
    assert clock.sleeps == pytest.approx([0.5]), "only the new burst passes at once, then the new rate"
    assert limiter.rate == 2


async def test_set_rate_keeps_a_slowdown_in_proportion(clock: FakeClock) -> None:
    limiter = RateLimiter(10, recovery=30.0, clock=clock, sleep=clock.sleep)
    limiter.tighten(0.5)
    limiter.set_rate(20)
    assert limiter.current_rate == pytest.approx(10.0)


async def test_draining_to_a_negative_balance_pauses_the_next_request(clock: FakeClock) -> None:
    limiter = RateLimiter(1, burst=5, clock=clock, sleep=clock.sleep)
    limiter.drain(-9.0)
    await limiter.acquire()
    assert sum(clock.sleeps) == pytest.approx(10.0), "a debt of 9 tokens at 1/s plus the token itself"
