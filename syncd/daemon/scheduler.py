"""The daemon's clock: periodic jobs on the event loop (the only module that imports APScheduler).

Each job is an ``async`` callable run by APScheduler 3's ``AsyncIOScheduler`` on an interval
trigger, optionally with jitter (a random delay of up to ``jitter`` seconds added to each run)
so that several daemons, or several apps, do not hit an API in lock step. A run still going when
the next one is due is not doubled: the later run is skipped. Every run is a tracked task, so
``stop`` can let them finish (or cancel them) on shutdown. Job failures are logged here and
never reach APScheduler, whose own stdlib logging is kept quiet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = structlog.get_logger("syncd.daemon")

Job = Callable[[], Awaitable[None]]


class Scheduler:
    """Named periodic async jobs; see the module docstring."""

    def __init__(self) -> None:
        # APScheduler logs job bookkeeping through stdlib logging; the daemon logs its own events.
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._jobs: dict[str, Job] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        #: Runs started and runs skipped (the previous one still going), per job name.
        self.runs: dict[str, int] = {}
        self.skipped: dict[str, int] = {}

    @property
    def started(self) -> bool:
        return bool(self._scheduler.running)

    def every(
        self,
        name: str,
        job: Job,
        seconds: float,
        *,
        jitter: float = 0.0,
        first_in: float | None = 0.0,
    ) -> None:
        """Run ``job`` every ``seconds`` (plus up to ``jitter`` s), first after ``first_in`` seconds.

        ``first_in=None`` waits one full interval. Adding a job under an existing name replaces it.
        """
        self._jobs[name] = job
        first = None if first_in is None else datetime.now(UTC) + timedelta(seconds=max(first_in, 0.0))
        trigger = IntervalTrigger(seconds=seconds, jitter=jitter or None, timezone=UTC)
        options: dict[str, object] = {}
        if first is not None:
            options["next_run_time"] = first
        self._scheduler.add_job(
            self._fire,
            trigger,
            args=[name],
            id=name,
            name=name,
            replace_existing=True,
            coalesce=True,
            max_instances=2,  # our own guard skips overlaps; see _fire
            misfire_grace_time=None,
            **options,
        )

    def remove(self, name: str) -> None:
        self._jobs.pop(name, None)
        if self._scheduler.get_job(name) is not None:
            self._scheduler.remove_job(name)

    def names(self) -> list[str]:
        return sorted(self._jobs)

    def next_run(self, name: str) -> datetime | None:
        job = self._scheduler.get_job(name)
        return None if job is None else job.next_run_time

    def start(self) -> None:
        self._scheduler.start()

    async def _fire(self, name: str) -> None:
        job = self._jobs.get(name)
        running = self._running.get(name)
        if job is None:
            return
        if running is not None and not running.done():
            self.skipped[name] = self.skipped.get(name, 0) + 1
            log.debug("job skipped: previous run still going", job=name)
            return
        task = asyncio.current_task()
        assert task is not None
        self._running[name] = task
        self.runs[name] = self.runs.get(name, 0) + 1
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job failed", job=name)

    async def stop(self, grace: float) -> None:
        """Fire no more jobs; wait up to ``grace`` seconds for running ones, then cancel them."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        tasks = [t for t in self._running.values() if not t.done()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=max(grace, 0.0))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
