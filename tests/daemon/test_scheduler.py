"""The scheduler adapter: overlapping runs are skipped, failures are contained, stop is bounded."""

from __future__ import annotations

import asyncio

from syncd.daemon.scheduler import Scheduler

from .harness import wait_for


async def test_a_run_still_going_is_not_started_again() -> None:
    scheduler = Scheduler()
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()

    scheduler.every("slow", slow, 0.02)
    scheduler.start()
    try:
        await wait_for(lambda: scheduler.skipped.get("slow", 0) >= 2, 5, what="skipped runs")
        assert scheduler.runs["slow"] == 1
        release.set()
        await wait_for(lambda: scheduler.runs["slow"] >= 2, 5, what="the next run")
    finally:
        await scheduler.stop(grace=1.0)


async def test_a_failing_job_keeps_its_schedule() -> None:
    scheduler = Scheduler()

    async def broken() -> None:
        raise RuntimeError("boom")

    scheduler.every("broken", broken, 0.02)
    scheduler.start()
    try:
        await wait_for(lambda: scheduler.runs.get("broken", 0) >= 3, 5, what="repeated runs")
    finally:
        await scheduler.stop(grace=1.0)


async def test_stop_cancels_a_run_that_outlives_the_grace_period() -> None:
    scheduler = Scheduler()
    began = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck() -> None:
        began.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scheduler.every("stuck", stuck, 3600.0)
    scheduler.start()
    await asyncio.wait_for(began.wait(), 5)
    await scheduler.stop(grace=0.05)
    assert cancelled.is_set()


async def test_first_run_can_wait_a_full_interval_and_jobs_can_be_removed() -> None:
    scheduler = Scheduler()

    async def job() -> None:
        return None

    scheduler.every("later", job, 3600.0, first_in=None)
    scheduler.every("gone", job, 3600.0, first_in=1800.0)
    scheduler.start()
    try:
        later, gone = scheduler.next_run("later"), scheduler.next_run("gone")
        assert later is not None
        assert gone is not None
        assert later > gone
        scheduler.remove("gone")
        assert scheduler.names() == ["later"]
        assert scheduler.next_run("gone") is None
    finally:
        await scheduler.stop(grace=1.0)
