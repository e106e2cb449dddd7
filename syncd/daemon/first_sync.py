"""Progress of a daemon's first sync, for the person who just ran ``syncd run``.

The first sync of an app is its first poll without a cursor (a full read), and the dispatch
that sends what it planned. ``FirstSync`` feeds the runner's progress to a ``SyncProgress``
display (rich on a terminal, else periodic JSON lines on stderr) from the start until every such
poll has been tried once and the dispatcher has finished a round begun after the last of them;
then it ends the display and logs the counts. Later polls show nothing: the log says enough.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from syncd.progress import SyncProgress
from syncd.sync.stats import RunStats

from .dispatcher import Dispatcher

log = structlog.get_logger("syncd.daemon")


class FirstSync:
    """See the module docstring; ``update`` goes into the runner's progress hook and ``polled``
    is told each app's poll, whatever its outcome."""

    def __init__(self, apps: Iterable[str], display: SyncProgress, dispatcher: Dispatcher) -> None:
        self.pending = set(apps)
        self.display = display
        self.dispatcher = dispatcher
        self.active = False
        self.stats: RunStats | None = None
        self._polled = asyncio.Event()
        if not self.pending:
            self._polled.set()

    def update(self, stats: RunStats) -> None:
        self.stats = stats
        if self.active:
            self.display.update(stats)

    def polled(self, app: str) -> None:
        self.pending.discard(app)
        if not self.pending:
            self._polled.set()

    async def run(self) -> None:
        """Show the display until the first sync is over (cancelled with the daemon's tasks)."""
        self.active = True
        try:
            with self.display:
                await self._polled.wait()
                await self.dispatcher.next_round()
                self.active = False
        finally:
            self.active = False
        if self.stats is not None:
            log.info(
                "first sync done",
                read=self.stats.total("read"),
                writes=self.stats.total("writes"),
                errors=self.stats.total("errors"),
            )
