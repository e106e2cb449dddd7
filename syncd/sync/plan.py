"""Plan: turn dirty entities into durable outbox intents (one transaction per batch).

What each entity needs written is the engine's decision (``syncd.engine.plan_entity``); this
module loads entities in batches, drops links that left an app's scope, and enqueues the writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog

from syncd.engine import IDENTITY, Change, plan_entity
from syncd.engine.model import ReasonCode
from syncd.mapping import Mapping as SyncMapping
from syncd.store import StateStore

from .context import SyncContext

log = structlog.get_logger("syncd.runner")


def _dirty_ids(store: StateStore, sync: str, limit: int, after: int) -> list[int]:
    return store.dirty_ids(sync, limit, after)


def _claim_dirty(store: StateStore, sync: str, limit: int, owner: str, ttl: float) -> list[tuple[int, int]]:
    return store.claim_dirty(sync, limit, owner, ttl)


class Planner:
    """Plans the writes dirty entities need."""

    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx

    async def plan(self) -> int:
        """Turn every dirty entity into outbox intents; returns how many were queued."""
        if self.ctx.claims is not None:
            return await self._plan_shared()
        total = 0
        for mapping in self.ctx.mappings:
            after = 0
            while True:
                ids = await self.ctx.store.call(_dirty_ids, mapping.name, self.ctx.batch_size, after)
                if not ids:
                    break
                total += await self.ctx.store.call(self._plan_batch, mapping, ids)
                after = ids[-1]
        if total:
            await self._count_planned()
        return total

    def plan_in(self, store: StateStore) -> int:
        """``plan`` as part of a caller's unit of work (on the store thread), for a state that one
        daemon plans alone (no ``claims``); returns how many intents were queued."""
        assert self.ctx.claims is None, "several daemons plan with claims: use plan()"
        total = 0
        with store.transaction():
            for mapping in self.ctx.mappings:
                after = 0
                while ids := store.dirty_ids(mapping.name, self.ctx.batch_size, after):
                    total += self._plan_batch(store, mapping, ids)
                    after = ids[-1]
            if total:
                stats = self.ctx.stats
                stats.planned = max(stats.planned, stats.total("writes") + store.outbox_depth())
        return total

    async def _count_planned(self) -> None:
        """Writes planned so far, for progress displays: those done plus those waiting (a write
        re-planned before it was sent supersedes its intent, so intents queued would overcount)."""
        waiting = await self.ctx.store.call(lambda s: s.outbox_depth())
        stats = self.ctx.stats
        stats.planned = max(stats.planned, stats.total("writes") + waiting)

    async def _plan_shared(self) -> int:
        """Several daemons plan at once: each claims a batch of dirty entities no other holds
        (``claim_dirty``), plans it, and clears each one only if no event re-dirtied it meanwhile
        (``ack_dirty``, in the same transaction as the intents)."""
        claims = self.ctx.claims
        assert claims is not None
        owner, ttl = claims.daemon_id, claims.ttl
        total = 0
        for mapping in self.ctx.mappings:
            seen: set[int] = set()
            while True:
                items = await self.ctx.store.call(_claim_dirty, mapping.name, self.ctx.batch_size, owner, ttl)
                if not items or seen.issuperset(i for i, _ in items):
                    break  # nothing dirty, or only entities waiting for a write in flight
                seen.update(i for i, _ in items)
                total += await self.ctx.store.call(
                    self._plan_batch, mapping, [i for i, _ in items], dict(items)
                )
        return total

    def _plan_batch(
        self,
        store: StateStore,
        mapping: SyncMapping,
        ids: Sequence[int],
        generations: dict[int, int] | None = None,
    ) -> int:
        """Plan one batch in one transaction; ``generations`` (a shared state) are the dirty
        generations claimed, so an entity re-dirtied since its claim stays dirty."""
        with store.transaction():
            entities = store.entities(ids)
            links = store.links_of(ids)
            parked = store.parked_fields(ids)
            busy = store.busy_apps(ids)
            creatable = [a for a in mapping.apps if self.ctx.connectors[a].capabilities.create]
            archiving = [a for a in mapping.apps if self.ctx.connectors[a].capabilities.archives]
            intents = []
            settled = []
            changes: list[Change] = []
            drop: list[int] = []
            for eid in ids:
                entity = entities[eid]
                if IDENTITY in parked.get(eid, set()):
                    settled.append(eid)
                    continue
                entity_links = links.get(eid, {})
                if entity.state == "active":
                    for app, link in sorted(entity_links.items()):
                        if not mapping.in_scope(app, entity.values) and app not in busy.get(eid, set()):
                            # Scope is decided on the canonical values, in the plan as at ingest.
                            changes.append(
                                Change(
                                    eid,
                                    "*",
                                    None,
                                    None,
                                    app,
                                    f"left the scope of {app}: unlinked",
                                    code=ReasonCode.OUT_OF_SCOPE,
                                )
                            )
                            if link.id is not None:
                                drop.append(link.id)
                            entity_links = {a: x for a, x in entity_links.items() if a != app}
                refused: list[str] = []
                writes = plan_entity(
                    mapping,
                    entity,
                    entity_links,
                    parked=parked.get(eid, set()),
                    can_create=creatable,
                    busy_apps=busy.get(eid, set()),
                    archiving=archiving,
                    refused=refused,
                )
                for app in refused:
                    self.ctx.stats.apps[app].refused += 1
                    field_names = ", ".join(mapping.key_fields)
                    changes.append(
                        Change(
                            eid,
                            "*",
                            None,
                            None,
                            app,
                            f"not created in {app}: the natural key ({field_names}) is empty, "
                            "so the record could never be matched again",
                            code=ReasonCode.REFUSED,
                        )
                    )
                    log.warning("create refused: empty natural key", app=app, entity=eid)
                for w in writes:
                    # A fresh key per planned write; retries of this intent reuse it (idempotency).
                    key = f"{mapping.name}:{eid}:{w.app}:{w.op}:{uuid.uuid4().hex}"
                    intents.append(
                        (
                            key,
                            mapping.name,
                            w.app,
                            mapping.object_of(w.app),
                            w.op,
                            eid,
                            w.remote_id,
                            w.values,
                            w.payload,
                            w.expected_version,
                        )
                    )
                if not busy.get(eid):
                    settled.append(eid)
            n = store.enqueue(intents)
            if generations is None:
                store.mark_dirty(settled, False)
            else:
                store.ack_dirty([(eid, generations[eid]) for eid in settled])
            store.drop_links(drop)
            self.ctx.stats.changes += store.log_changes(mapping.name, changes, self.ctx.run_id or None)
            return n
