"""The outbox dispatcher: one long-lived task that sends queued writes as soon as they exist.

Whoever queues intents (a poll's plan, webhook re-reads, a resolved conflict) calls ``wake()``;
the loop then runs ``Runner.drain`` without waiting for back-offs, and sleeps until the next
wake-up or the earliest retry time. It is the only caller of ``drain``: intents left in flight
are claimed again by ``drain``, so two concurrent drains could send one write twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import structlog

from syncd.runner import Runner

from .stopping import Stopping, StopSwitch

log = structlog.get_logger("syncd.daemon")

#: Shortest sleep when the earliest retry is already due (it belongs to a paused app).
_MIN_WAIT = 1.0


class Dispatcher:
    """See the module docstring."""

    def __init__(
        self,
        runner: Runner,
        *,
        switch: StopSwitch | None = None,
        error_delays: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.runner = runner
        self.switch = switch or StopSwitch()
        self.error_delays = error_delays
        self._wake = asyncio.Event()
        self.rounds = 0

    def wake(self) -> None:
        self._wake.set()

    async def _next_wait(self) -> float | None:
        due = await self.runner.next_due()
        if due is None:
            return None
        wait = (datetime.fromisoformat(due) - datetime.now(UTC)).total_seconds()
        return max(wait, _MIN_WAIT) if wait <= 0 else wait

    async def run(self) -> None:
        """Drain on every wake-up until cancelled or stopped."""
        delay = self.error_delays[0]
        while not self.switch.requested:
            self._wake.clear()
            timeout: float | None
            try:
                before = self.runner.total("writes"), self.runner.total("errors")
                await self.runner.drain(max_wait=0.0)
                self.rounds += 1
                writes = self.runner.total("writes") - before[0]
                errors = self.runner.total("errors") - before[1]
                if writes or errors:
                    log.info("outbox dispatched", writes=writes, errors=errors)
                delay = self.error_delays[0]
                timeout = await self._next_wait()
            except Stopping:
                return
            except Exception:
                log.exception("dispatch round failed; will retry", retry_in=delay)
                timeout, delay = delay, min(delay * 2, self.error_delays[1])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
