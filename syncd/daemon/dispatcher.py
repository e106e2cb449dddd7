"""The outbox dispatcher: one long-lived task that sends queued writes as soon as they exist.

Whoever queues intents (a poll's plan, webhook re-reads, a resolved conflict) calls ``wake()``;
the loop then runs ``Runner.drain`` without waiting for back-offs, and sleeps until the next
wake-up or the earliest retry time. It is the only caller of ``drain``: intents left in flight
are claimed again by ``drain``, so two concurrent drains could send one write twice.

After a round with no wake-up waiting (a lull), the apps written to since they were last
settled are handed to ``on_written`` (the daemon steps their cursors past syncd's own writes):
between two rounds no write is in flight. At most once per ``settle_every`` seconds, since that
reads the app's latest changes: under a steady stream of webhooks it must not cost a read per
round; when the writes stop, the loop wakes up for it on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
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
        on_written: Callable[[Sequence[str]], Awaitable[Sequence[str]]] | None = None,
        settle_every: float = 1.0,
    ) -> None:
        self.runner = runner
        #: Given the apps written to, settles them; returns those it could not settle yet.
        self.on_written = on_written
        #: Apps written to since they were last settled.
        self.unsettled: set[str] = set()
        self.settle_every = settle_every
        #: True while ``on_written`` runs.
        self.settling = False
        self._settled_at = -settle_every
        self.switch = switch or StopSwitch()
        self.error_delays = error_delays
        self._wake = asyncio.Event()
        self.rounds = 0
        self._busy = False
        self._round_done = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def next_round(self) -> None:
        """Wake the loop and return once a round begun after this call has ended."""
        target = self.rounds + (2 if self._busy else 1)
        self.wake()
        while self.rounds < target and not self.switch.requested:
            self._round_done.clear()
            await self._round_done.wait()

    def _round_ended(self) -> None:
        self._busy = False
        self.rounds += 1
        self._round_done.set()

    async def _next_wait(self) -> float | None:
        due = await self.runner.next_due()
        if due is None:
            return None
        wait = (datetime.fromisoformat(due) - datetime.now(UTC)).total_seconds()
        return max(wait, _MIN_WAIT) if wait <= 0 else wait

    def _settle_in(self) -> float | None:
        """Seconds until the unsettled apps may be settled (0: now); None if there are none."""
        if not self.unsettled or self.on_written is None:
            return None
        return max(0.0, self._settled_at + self.settle_every - asyncio.get_running_loop().time())

    async def _settle(self) -> None:
        assert self.on_written is not None
        self._settled_at = asyncio.get_running_loop().time()
        apps, self.unsettled = sorted(self.unsettled), set()
        self.settling = True
        try:
            self.unsettled.update(await self.on_written(apps))
        except Stopping:
            raise
        except Exception:  # nothing is lost: the next read fetches the writes as echoes
            log.warning("could not step cursors past syncd's own writes", apps=apps, exc_info=True)
        finally:
            self.settling = False

    async def run(self) -> None:
        """Drain on every wake-up until cancelled or stopped."""
        delay = self.error_delays[0]
        while not self.switch.requested:
            self._wake.clear()
            timeout: float | None
            self._busy = True
            try:
                before = self.runner.total("writes"), self.runner.total("errors")
                per_app = {app: self.runner.app_stats(app).writes for app in self.runner.apps()}
                await self.runner.drain(max_wait=0.0)
                self.unsettled.update(
                    app
                    for app in self.runner.apps()
                    if self.runner.app_stats(app).writes > per_app.get(app, 0)
                )
                if self._settle_in() == 0.0 and not self._wake.is_set():
                    await self._settle()
                self._round_ended()
                writes = self.runner.total("writes") - before[0]
                errors = self.runner.total("errors") - before[1]
                if writes or errors:
                    log.info("outbox dispatched", writes=writes, errors=errors)
                delay = self.error_delays[0]
                timeout = await self._next_wait()
                settle = self._settle_in()
                if settle is not None:
                    # Come back for the settling when it is allowed (a round with no writes is cheap).
                    timeout = settle if timeout is None else min(timeout, settle)
            except Stopping:
                return
            except Exception:
                log.exception("dispatch round failed; will retry", retry_in=delay)
                timeout, delay = delay, min(delay * 2, self.error_delays[1])
                self._round_ended()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
