"""The sync runner: one cycle over the ingest, plan and dispatch steps of ``syncd.sync``.

    read every app (pages) ──► ingest + merge (one transaction per page, cursor included)
        ──► infer deletes from complete listings (behind the mass-delete guard)
        ──► plan dirty entities into durable outbox intents ──► dispatch intents per app

Every remote call happens *after* its intent is committed and *before* the effects are
committed, so a crash at any point is repaired on restart: in-flight creates are looked up by
natural key before being sent again, in-flight updates are conditional on the version we read
(or re-read first) and in-flight deletes treat "not found" as done.

``Runner`` is the facade the CLI, the daemon and the demo hold: it owns the shared state of the
steps (``SyncContext``) and is changed only through its methods.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import structlog

from syncd.connector import Connector, RemoteRecord, WebhookHint
from syncd.engine import IDENTITY
from syncd.errors import RefusedValue
from syncd.mapping import Mapping as SyncMapping
from syncd.store import AsyncStore, ConflictRow, StateStore
from syncd.sync import (
    AppStats,
    Claims,
    Ingester,
    OutboxDispatch,
    Planner,
    RunStats,
    SyncContext,
    resolve_conflict,
)
from syncd.sync.ingest import ClashByKey

__all__ = ["IDENTITY", "AppStats", "HintPart", "RefusedValue", "RunStats", "Runner", "WebhookWork"]

log = structlog.get_logger("syncd.runner")


@dataclass(frozen=True)
class HintPart:
    """Webhook hints of one app for one mapping: records the events told, ids to re-read."""

    mapping: SyncMapping
    known: tuple[RemoteRecord, ...]
    reread: tuple[str, ...]
    #: Per id to re-read, the ids that record took over (a merge the webhook reported).
    replaces: Mapping[str, list[str]]


@dataclass(frozen=True)
class WebhookWork:
    """What a batch of one app's webhook hints asks for (``Runner.told_by_events``)."""

    app: str
    parts: tuple[HintPart, ...]

    @property
    def complete(self) -> bool:
        """Whether the events told everything: nothing is left to re-read."""
        return not any(p.reread for p in self.parts)


