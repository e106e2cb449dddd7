"""The sync runner: drives connectors, the pure engine and the store through one cycle.

    read every app (pages) ──► ingest + merge (one transaction per page, cursor included)
        ──► infer deletes from complete listings (behind the mass-delete guard)
        ──► plan dirty entities into durable outbox intents ──► dispatch intents per app

Every remote call happens *after* its intent is committed and *before* the effects are
committed, so a crash at any point is repaired on restart: in-flight creates are looked up by
natural key before being sent again, in-flight updates are conditional on the version we read
(or re-read first) and in-flight deletes treat "not found" as done.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from syncd.connector import (
    AuthError,
    ConfigError,
    Connector,
    ConnectorError,
    NotFound,
    PermanentError,
    PreconditionFailed,
    RemoteRecord,
    TransientError,
    WebhookHint,
    WriteItem,
    WriteResult,
)
from syncd.engine import (
    Change,
    Conflict,
    Entity,
    Link,
    baseline_after_write,
    merge_record,
    new_entity_values,
    pending_for,
    plan_entity,
    same,
)
from syncd.engine.model import Candidate
from syncd.failures import failure
from syncd.mapping import Mapping as SyncMapping
from syncd.store import AsyncStore, Intent, Store, now_iso

log = structlog.get_logger("syncd.runner")

#: Pseudo-field of identity conflicts (two records with one natural key in one app).
IDENTITY = "@identity"


@dataclass
class AppStats:
    read: int = 0
    linked: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    errors: int = 0
    writes: int = 0
    #: Complete listings of this app whose delete propagation the mass-delete guard stopped.
    delete_guard: int = 0


@dataclass
class RunStats:
    """Counts of one cycle, overall and per app."""

    run_id: int = 0
    entities_new: int = 0
    conflicts: int = 0
    review: int = 0
    changes: int = 0
    delete_guard: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    #: Why an app failed this cycle (its last read failure or pause): ``syncd.failures.failure``.
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    apps: dict[str, AppStats] = field(default_factory=lambda: defaultdict(AppStats))

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.apps.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "linked": self.total("linked"),
            "created": self.total("created"),
            "updated": self.total("updated"),
            "deleted": self.total("deleted"),
            "conflicts": self.conflicts,
            "review": self.review,
            "errors": self.total("errors"),
            "writes": self.total("writes"),
            "read": self.total("read"),
            "entities_new": self.entities_new,
            "changes": self.changes,
            "delete_guard": self.delete_guard,
            "paused": self.paused,
            "failures": self.failures,
            "apps": {name: vars(s) for name, s in sorted(self.apps.items())},
        }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


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
    ) -> None:
        self.store = store
        self.mappings = list(mappings)
        self.by_name = {m.name: m for m in self.mappings}
        self.connectors = dict(connectors)
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.allow_mass_delete = allow_mass_delete
        self.dry_run = dry_run
        #: In a dry run: the writes that would have been sent.
        self.planned: list[dict[str, Any]] = []
        self.paused: set[str] = set()
        self.stats = RunStats()
        self.run_id = 0
        #: Called after every committed page / dispatch batch (progress displays, metrics).
        self.on_progress: Callable[[RunStats], None] | None = None

    # -- the cycle -------------------------------------------------------------------------------

    async def run_cycle(self, *, full: bool = False, apps: Iterable[str] | None = None) -> RunStats:
        """Read every app, merge, infer deletes, plan, and dispatch until the outbox is drained."""
        self.stats = RunStats()
        self.run_id = await self.store.call(Store.begin_run, "full" if full else "cycle")
        self.stats.run_id = self.run_id
        wanted = set(apps) if apps is not None else None
        for mapping in self.mappings:
            for app in mapping.apps:
                if (wanted is None or app in wanted) and app not in self.paused:
                    await self.read_app(mapping, app, full=full, run=self.run_id)
        await self.plan()
        await self.drain()
        self.stats.review = await self.store.call(Store.count_conflicts, "open")
        self.stats.paused = sorted(self.paused)
        await self.store.call(Store.finish_run, self.run_id, self.stats.as_dict())
        return self.stats

    async def read_app(
        self, mapping: SyncMapping, app: str, *, full: bool = False, run: int | None = None
    ) -> bool:
        """Read one app's changes (all records when ``full`` or on first sight). True if complete.

        ``run`` identifies this read (a new one is started when not given): a complete listing
        infers deletes only for links it did not see during *this* read.
        """
        if run is None:
            run = await self.store.call(Store.begin_run, f"read:{app}")
        connector = self.connectors[app]
        obj = mapping.object_of(app)
        saved = await self.store.call(Store.get_cursor, mapping.name, app)
        cursor = None if full else saved
        complete = False
        try:
            async for page in connector.read_changes(obj, cursor):
                await self.store.call(self._ingest_page, mapping, app, page.records, page.cursor, run)
                complete = page.complete
                self._progress()
        except AuthError as exc:
            self._pause(app, exc)
            return False
        except ConnectorError as exc:
            self.stats.apps[app].errors += 1
            self.stats.failures[app] = failure(exc)
            log.warning("read failed; no deletes inferred from this listing", app=app, error=str(exc))
            return False
        if complete:
            await self.store.call(self._infer_deletes, mapping, app, run, saved)
        return complete

    def _pause(self, app: str, exc: Exception, why: str = "credentials rejected") -> None:
        if app not in self.paused:
            log.error(f"app paused: {why}", app=app, error=str(exc))
        self.paused.add(app)
        self.stats.apps[app].errors += 1
        self.stats.failures[app] = failure(exc)

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)

    # -- ingest (runs on the store thread) ---------------------------------------------------------

    def _ingest_page(
        self,
        store: Store,
        mapping: SyncMapping,
        app: str,
        records: Sequence[RemoteRecord],
        cursor: dict[str, Any] | None,
        run: int | None = None,
    ) -> None:
        with store.transaction():
            self._ingest(store, mapping, app, records, run)
            if cursor is not None:
                store.set_cursor(mapping.name, app, cursor)

    def _ingest(
        self,
        store: Store,
        mapping: SyncMapping,
        app: str,
        records: Sequence[RemoteRecord],
        run: int | None = None,
    ) -> None:
        """Merge a batch of remote records from ``app`` (already in a transaction)."""
        sync = mapping.name
        stats = self.stats.apps[app]
        stats.read += len(records)
        links = store.links_by_remote(sync, app, [r.id for r in records])
        observed = {r.id: mapping.to_canonical(app, r.fields) for r in records if not r.deleted}
        keys = {rid: mapping.key_of(obs) for rid, obs in observed.items() if rid not in links}
        entities = store.entities({link.entity_id for link in links.values()})
        by_key = store.entities_by_key(sync, [k for k in keys.values() if k])
        entities.update({e.id: e for e in by_key.values()})
        # Only this app's links matter here: the one a record is linked by, or the one an entity
        # matched by key already has (a second record with that key is an identity conflict).
        all_links: dict[int, dict[str, Link]] = {link.entity_id: {app: link} for link in links.values()}
        matched = [e.id for e in by_key.values() if e.id not in all_links]
        for eid, app_link in store.app_links(matched, app).items():
            all_links.setdefault(eid, {})[app] = app_link
        parked = store.parked_fields(entities)
        touched: dict[int, Entity] = {}
        dirty: set[int] = set()
        save_links: dict[int, Link] = {}
        drop: list[Link] = []
        changes: list[Change] = []
        conflicts: list[Conflict] = []
        seen: list[str] = []

        for record in records:
            at = _iso(record.updated_at)
            link = links.get(record.id)
            if record.deleted:
                if link is not None and link.entity_id in entities:
                    entity = entities[link.entity_id]
                    self._tombstone(
                        mapping, entity, link, all_links, changes, drop, dirty, reason=f"deleted in {app}"
                    )
                    touched[entity.id] = entity
                continue
            obs = observed[record.id]
            if link is not None:
                seen.append(record.id)
                entity = entities[link.entity_id]
                if not mapping.in_scope(app, {**entity.values, **obs}):
                    changes.append(
                        Change(entity.id, "*", None, None, app, f"left the scope of {app}: unlinked")
                    )
                    entity.excluded = sorted({*entity.excluded, app})
                    drop.append(link)
                    all_links.get(entity.id, {}).pop(app, None)
                    touched[entity.id] = entity
                    continue
                outcome = merge_record(
                    mapping, entity, link, obs, at, parked=parked.get(entity.id, set()), run=run
                )
                link.version, link.remote_updated_at = record.version, at
                save_links[id(link)] = link
                for name, value in outcome.parked_updates.items():
                    store.update_parked(entity.id, name, app, value, at)
                changes += outcome.changes
                conflicts += outcome.conflicts
                if outcome.changed:
                    self._rekey(store, mapping, entity, changes)
                    touched[entity.id] = entity
                    dirty.add(entity.id)
                continue
            # A record we have no link for: match it by natural key, or start a new entity.
            if not mapping.in_scope(app, obs):
                continue
            key = keys.get(record.id)
            entity_or_none = by_key.get(key) if key else None
            if entity_or_none is not None:
                entity = entity_or_none
                existing = all_links.get(entity.id, {}).get(app)
                if existing is not None and existing.remote_id != record.id:
                    conflicts.append(
                        Conflict(
                            entity.id,
                            IDENTITY,
                            [Candidate(app, existing.remote_id), Candidate(app, record.id)],
                            "review",
                            "open",
                            kind="identity",
                        )
                    )
                    changes.append(
                        Change(
                            entity.id,
                            IDENTITY,
                            existing.remote_id,
                            record.id,
                            app,
                            f"two {app} records share the key {key!r}: sync of this key halted",
                        )
                    )
                    touched[entity.id] = entity
                    continue
                if entity.state != "active":
                    entity.state = "active"
                    changes.append(
                        Change(entity.id, "*", None, key, app, f"restored: {app} has the key again")
                    )
                entity.excluded = [a for a in entity.excluded if a != app]
                link = Link(None, entity.id, app, record.id, version=record.version, remote_updated_at=at)
                outcome = merge_record(
                    mapping, entity, link, obs, at, parked=parked.get(entity.id, set()), run=run
                )
                changes.append(
                    Change(entity.id, "*", None, record.id, app, f"linked existing {app} record by key")
                )
                changes += outcome.changes
                conflicts += outcome.conflicts
                stats.linked += 1
            else:
                entity = store.new_entity(sync, key)
                entities[entity.id] = entity
                if key:
                    by_key[key] = entity
                changes += new_entity_values(mapping, entity, app, obs, at, run)
                link = Link(None, entity.id, app, record.id, dict(obs), record.version, at)
                self.stats.entities_new += 1
            all_links.setdefault(entity.id, {})[app] = link
            save_links[id(link)] = link
            seen.append(record.id)
            touched[entity.id] = entity
            dirty.add(entity.id)

        store.drop_links(link.id for link in drop if link.id is not None)
        store.save_links(sync, save_links.values(), run)
        if run is not None:
            store.mark_seen(sync, app, seen, run)
        store.save_entities(touched.values())
        store.mark_dirty(dirty)
        store.add_conflicts(sync, conflicts)
        self.stats.conflicts += len(conflicts)
        self.stats.changes += store.log_changes(sync, changes, run)

    def _rekey(self, store: Store, mapping: SyncMapping, entity: Entity, changes: list[Change]) -> None:
        key = mapping.key_of(entity.values)
        if key == entity.key or key is None:
            return
        if store.entities_by_key(entity.sync, [key]):
            changes.append(
                Change(
                    entity.id, IDENTITY, entity.key, key, None, "new key already belongs to another entity"
                )
            )
            return
        changes.append(Change(entity.id, "@key", entity.key, key, None, "natural key changed"))
        entity.key = key

    def _tombstone(
        self,
        mapping: SyncMapping,
        entity: Entity,
        link: Link,
        all_links: dict[int, dict[str, Link]],
        changes: list[Change],
        drop: list[Link],
        dirty: set[int],
        *,
        reason: str,
    ) -> None:
        """Positive evidence that ``link``'s record is gone: apply the delete policy (edits win)."""
        app = link.app
        drop.append(link)
        all_links.get(entity.id, {}).pop(app, None)
        if entity.state != "active":
            changes.append(Change(entity.id, "*", None, None, app, f"{reason}: link dropped"))
            return
        if pending_for(mapping, entity, link):
            changes.append(
                Change(entity.id, "*", None, None, app, f"{reason}, but edited elsewhere: the edit wins")
            )
            dirty.add(entity.id)
            return
        policy = mapping.delete_policy
        if policy == "propagate":
            entity.state = "deleted"
            changes.append(
                Change(entity.id, "*", entity.key, None, app, f"{reason}: deleting in the other apps")
            )
            dirty.add(entity.id)
        elif policy == "archive":
            entity.state = "archived"
            changes.append(
                Change(entity.id, "*", entity.key, None, app, f"{reason}: entity archived, others kept")
            )
        elif policy == "unlink":
            entity.excluded = sorted({*entity.excluded, app})
            changes.append(Change(entity.id, "*", None, None, app, f"{reason}: unlinked, others kept"))
        else:
            changes.append(Change(entity.id, "*", None, None, app, f"{reason}: ignored, re-created there"))
            dirty.add(entity.id)

    def _infer_deletes(
        self,
        store: Store,
        mapping: SyncMapping,
        app: str,
        run: int,
        cursor_before: dict[str, Any] | None = None,
    ) -> None:
        """After a complete listing: linked records it did not contain are deleted — unless too many.

        When the guard stops it, the cursor goes back to where it was before the listing, so the
        change feed is read again and real deletes still arrive as tombstones (positive evidence).
        """
        sync = mapping.name
        linked = store.count_links(sync, app)
        missing = store.count_unseen(sync, app, run)
        if not missing:
            return
        share = missing / linked if linked else 0.0
        if not self.allow_mass_delete and (missing == linked or share > mapping.mass_delete_threshold):
            message = (
                f"{app}: complete listing lacks {missing} of {linked} linked records "
                f"({share:.0%} > {mapping.mass_delete_threshold:.0%}): delete propagation stopped"
            )
            self.stats.delete_guard.append(message)
            self.stats.apps[app].delete_guard += 1
            with store.transaction():
                store.log_changes(
                    sync,
                    [Change(0, "*", linked, linked - missing, app, "mass-delete guard: " + message)],
                    run,
                )
                if cursor_before is not None:
                    store.set_cursor(sync, app, cursor_before)
            log.error("mass-delete guard", app=app, missing=missing, linked=linked)
            return
        while True:
            batch = store.unseen_links(sync, app, run, 500)
            if not batch:
                break
            with store.transaction():
                entities = store.entities(link.entity_id for link in batch)
                all_links = store.links_of(entities)
                changes: list[Change] = []
                drop: list[Link] = []
                dirty: set[int] = set()
                for link in batch:
                    self._tombstone(
                        mapping,
                        entities[link.entity_id],
                        link,
                        all_links,
                        changes,
                        drop,
                        dirty,
                        reason=f"missing from the complete {app} listing",
                    )
                store.drop_links(link.id for link in drop if link.id is not None)
                store.save_entities(entities.values())
                store.mark_dirty(dirty)
                self.stats.changes += store.log_changes(sync, changes, run)

    # -- records pushed by webhooks or re-reads ----------------------------------------------------

    async def ingest(self, mapping: SyncMapping, app: str, records: Sequence[RemoteRecord]) -> None:
        """Merge records fetched outside a listing (webhook hints, pre-write re-reads)."""
        run = await self.store.call(Store.latest_run)
        await self.store.call(self._ingest_page, mapping, app, records, None, run)

    async def refetch(self, mapping: SyncMapping, app: str, ids: Sequence[str]) -> None:
        """Re-read records by id; ones that are gone count as deleted (positive evidence)."""
        connector = self.connectors[app]
        records = await connector.get(mapping.object_of(app), ids)
        found = {r.id for r in records}
        gone = [RemoteRecord(id=i, fields={}, deleted=True) for i in ids if i not in found]
        await self.ingest(mapping, app, [*records, *gone])

    async def poll(self, app: str, *, full: bool = False) -> bool:
        """Read one app for every mapping it takes part in, then plan (the daemon's poll job)."""
        complete = True
        for mapping in self.mappings:
            if app in mapping.apps and app not in self.paused:
                complete &= await self.read_app(mapping, app, full=full)
        await self.plan()
        return complete

    async def handle_hints(self, app: str, hints: Sequence[WebhookHint]) -> None:
        """Act on webhook hints: re-read the records they name (never apply payloads blindly,
        since deliveries come late, twice and out of order), then plan."""
        for mapping in self.mappings:
            if app not in mapping.apps:
                continue
            obj = mapping.object_of(app)
            ids = sorted({h.record_id for h in hints if h.object == obj})
            for start in range(0, len(ids), 100):
                await self.refetch(mapping, app, ids[start : start + 100])
        await self.plan()

    # -- plan --------------------------------------------------------------------------------------

    async def plan(self) -> int:
        """Turn every dirty entity into outbox intents; returns how many were queued."""
        total = 0
        for mapping in self.mappings:
            after = 0
            while True:
                ids = await self.store.call(Store.dirty_ids, mapping.name, self.batch_size, after)
                if not ids:
                    break
                total += await self.store.call(self._plan_batch, mapping, ids)
                after = ids[-1]
        return total

    def _plan_batch(self, store: Store, mapping: SyncMapping, ids: Sequence[int]) -> int:
        with store.transaction():
            entities = store.entities(ids)
            links = store.links_of(ids)
            parked = store.parked_fields(ids)
            busy = store.busy_apps(ids)
            creatable = [a for a in mapping.apps if self.connectors[a].capabilities.create]
            intents = []
            settled = []
            for eid in ids:
                entity = entities[eid]
                if IDENTITY in parked.get(eid, set()):
                    settled.append(eid)
                    continue
                writes = plan_entity(
                    mapping,
                    entity,
                    links.get(eid, {}),
                    parked=parked.get(eid, set()),
                    can_create=creatable,
                    busy_apps=busy.get(eid, set()),
                )
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
            store.mark_dirty(settled, False)
            return n

    # -- dispatch ----------------------------------------------------------------------------------

    async def drain(self, *, max_wait: float = 300.0) -> None:
        """Dispatch until the outbox is empty (waiting for retry back-offs up to ``max_wait``)."""
        deadline = asyncio.get_running_loop().time() + max_wait
        while True:
            progressed = False
            for app in await self.store.call(Store.pending_apps):
                if app in self.paused or app not in self.connectors:
                    continue
                progressed |= await self.dispatch_app(app)
            # Writes can make entities dirty again (adopted records, refused conditional writes).
            if await self.plan():
                progressed = True
            if progressed:
                continue
            due = await self.store.call(Store.next_due)
            pending = [a for a in await self.store.call(Store.pending_apps) if a not in self.paused]
            if not pending or due is None:
                return
            wait = (datetime.fromisoformat(due) - datetime.now(UTC)).total_seconds()
            if asyncio.get_running_loop().time() + wait > deadline:
                return
            await asyncio.sleep(max(wait, 0.0))

    async def dispatch_app(self, app: str) -> bool:
        """Send due intents of one app in batches; True if any intent settled."""
        connector = self.connectors[app]
        size = max(1, min(connector.capabilities.batch_size, self.batch_size))
        any_done = False
        while True:
            intents = await self.store.call(Store.claim, app, None, size)
            if not intents:
                return any_done
            any_done = True
            groups: dict[tuple[str, str], list[Intent]] = defaultdict(list)
            for intent in intents:
                groups[(intent.sync, intent.op)].append(intent)
            try:
                for (sync, op), group in groups.items():
                    mapping = self.by_name.get(sync)
                    if mapping is None:
                        await self.store.call(self._settle_all, group, "dead", f"no mapping named {sync}")
                        continue
                    if op == "create":
                        await self._send_creates(mapping, app, group)
                    elif op == "update":
                        await self._send_updates(mapping, app, group)
                    else:
                        await self._send_deletes(mapping, app, group)
            except AuthError as exc:
                self._pause(app, exc)
                await self.store.call(self._release, intents)
                return any_done
            except TransientError as exc:
                await self.store.call(self._backoff_all, intents, str(exc))
            except ConfigError as exc:
                # The app's settings cannot work (a missing column, an unknown object): pause it.
                self._pause(app, exc, why="its settings are wrong")
                await self.store.call(self._release, intents)
                return any_done
            except ConnectorError as exc:
                # The whole request was refused: every write in it is dead-lettered, nothing is lost.
                await self.store.call(self._fail_all, intents, exc)
            self._progress()

    def _release(self, store: Store, intents: Sequence[Intent]) -> None:
        with store.transaction():
            for intent in intents:
                current = store.intent(intent.id)
                if current is not None and current.status == "inflight":
                    store.settle(intent.id, "pending")

    def _fail_all(self, store: Store, intents: Sequence[Intent], error: ConnectorError) -> None:
        with store.transaction():
            for intent in intents:
                current = store.intent(intent.id)
                if current is not None and current.status == "inflight":
                    self._failed(store, intent, error)

    def _settle_all(self, store: Store, intents: Sequence[Intent], status: str, error: str | None) -> None:
        with store.transaction():
            for intent in intents:
                store.settle(intent.id, status, error, "permanent" if status == "dead" else None)

    def _backoff_all(self, store: Store, intents: Sequence[Intent], error: str) -> None:
        with store.transaction():
            for intent in intents:
                current = store.intent(intent.id)
                if current is not None and current.status == "inflight":
                    self._backoff(store, intent, error)

    def _backoff(self, store: Store, intent: Intent, error: str) -> None:
        self.stats.apps[intent.app].errors += 1
        if intent.attempts >= self.max_attempts:
            store.settle(intent.id, "dead", f"gave up after {intent.attempts} attempts: {error}", "transient")
            self._log_rejection(store, intent, f"gave up after {intent.attempts} attempts: {error}")
            return
        delay = self.retry_base * (2 ** (intent.attempts - 1))
        not_before = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat()
        store.retry_later(intent.id, error, not_before)

    def _log_rejection(self, store: Store, intent: Intent, error: str) -> None:
        store.log_changes(
            intent.sync,
            [
                Change(
                    intent.entity_id,
                    "*",
                    None,
                    intent.values,
                    intent.app,
                    f"{intent.op} rejected: {error}",
                    {"intent": intent.id},
                )
            ],
            self.run_id,
        )

    def _failed(self, store: Store, intent: Intent, error: ConnectorError) -> None:
        """Settle an intent whose write failed: transient → retry later; permanent → dead letter."""
        if isinstance(error, TransientError):
            self._backoff(store, intent, str(error))
            return
        self.stats.apps[intent.app].errors += 1
        store.settle(intent.id, "dead", str(error), type(error).__name__)
        self._log_rejection(store, intent, str(error))
        log.warning(
            "write rejected; dead-lettered",
            app=intent.app,
            op=intent.op,
            entity=intent.entity_id,
            error=str(error),
        )

    async def _send_creates(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        connector = self.connectors[app]
        obj = mapping.object_of(app)
        todo = await self.store.call(self._still_needed_creates, mapping, app, intents)
        if not todo:
            return
        # Look the natural key up first: a record made by a create whose commit we lost (crash,
        # timeout) or made by someone else meanwhile is linked, not duplicated.
        keyed = {i.id: k for i, k in todo if k}
        found: list[RemoteRecord] = []
        if keyed and len(mapping.key_fields) == 1:
            found = await connector.find(obj, mapping.key_path(app), sorted(set(keyed.values())))
        adopt: dict[int, RemoteRecord] = {}
        by_key: dict[str, RemoteRecord] = {}
        for record in sorted(found, key=lambda r: r.id):
            key = mapping.key_of(mapping.to_canonical(app, record.fields))
            if key and key not in by_key:
                by_key[key] = record
        for intent, key in todo:
            if key and key in by_key:
                adopt[intent.id] = by_key[key]
        send = [i for i, _ in todo if i.id not in adopt]
        if adopt:
            await self.store.call(
                self._adopt, mapping, app, [(i, adopt[i.id]) for i, _ in todo if i.id in adopt]
            )
        if not send:
            return
        if self.dry_run:
            await self._record_dry(send)
            return
        results = await connector.create(obj, [WriteItem(key=i.key, fields=i.payload) for i in send])
        await self.store.call(self._after_creates, mapping, app, send, results)

    def _still_needed_creates(
        self, store: Store, mapping: SyncMapping, app: str, intents: list[Intent]
    ) -> list[tuple[Intent, str | None]]:
        with store.transaction():
            entities = store.entities(i.entity_id for i in intents)
            links = store.links_of(entities)
            out = []
            for intent in intents:
                entity = entities.get(intent.entity_id)
                if entity is None or entity.state != "active" or app in links.get(intent.entity_id, {}):
                    store.settle(intent.id, "superseded")
                    continue
                out.append((intent, entity.key))
            return out

    def _adopt(
        self, store: Store, mapping: SyncMapping, app: str, pairs: list[tuple[Intent, RemoteRecord]]
    ) -> None:
        with store.transaction():
            taken = store.links_by_remote(mapping.name, app, [r.id for _, r in pairs])
            fresh = []
            for intent, record in pairs:
                if record.id in taken:
                    # Already linked to another entity: that is an identity problem, not ours to merge.
                    store.settle(
                        intent.id,
                        "dead",
                        f"{app} record {record.id} with this key is linked elsewhere",
                        "identity",
                    )
                    continue
                fresh.append(record)
                store.settle(intent.id, "done")
                self.stats.apps[app].linked += 1
            self._ingest(store, mapping, app, fresh, store.latest_run())

    def _after_creates(
        self, store: Store, mapping: SyncMapping, app: str, intents: list[Intent], results: list[WriteResult]
    ) -> None:
        with store.transaction():
            entities = store.entities(i.entity_id for i in intents)
            new_links = []
            changes: list[Change] = []
            high_run = store.latest_run()
            for intent, result in zip(intents, results, strict=True):
                if result.error is not None or result.record is None:
                    self._failed(store, intent, result.error or PermanentError("create returned no record"))
                    continue
                entity = entities[intent.entity_id]
                record = result.record
                link = Link(None, entity.id, app, record.id, {}, record.version, _iso(record.updated_at))
                baseline_after_write(mapping, link, intent.values, intent.payload, record.fields)
                outcome = merge_record(
                    mapping,
                    entity,
                    link,
                    mapping.to_canonical(app, record.fields),
                    link.remote_updated_at,
                    run=self.run_id,
                )
                changes.append(Change(entity.id, "*", None, record.id, app, f"created in {app}"))
                changes += outcome.changes
                if outcome.changed:
                    store.mark_dirty([entity.id])
                new_links.append(link)
                store.settle(intent.id, "done")
                self.stats.apps[app].created += 1
                self.stats.apps[app].writes += 1
            store.save_links(mapping.name, new_links, high_run)
            store.save_entities(entities.values())
            self.stats.changes += store.log_changes(mapping.name, changes, self.run_id)

    async def _send_updates(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        connector = self.connectors[app]
        obj = mapping.object_of(app)
        ready = await self.store.call(self._current_updates, mapping, app, intents)
        if not ready:
            return
        if not connector.capabilities.conditional_writes:
            # No conditional writes: re-read first, and do not clobber a record changed since we read it.
            fresh = await connector.get(obj, [link.remote_id for _, link in ready])
            ready = await self.store.call(self._unchanged_since_read, mapping, app, ready, fresh)
            if not ready:
                return
        if self.dry_run:
            await self._record_dry([i for i, _ in ready])
            return
        items = [
            WriteItem(
                key=i.key,
                id=link.remote_id,
                fields=i.payload,
                expected_version=link.version if connector.capabilities.conditional_writes else None,
            )
            for i, link in ready
        ]
        results = await connector.update(obj, items)
        refetch = await self.store.call(self._after_updates, mapping, app, ready, results)
        if refetch:
            await self.refetch(mapping, app, refetch)

    def _current_updates(
        self, store: Store, mapping: SyncMapping, app: str, intents: list[Intent]
    ) -> list[tuple[Intent, Link]]:
        with store.transaction():
            links = store.links_of(i.entity_id for i in intents)
            out = []
            for intent in intents:
                link = links.get(intent.entity_id, {}).get(app)
                if (
                    link is None
                    or link.remote_id != intent.remote_id
                    or link.version != intent.expected_version
                ):
                    # The record moved on since this was planned: plan again from what we know now.
                    store.settle(intent.id, "superseded")
                    store.mark_dirty([intent.entity_id])
                    continue
                out.append((intent, link))
            return out

    def _unchanged_since_read(
        self,
        store: Store,
        mapping: SyncMapping,
        app: str,
        ready: list[tuple[Intent, Link]],
        fresh: list[RemoteRecord],
    ) -> list[tuple[Intent, Link]]:
        by_id = {r.id: r for r in fresh}
        keep, changed = [], []
        for intent, link in ready:
            record = by_id.get(link.remote_id)
            if record is None:
                changed.append(RemoteRecord(id=link.remote_id, fields={}, deleted=True))
                store.settle(intent.id, "superseded")
                continue
            now = mapping.to_canonical(app, record.fields)
            if any(
                name in now and not same(now[name], link.baseline.get(name)) for name in mapping.readable(app)
            ):
                changed.append(record)
                store.settle(intent.id, "superseded")
                continue
            keep.append((intent, link))
        if changed:
            self._ingest_page(store, mapping, app, changed, None, store.latest_run())
        return keep

    def _after_updates(
        self,
        store: Store,
        mapping: SyncMapping,
        app: str,
        ready: list[tuple[Intent, Link]],
        results: list[WriteResult],
    ) -> list[str]:
        refetch: list[str] = []
        with store.transaction():
            entities = store.entities(i.entity_id for i, _ in ready)
            # Reload: a webhook or poll may have moved a link on while the call was in flight.
            current = store.links_of(entities)
            changes: list[Change] = []
            links = []
            for (intent, sent), result in zip(ready, results, strict=True):
                entity = entities[intent.entity_id]
                if isinstance(result.error, PreconditionFailed | NotFound):
                    kind = "precondition" if isinstance(result.error, PreconditionFailed) else "not_found"
                    store.settle(intent.id, "superseded", str(result.error), kind)
                    refetch.append(sent.remote_id)
                    continue
                if result.error is not None or result.record is None:
                    self._failed(store, intent, result.error or PermanentError("update returned no record"))
                    continue
                record = result.record
                store.settle(intent.id, "done")
                self.stats.apps[app].updated += 1
                self.stats.apps[app].writes += 1
                for name, value in intent.values.items():
                    changes.append(
                        Change(entity.id, name, sent.baseline.get(name), value, app, f"written to {app}")
                    )
                link = current.get(entity.id, {}).get(app)
                if link is None or link.remote_id != sent.remote_id:
                    continue  # unlinked meanwhile
                if link.version not in (sent.version, record.version):
                    continue  # a newer read already recorded what the app holds
                baseline_after_write(mapping, link, intent.values, intent.payload, record.fields)
                link.version, link.remote_updated_at = record.version, _iso(record.updated_at)
                links.append(link)
            store.save_links(mapping.name, links)
            self.stats.changes += store.log_changes(mapping.name, changes, self.run_id)
        return refetch

    async def _send_deletes(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        connector = self.connectors[app]
        if self.dry_run:
            await self._record_dry(intents)
            return
        items = [WriteItem(key=i.key, id=i.remote_id, fields={}) for i in intents]
        results = await connector.delete(mapping.object_of(app), items)
        await self.store.call(self._after_deletes, mapping, app, intents, results)

    def _after_deletes(
        self, store: Store, mapping: SyncMapping, app: str, intents: list[Intent], results: list[WriteResult]
    ) -> None:
        with store.transaction():
            links = store.links_of(i.entity_id for i in intents)
            changes = []
            drop = []
            for intent, result in zip(intents, results, strict=True):
                if result.error is not None and not isinstance(result.error, NotFound):
                    self._failed(store, intent, result.error)
                    continue
                link = links.get(intent.entity_id, {}).get(app)
                if link is not None and link.id is not None:
                    drop.append(link.id)
                store.settle(intent.id, "done")
                changes.append(
                    Change(intent.entity_id, "*", intent.remote_id, None, app, f"deleted in {app}")
                )
                if result.error is None:
                    self.stats.apps[app].deleted += 1
                    self.stats.apps[app].writes += 1
            store.drop_links(drop)
            self.stats.changes += store.log_changes(mapping.name, changes, self.run_id)

    async def _record_dry(self, intents: Sequence[Intent]) -> None:
        """Dry run: note the write instead of sending it (the store is a throw-away copy)."""
        await self.store.call(self._settle_all, intents, "done", None)
        for i in intents:
            self.planned.append(
                {
                    "app": i.app,
                    "op": i.op,
                    "entity_id": i.entity_id,
                    "remote_id": i.remote_id,
                    "fields": i.values,
                    "payload": i.payload,
                }
            )
            stats = self.stats.apps[i.app]
            stats.writes += 1
            if i.op == "create":
                stats.created += 1
            elif i.op == "update":
                stats.updated += 1
            else:
                stats.deleted += 1

    # -- admin actions -------------------------------------------------------------------------------

    async def resolve_conflict(
        self, conflict_id: int, *, take: str | None = None, value: Any = None
    ) -> dict[str, Any]:
        return await self.store.call(self._resolve, conflict_id, take, value)

    def _resolve(self, store: Store, conflict_id: int, take: str | None, value: Any) -> dict[str, Any]:
        with store.transaction():
            conflict = store.conflict(conflict_id)
            if conflict is None:
                raise LookupError(f"no conflict {conflict_id}")
            if conflict["status"] != "open":
                raise ValueError(f"conflict {conflict_id} is already {conflict['status']}")
            entity = store.entities([conflict["entity_id"]])[conflict["entity_id"]]
            name = conflict["field"]
            if conflict["kind"] == "identity":
                store.close_conflict(conflict_id, take, {"note": "resumed by admin"})
                store.mark_dirty([entity.id])
                return conflict
            if take is not None:
                chosen = [c for c in conflict["candidates"] if c["app"] == take]
                if not chosen:
                    apps = ", ".join(c["app"] for c in conflict["candidates"])
                    raise ValueError(f"{take!r} is not a side of conflict {conflict_id} (sides: {apps})")
                new = chosen[0]["value"]
            else:
                new = value
            old = entity.values.get(name)
            entity.values[name] = new
            entity.provenance[name] = {"app": take or "admin", "at": now_iso(), "run": None}
            store.save_entities([entity], dirty=True)
            store.close_conflict(conflict_id, take, {"value": new})
            store.log_changes(
                entity.sync,
                [
                    Change(
                        entity.id,
                        name,
                        old,
                        new,
                        take,
                        f"conflict {conflict_id} resolved by admin",
                        {"candidates": conflict["candidates"]},
                    )
                ],
                None,
            )
            conflict["resolution"] = {"value": new}
            return conflict
