"""Webhook intake, durable: store every hint before acknowledging, act on each event once.

``Inbox.accept`` writes a delivery's hints to the store's ``inbox`` table (one row per event id,
unique per app) before the HTTP answer goes out, so an acknowledged event survives a crash;
a redelivery of an event id already stored is ignored. Deliveries that arrive while a write is
under way are stored together in the next transaction (a group commit): each waits for the
commit that holds its events, and one store round trip serves them all. ``InboxWorker`` turns pending rows into
re-reads: hints are coalesced per record (ten events about one contact are one re-read), handed
to ``Runner.handle_hints`` per app, and marked processed only once that committed. Pending rows
left by a stopped daemon are processed at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from syncd.connector import AuthError, ConnectorError, TransientError, WebhookHint
from syncd.runner import Runner
from syncd.store import AsyncStore, InboxRow, StateStore

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


_Rows = list[tuple[str, str, str, bool]]


def _add_all(store: StateStore, deliveries: Sequence[tuple[str, _Rows]]) -> list[int]:
    """Store several deliveries' events in one transaction; how many were new, per delivery."""
    with store.transaction():
        return [store.inbox_add(app, rows) for app, rows in deliveries]


class Inbox:
    """The durable side of webhook intake."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        #: Deliveries waiting for the next group commit, each with the future its sender awaits.
        self._queued: list[tuple[str, _Rows, asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None
        #: Group commits made, and the deliveries they held (for tests and benchmarks).
        self.commits = 0
        self.committed = 0

    async def accept(self, app: str, hints: Sequence[WebhookHint]) -> int:
        """Store ``hints`` (committed when this returns); returns how many events were new.

        A failed commit raises here for every delivery it held: none of them is acknowledged."""
        rows = [(h.event_id, h.object, h.record_id, h.deleted) for h in hints]
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queued.append((app, rows, done))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_queued())
        # A sender that hangs up does not cancel the commit the other deliveries wait for.
        return await asyncio.shield(done)

    async def _write_queued(self) -> None:
        """Commit what is queued, then what queued up meanwhile, until nothing waits."""
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    added = await self.store.call(_add_all, [(app, rows) for app, rows, _ in batch])
                except Exception as exc:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                except BaseException:
                    for _, _, done in [*batch, *self._queued]:
                        done.cancel()
                    self._queued = []
                    raise
                self.commits += 1
                self.committed += len(batch)
                for (_, _, done), new in zip(batch, added, strict=True):
                    if not done.done():
                        done.set_result(new)
        finally:
            self._writer = None

    async def pending(self, limit: int = 1000, exclude: Sequence[str] = ()) -> list[InboxRow]:
        return await self.store.call(lambda s: s.inbox_pending(limit, list(exclude)))

    async def done(self, ids: Sequence[int]) -> None:
        await self.store.call(lambda s: s.inbox_done(list(ids)))

    async def retry(self, ids: Sequence[int], error: str, delay: float, max_attempts: int) -> list[InboxRow]:
        not_before = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat().replace("+00:00", "Z")
        return await self.store.call(lambda s: s.inbox_retry(list(ids), error, not_before, max_attempts))


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
        max_attempts: int = 8,
        on_quarantined: Callable[[str, int], None] = lambda app, n: None,
        serves: Callable[[str], bool] = lambda app: True,
    ) -> None:
        self.inbox = inbox
        self.runner = runner
        self.on_processed = on_processed
        self.on_quarantined = on_quarantined
        #: Whether this daemon re-reads ``app``'s events (on a shared state: it serves the app).
        self.serves = serves
        self.switch = switch or StopSwitch()
        self.batch = batch
        self.retry_delays = retry_delays
        #: Failed re-reads of one event before it is set aside (quarantined) for good.
        self.max_attempts = max_attempts
        self._wake = asyncio.Event()
        self.processed = 0

    def wake(self) -> None:
        self._wake.set()

    async def process_once(self) -> tuple[int, bool]:
        """Handle one batch of pending events. Returns (events settled, whether any app failed)."""
        elsewhere = {app for app in self.runner.apps() if not self.serves(app)}
        rows = await self.inbox.pending(self.batch, exclude=sorted(self.runner.paused | elsewhere))
        if not rows:
            return 0, False
        settled: list[int] = []
        failed = False
        batch = coalesce(rows)
        for app in [a for a in batch if not self.runner.syncs(a)]:
            ids = [int(r["id"]) for r in rows if r["app"] == app]
            log.warning("webhook events for an app no longer synced; dropped", app=app, events=len(ids))
            settled += ids
            del batch[app]
        told = {app: self.runner.told_by_events(app, hints) for app, hints in batch.items()}
        # Where the events told everything, every app's records are merged, planned and their
        # events marked processed in one unit of work (with the dropped events): one round trip.
        done = [int(r["id"]) for r in rows if r["app"] in batch] + settled
        try:
            applied = await self.runner.apply_told(list(told.values()), lambda s: s.inbox_done(done))
        except Exception as exc:  # nothing was changed: the per-app path below isolates the cause
            log.info("webhook batch not applied in one unit; per app instead", error=type(exc).__name__)
            applied = False
        if applied:
            for app, hints in batch.items():
                log.info("webhook events applied", app=app, records=len(hints))
            self.processed += len(done)
            self.on_processed()
            return len(done), False
        for app, hints in batch.items():
            ids = [int(r["id"]) for r in rows if r["app"] == app]
            app_rows = [r for r in rows if r["app"] == app]
            try:
                await self.runner.handle_hints(app, hints, told=told[app])
            except AuthError as exc:
                self.runner.pause(app, exc)
                failed = True
                continue
            except TransientError as exc:
                # The app is unreachable or limiting us: its events wait, the other apps' flow on.
                log.warning("webhook re-read failed; will retry", app=app, records=len(hints), error=str(exc))
                await self._retry(app, app_rows, f"{type(exc).__name__}: {exc}")
                failed = True
                continue
            except Exception as exc:  # one bad event must not hold up the others
                log.warning(
                    "webhook re-read failed; trying its events one by one",
                    app=app,
                    records=len(hints),
                    error=type(exc).__name__,
                )
                settled += await self._one_by_one(app, app_rows)
                failed = True
                continue
            log.info("webhook events applied", app=app, events=len(ids), records=len(hints))
            settled += ids
        if settled:
            await self.inbox.done(settled)
            self.processed += len(settled)
            self.on_processed()
        return len(settled), failed

    async def _one_by_one(self, app: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Isolate the events that fail: each record's events are re-read on their own; the ones
        that still fail are retried later, and set aside after ``max_attempts``."""
        settled: list[int] = []
        by_record: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for row in rows:
            by_record.setdefault((str(row["object"]), str(row["record_id"])), []).append(row)
        for group in by_record.values():
            hints = coalesce(group)[app]
            try:
                await self.runner.handle_hints(app, hints)
            except AuthError:
                raise
            except Exception as exc:  # quarantined below, with its reason
                await self._retry(
                    app, group, type(exc).__name__ + (f": {exc}" if isinstance(exc, ConnectorError) else "")
                )
                continue
            settled += [int(r["id"]) for r in group]
        return settled

    async def _retry(self, app: str, rows: Sequence[Mapping[str, Any]], error: str) -> None:
        attempts = max(int(r.get("attempts") or 0) for r in rows) if rows else 0
        delay = min(self.retry_delays[0] * (2**attempts), self.retry_delays[1])
        given_up = await self.inbox.retry([int(r["id"]) for r in rows], error, delay, self.max_attempts)
        if given_up:
            await self.runner.quarantine_events(app, given_up, error)
            self.on_quarantined(app, len(given_up))
            log.error(
                "webhook events quarantined: their re-read kept failing",
                app=app,
                events=len(given_up),
                error=error,
            )

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