class Runner:
    """One syncd instance's engine: mappings, their apps' connectors and the store."""

    def __init__(
        self,
        store: AsyncStore,
        mappings: Sequence[SyncMapping],
        connectors: Mapping[str, Connector],
        *,
        batch_size: int = 500,
        max_attempts: int = 8,
        retry_base: float = 1.0,
        allow_mass_delete: bool = False,
        dry_run: bool = False,
        id_scan_interval: Mapping[str, float] | None = None,
    ) -> None:
        self.ctx = SyncContext(
            store,
            mappings,
            connectors,
            batch_size=batch_size,
            max_attempts=max_attempts,
            retry_base=retry_base,
            allow_mass_delete=allow_mass_delete,
            dry_run=dry_run,
            id_scan_interval=id_scan_interval,
        )
        self.ingester = Ingester(self.ctx)
        self.planner = Planner(self.ctx)
        self.outbox = OutboxDispatch(self.ctx, self.ingester, self.planner)

    # -- what callers read (read-only views: changes go through the methods below) -------------

    @property
    def store(self) -> AsyncStore:
        return self.ctx.store

    @property
    def mappings(self) -> tuple[SyncMapping, ...]:
        return tuple(self.ctx.mappings)

    @property
    def by_name(self) -> Mapping[str, SyncMapping]:
        return MappingProxyType(self.ctx.by_name)

    @property
    def connectors(self) -> Mapping[str, Connector]:
        return MappingProxyType(self.ctx.connectors)

    @property
    def paused(self) -> frozenset[str]:
        return frozenset(self.ctx.paused)

    @property
    def stats(self) -> RunStats:
        """The counts of the current (or last) cycle; a daemon's keep growing."""
        return self.ctx.stats

    @property
    def planned(self) -> list[dict[str, Any]]:
        """In a dry run: the writes that would have been sent."""
        return self.ctx.planned

    @property
    def run_id(self) -> int:
        return self.ctx.run_id

    @property
    def dry_run(self) -> bool:
        return self.ctx.dry_run

    def app_stats(self, app: str) -> AppStats:
        """The counts of one app (zero counts, not kept, for an app not counted yet)."""
        return self.ctx.stats.apps.get(app) or AppStats()

    def total(self, name: str) -> int:
        """One count (``writes``, ``errors``, ...) summed over the apps."""
        return self.ctx.stats.total(name)

    def is_paused(self, app: str) -> bool:
        return app in self.ctx.paused

    def apps(self) -> list[str]:
        """The apps with a connector (in a mapping now, or before a reload)."""
        return sorted(self.ctx.connectors)

    def syncs(self, app: str) -> bool:
        """Whether ``app`` has a connector (takes part in a mapping now or did before a reload)."""
        return app in self.ctx.connectors

    # -- what callers change -----------------------------------------------------------------------

    def pause(self, app: str, exc: Exception, why: str = "credentials rejected") -> None:
        """Stop reading from and writing to ``app`` (its credentials were rejected, say)."""
        self.ctx.pause_app(app, exc, why)

    def resume(self, app: str) -> bool:
        """Use ``app`` again after a pause; True if it was paused."""
        if app not in self.ctx.paused:
            return False
        self.ctx.paused.discard(app)
        log.info("app resumed", app=app)
        return True

    def reload(self, mappings: Sequence[SyncMapping], connectors: Mapping[str, Connector]) -> None:
        """Take new mappings (a reload of the mapping files); ``connectors`` are the apps' new
        connectors (apps the old mappings did not use). The next cycle, poll or drain uses them."""
        self.ctx.replace(mappings, connectors)

    def set_connector(self, app: str, connector: Connector) -> None:
        """Use ``connector`` for ``app`` from now on (the caller closes the one it replaces)."""
        self.ctx.connectors[app] = connector

    def share_apps(self, claims: Claims | None) -> None:
        """On a state shared by several daemons: read from and write to only the apps ``claims``
        says this daemon serves, and claim their writes under its lease (``daemon.cluster``)."""
        self.ctx.claims = claims

    def report_progress(self, callback: Callable[[RunStats], None] | None) -> None:
        """Call ``callback`` after every committed page and dispatch batch (progress, metrics)."""
        self.ctx.on_progress = callback

    async def next_due(self) -> str | None:
        """When the earliest pending write is due (ISO timestamp), or None if none is pending."""
        return await self.ctx.store.call(lambda s: s.next_due())

    async def aclose_connectors(self) -> None:
        """Close every connector (their HTTP sessions); a failure to close one is not an error."""
        for conn in self.ctx.connectors.values():
            with contextlib.suppress(Exception):
                await conn.aclose()

    # -- the cycle -------------------------------------------------------------------------------

    async def run_cycle(self, *, full: bool = False, apps: Iterable[str] | None = None) -> RunStats:
        """Read every app, merge, infer deletes, plan, and dispatch until the outbox is drained."""
        ctx = self.ctx
        ctx.stats = RunStats()
        ctx.run_id = await ctx.store.call(lambda s: s.begin_run("full" if full else "cycle"))
        ctx.stats.run_id = ctx.run_id
        ctx.listed.clear()
        wanted = set(apps) if apps is not None else None
        try:
            for mapping in ctx.mappings:
                for app in mapping.apps:
                    if (wanted is None or app in wanted) and app not in ctx.paused:
                        await self.ingester.read_app(mapping, app, full=full, run=ctx.run_id)
            await self.plan()
            await self.drain()
            # Settle in one cycle: the writes just made would come back in the next read, only to
            # be found echoes; step each written app's cursor past them.
            for app in dict.fromkeys(a for m in ctx.mappings for a in m.apps):
                written = ctx.stats.apps.get(app)
                if written is not None and written.writes:
                    await self.settle_own_writes(app)
        finally:
            # What a listing proved holds for this cycle's dispatch only.
            ctx.listed.clear()
        ctx.stats.review = await ctx.store.call(lambda s: s.count_conflicts("open"))
        ctx.stats.paused = sorted(ctx.paused)
        await ctx.store.call(lambda s: s.finish_run(ctx.run_id, ctx.stats.as_dict()))
        return ctx.stats

    async def settle_own_writes(self, app: str, *, catch_up: bool = True) -> None:
        """Move ``app``'s cursors past the writes syncd made there, so the next read does not
        fetch them only to find echoes: the connector's own answer (``cursor_after_writes``)
        where it has one, else (``catch_up``) past the pages that are exactly what syncd
        recorded. Call it once the writes are settled (the outbox drained, nothing in flight)."""
        ctx = self.ctx
        if ctx.dry_run or app in ctx.paused or not ctx.serves(app):
            return
        for mapping in ctx.mappings:
            if app in mapping.apps and not await self.ingester.skip_own_writes(mapping, app) and catch_up:
                # The connector could not vouch for its own writes: step the cursor
                # past pages that are exactly what syncd recorded, where there are.
                await self.ingester.catch_up(mapping, app)

    async def read_app(
        self, mapping: SyncMapping, app: str, *, full: bool = False, run: int | None = None
    ) -> bool:
        """Read one app's changes (all records when ``full`` or on first sight). True if complete."""
        return await self.ingester.read_app(mapping, app, full=full, run=run)

    async def ingest(self, mapping: SyncMapping, app: str, records: Sequence[RemoteRecord]) -> None:
        """Merge records fetched outside a listing (webhook hints, pre-write re-reads)."""
        await self.ingester.ingest(mapping, app, records)

    async def refetch(
        self,
        mapping: SyncMapping,
        app: str,
        ids: Sequence[str],
        replaces: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Re-read records by id; ones that are gone count as deleted (positive evidence)."""
        await self.ingester.refetch(mapping, app, ids, replaces)

    async def quarantine_events(self, app: str, rows: Sequence[Mapping[str, Any]], error: str) -> None:
        """Webhook events whose re-read kept failing: quarantine their records as dead letters."""
        await self.ingester.quarantine_events(app, rows, error)

    async def poll(self, app: str, *, full: bool = False) -> bool:
        """Read one app for every mapping it takes part in, then plan (the daemon's poll job)."""
        complete = True
        for mapping in self.ctx.mappings:
            if app in mapping.apps and app not in self.ctx.paused:
                complete &= await self.ingester.read_app(mapping, app, full=full)
        await self.plan()
        return complete

    def told_by_events(self, app: str, hints: Sequence[WebhookHint]) -> WebhookWork:
        """What ``hints`` of ``app`` ask for: per mapping, the records the connector vouches for
        from the events themselves (``records_from_webhooks``; asking consumes what the events
        told, so the answer must be used) and the ids to re-read."""
        parts: list[HintPart] = []
        for mapping in self.ctx.mappings:
            if app not in mapping.apps:
                continue
            obj = mapping.object_of(app)
            ids = sorted({h.record_id for h in hints if h.object == obj})
            replaces: dict[str, set[str]] = {}
            for hint in hints:
                if hint.object == obj and hint.replaces:
                    replaces.setdefault(hint.record_id, set()).update(hint.replaces)
            # What the events themselves tell needs no re-read (merges always get one).
            known = self.ctx.connectors[app].records_from_webhooks(obj, [i for i in ids if i not in replaces])
            told = {r.id for r in known}
            parts.append(
                HintPart(
                    mapping,
                    tuple(known),
                    tuple(i for i in ids if i not in told),
                    {i: sorted(olds) for i, olds in replaces.items()},
                )
            )
        return WebhookWork(app, tuple(parts))

    async def handle_hints(
        self, app: str, hints: Sequence[WebhookHint], *, told: WebhookWork | None = None
    ) -> None:
        """Act on webhook hints: re-read the records they name (never apply payloads blindly,
        since deliveries come late, twice and out of order) unless the connector vouches for
        their current state from the events (``records_from_webhooks``), then plan. ``told`` is
        ``told_by_events(app, hints)`` when the caller asked already."""
        work = told if told is not None else self.told_by_events(app, hints)
        for part in work.parts:
            if part.known:
                await self.ingester.refetch(part.mapping, app, [], known=part.known)
            for start in range(0, len(part.reread), 100):
                chunk = part.reread[start : start + 100]
                await self.ingester.refetch(
                    part.mapping, app, chunk, {i: part.replaces[i] for i in chunk if i in part.replaces}
                )
        await self.plan()

    async def apply_told(self, works: Sequence[WebhookWork], finish: Callable[[StateStore], None]) -> bool:
        """Merge what webhook events told (``told_by_events``, nothing left to re-read), plan, and
        run ``finish`` (marking the events processed), all in one unit of work: several apps'
        deliveries cost one store round trip. False, with nothing changed, where this cannot be
        done in one unit (records sharing a key with linked ones must be checked with the app
        first; a state shared by daemons plans with claims): use ``handle_hints`` per app."""
        if self.ctx.claims is not None or any(not w.complete for w in works):
            return False
        pages = [(p.mapping, w.app, p.known) for w in works for p in w.parts if p.known]

        def unit(store: StateStore) -> None:
            with store.transaction():
                self.ingester.ingest_in(store, pages)
                self.planner.plan_in(store)
                finish(store)

        try:
            await self.ctx.store.call(unit)
        except ClashByKey:
            return False
        for mapping, app, _records in pages:
            await self.ingester.relink_pending(mapping, app)
        return True

    async def plan(self) -> int:
        """Turn every dirty entity into outbox intents; returns how many were queued."""
        return await self.planner.plan()

    async def drain(self, *, max_wait: float = 300.0) -> None:
        """Dispatch until the outbox is empty (waiting for retry back-offs up to ``max_wait``)."""
        await self.outbox.drain(max_wait=max_wait)

    async def dispatch_app(self, app: str) -> bool:
        """Send due intents of one app in batches; True if any intent settled."""
        return await self.outbox.dispatch_app(app)

    # -- admin actions -----------------------------------------------------------------------------

    async def resolve_conflict(
        self,
        conflict_id: int,
        *,
        take: str | None = None,
        value: Any = None,
        allow_empty: bool = False,
        who: str | None = None,
        why: str | None = None,
    ) -> ConflictRow:
        """Settle a conflict (see ``syncd.sync.operations.resolve_conflict``)."""
        return await resolve_conflict(
            self.ctx.store,
            self.ctx.by_name,
            conflict_id,
            take=take,
            value=value,
            allow_empty=allow_empty,
            who=who,
            why=why,
        )
