"""The single-writer lease on a fake clock: refusal, expiry takeover, loss detection, release."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncd.daemon import Holder, Lease, LeaseHeld
from syncd.store import AsyncStore


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[AsyncStore, AsyncStore]]:
    """Two connections to one state file, as two processes would have."""
    first = await AsyncStore(tmp_path / "state.db").open()
    second = await AsyncStore(tmp_path / "state.db").open()
    yield first, second
    await first.close()
    await second.close()


def leases(stores: tuple[AsyncStore, AsyncStore], clock: Clock, ttl: float = 30.0) -> tuple[Lease, Lease]:
    a = Lease(stores[0], ttl=ttl, state="state.db", clock=clock, holder=Holder("a", 101, "host-a"))
    b = Lease(stores[1], ttl=ttl, state="state.db", clock=clock, holder=Holder("b", 202, "host-b"))
    return a, b


async def test_live_lease_refuses_a_second_holder_naming_pid_host_and_expiry(
    stores: tuple[AsyncStore, AsyncStore],
) -> None:
    clock = Clock()
    a, b = leases(stores, clock)
    await a.acquire()
    clock.now += 29.0
    with pytest.raises(LeaseHeld) as refused:
        await b.acquire()
    assert refused.value.holder == Holder("a", 101, "host-a")
    assert refused.value.until == pytest.approx(1_800_000_030.0)
    message = str(refused.value)
    assert (
        "another syncd (pid 101 on host host-a) holds the state state.db until 2027-01-15T08:00:30Z"
        in message
    )
    assert not b.held


async def test_renewed_lease_stays_held_past_its_first_expiry(stores: tuple[AsyncStore, AsyncStore]) -> None:
    clock = Clock()
    a, b = leases(stores, clock)
    await a.acquire()
    clock.now += 20.0
    assert await a.renew()
    clock.now += 20.0  # 40 s after taking it, 20 s after the renewal
    with pytest.raises(LeaseHeld):
        await b.acquire()


async def test_expired_lease_is_taken_over_and_the_old_holder_learns_it_lost(
    stores: tuple[AsyncStore, AsyncStore],
) -> None:
    clock = Clock()
    a, b = leases(stores, clock)
    await a.acquire()
    clock.now += 31.0  # a stalled: no renewal within the ttl
    await b.acquire()
    assert b.held
    assert await a.renew() is False
    assert not a.held
    await a.release()  # a no longer holds it: releasing must not free b's lease
    with pytest.raises(LeaseHeld):
        await Lease(stores[0], ttl=30.0, clock=clock, holder=Holder("c", 303, "host-c")).acquire()


async def test_released_lease_is_free_at_once(stores: tuple[AsyncStore, AsyncStore]) -> None:
    clock = Clock()
    a, b = leases(stores, clock)
    await a.acquire()
    await a.release()
    await b.acquire()
    assert b.held


async def test_heartbeat_reports_a_lost_lease_once(stores: tuple[AsyncStore, AsyncStore]) -> None:
    clock = Clock()
    a, b = leases(stores, clock, ttl=0.06)
    await a.acquire()
    clock.now += 1.0
    await b.acquire()
    lost = asyncio.Event()
    beat = asyncio.create_task(a.heartbeat(lost.set))
    await asyncio.wait_for(lost.wait(), 5)
    await asyncio.wait_for(beat, 5)  # the heartbeat ends after reporting
    assert not a.held


def test_holder_round_trips_and_tolerates_foreign_rows() -> None:
    holder = Holder("id1", 42, "box")
    assert Holder.decode(holder.encode()) == holder
    assert Holder.decode("not json") == Holder("not json", 0, "unknown")


async def test_lease_of_a_process_that_died_on_this_host_is_taken_over_at_once(
    stores: tuple[AsyncStore, AsyncStore],
) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await proc.wait()  # a pid that existed on this host and is gone now
    clock = Clock()
    killed = Lease(stores[0], ttl=30.0, clock=clock, holder=Holder("k", proc.pid, socket.gethostname()))
    await killed.acquire()  # then the process "dies" (it has already exited): no release, no expiry
    successor = Lease(stores[1], ttl=30.0, clock=clock, holder=Holder("s", 303, socket.gethostname()))
    await successor.acquire()
    assert successor.held
    assert not await killed.renew()


async def test_lease_of_a_live_process_or_one_on_another_host_is_not_taken_over(
    stores: tuple[AsyncStore, AsyncStore],
) -> None:
    clock = Clock()
    elsewhere = Lease(stores[0], ttl=30.0, clock=clock, holder=Holder("e", 999_999_999, "some-other-host"))
    await elsewhere.acquire()
    with pytest.raises(LeaseHeld):
        await Lease(stores[1], ttl=30.0, clock=clock, holder=Holder("s", 303, socket.gethostname())).acquire()
    await elsewhere.release()
    alive = Lease(stores[0], ttl=30.0, clock=clock, holder=Holder("p", os.getppid(), socket.gethostname()))
    await alive.acquire()
    with pytest.raises(LeaseHeld):
        await Lease(stores[1], ttl=30.0, clock=clock, holder=Holder("s", 303, socket.gethostname())).acquire()
