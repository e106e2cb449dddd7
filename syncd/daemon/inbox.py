"""Webhook intake, durable: store every hint before acknowledging, act on each event once.

``Inbox.accept`` writes a delivery's hints to the store's ``inbox`` table (one row per event id,
unique per app) before the HTTP answer goes out, so an acknowledged event survives a crash;
a redelivery of an event id already stored is ignored. ``InboxWorker`` turns pending rows into
re-reads: hints are coalesced per record (ten events about one contact are one re-read), handed
to ``Runner.handle_hints`` per app, and marked processed only once that committed. Pending rows
left by a stopped daemon are processed at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog

from syncd.connector import AuthError, ConnectorError, WebhookHint
from syncd.runner import Runner
from syncd.store import AsyncStore, Store

from .stopping import Stopping, StopSwitch

log = structlog.get_logger("syncd.daemon")

#: Processed events are remembered this long to recognise late redeliveries.
INBOX_RETENTION_DAYS = 7


def coalesce(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[WebhookHint]]:
    """One hint per (app, object, record): the newest row's, in order of first appearance."""
    by_app: dict[str, dict[tuple[str, str], WebhookHint]] = {}
    for row in rows:
        hints = by_app.setdefault(str(row["app"]), {})
        key = (str(row["object"]), str(row["record_id"]))
        # A later event about the same record replaces the earlier one (dicts keep the first position).
        hints[key] = WebhookHint(
            event_id=str(row["event_id"]), object=key[0], record_id=key[1], deleted=bool(row["deleted"])
        )
    return {app: list(hints.values()) for app, hints in by_app.items()}


class Inbox:
    """The durable side of webhook intake."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store

    async def accept(self, app: str, hints: Sequence[WebhookHint]) -> int:
        """Store ``hints`` (committed when this returns); returns how many events were new."""
        rows = [(h.event_id, h.object, h.record_id, h.deleted) for h in hints]
        return await self.store.call(Store.inbox_add, app, rows)

    async def pending(self, limit: int = 1000, exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
        return await self.store.call(Store.inbox_pending, limit, list(exclude))

    async def done(self, ids: Sequence[int]) -> None:
        await self.store.call(Store.inbox_done, list(ids))


class InboxWorker:
    """Drains the inbox into re-reads whenever woken (see the module docstring)."""

    def __init__(
        self,
        inbox: Inbox,
        runner: Runner,
        *,
        on_processed: Callable[[], None] = lambda: None,
        switch: StopSwitch | None = None,
        batch: int = 1000,
        retry_delays: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self.inbox = inbox
        self.runner = runner
        self.on_processed = on_processed
        self.switch = switch or StopSwitch()
        self.batch = batch
        self.retry_delays = retry_delays
        self._wake = asyncio.Event()
        self.processed = 0

    def wake(self) -> None:
        self._wake.set()

    async def process_once(self) -> tuple[int, bool]:
        """Handle one batch of pending events. Returns (events settled, whether any app failed)."""
        rows = await self.inbox.pending(self.batch, exclude=sorted(self.runner.paused))
        if not rows:
            return 0, False
        settled: list[int] = []
        failed = False
        for app, hints in coalesce(rows).items():
            ids = [int(r["id"]) for r in rows if r["app"] == app]
            if app not in self.runner.connectors:
                log.warning("webhook events for an app no longer synced; dropped", app=app, events=len(ids))
                settled += ids
                continue
            try:
                await self.runner.handle_hints(app, hints)
            except AuthError as exc:
                if app not in self.runner.paused:
                    log.error("app paused: credentials rejected", app=app, error=str(exc))
                self.runner.paused.add(app)
                failed = True
                continue
            except ConnectorError as exc:
                log.warning("webhook re-read failed; will retry", app=app, records=len(hints), error=str(exc))
                failed = True
                continue
            log.info("webhook events applied", app=app, events=len(ids), records=len(hints))
            settled += ids
        if settled:
            await self.inbox.done(settled)
            self.processed += len(settled)
            self.on_processed()
        return len(settled), failed

    async def run(self) -> None:
        """Process pending events until cancelled or stopped; back off while an app keeps failing."""
        delay = self.retry_delays[0]
        while not self.switch.requested:
            self._wake.clear()
            try:
                settled, failed = await self.process_once()
            except Stopping:
                return
            except Exception:
                log.exception("webhook processing failed; will retry")
                settled, failed = 0, True
            if settled and not failed:
                delay = self.retry_delays[0]
                continue  # more may be pending beyond this batch
            timeout = None
            if failed:
                timeout, delay = delay, min(delay * 2, self.retry_delays[1])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
