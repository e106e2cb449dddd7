"""Dispatch: send the outbox's intents (creates, updates, deletes, re-reads) and record results.

Every remote call happens after its intent is committed and before its effects are committed:
creates look the natural key up first, updates are conditional on the version read (or re-read
first), deletes treat "not found" as done. One bad write is a dead letter, never the batch's end.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog

from syncd.connector import (
    AuthError,
    ConfigError,
    ConnectorError,
    NotFound,
    PermanentError,
    PreconditionFailed,
    RemoteRecord,
    TransientError,
    WriteItem,
    WriteResult,
)
from syncd.engine import (
    IDENTITY,
    Change,
    Conflict,
    Link,
    baseline_after_write,
    merge_record,
    retry_delay,
    same,
)
from syncd.engine.model import Candidate, ReasonCode
from syncd.mapping import Mapping as SyncMapping
from syncd.store import Intent, StateStore

from .context import Claim, SyncContext, iso
from .ingest import Ingester
from .plan import Planner

log = structlog.get_logger("syncd.runner")


class Fenced(Exception):
    """Another daemon took over this daemon's claim on an intent: its outcome is not recorded."""


def _settle(
    store: StateStore, intent: Intent, status: str, error: str | None = None, kind: str | None = None
) -> None:
    """Record an intent's outcome, only while its claim is still ours (``Fenced`` otherwise, which
    rolls back the unit of work it is part of)."""
    owner, epoch = intent.claimed_by, intent.claim_epoch
    if not store.settle(intent.id, status, error, kind, owner=owner, epoch=epoch) and owner is not None:
        raise Fenced(f"intent {intent.id} was taken over by another daemon")


def _claim(store: StateStore, app: str, size: int, claim: Claim | None) -> list[Intent]:
    if claim is None:
        return store.claim(app, None, size)
    return store.claim(app, None, size, owner=claim.owner, epoch=claim.epoch, ttl=claim.ttl)


def _retry_later(store: StateStore, intent: Intent, error: str, not_before: str) -> None:
    owner, epoch = intent.claimed_by, intent.claim_epoch
    if not store.retry_later(intent.id, error, not_before, owner=owner, epoch=epoch) and owner is not None:
        raise Fenced(f"intent {intent.id} was taken over by another daemon")


class OutboxDispatch:
    """Sends planned writes app by app, in the apps' batch sizes, and settles their intents."""

    def __init__(self, ctx: SyncContext, ingester: Ingester, planner: Planner) -> None:
        self.ctx = ctx
        self.ingester = ingester
        self.planner = planner

    async def drain(self, *, max_wait: float = 300.0) -> None:
        """Dispatch until the outbox is empty (waiting for retry back-offs up to ``max_wait``)."""
        deadline = asyncio.get_running_loop().time() + max_wait
        while True:
            progressed = False
            for app in await self.ctx.store.call(lambda s: s.pending_apps()):
                if app in self.ctx.paused or app not in self.ctx.connectors or not self.ctx.serves(app):
                    continue
                progressed |= await self.dispatch_app(app)
            # Writes can make entities dirty again (adopted records, refused conditional writes).
            if await self.planner.plan():
                progressed = True
            if progressed:
                continue
            due = await self.ctx.store.call(lambda s: s.next_due())
            pending = [
                a
                for a in await self.ctx.store.call(lambda s: s.pending_apps())
                if a not in self.ctx.paused and self.ctx.serves(a)
            ]
            if not pending or due is None:
                return
            wait = (datetime.fromisoformat(due) - datetime.now(UTC)).total_seconds()
            if asyncio.get_running_loop().time() + wait > deadline:
                return
            await asyncio.sleep(max(wait, 0.0))

    async def dispatch_app(self, app: str) -> bool:
        """Send due intents of one app in batches; True if any intent settled.

        On a state shared by several daemons, each batch is claimed under this daemon's claim on
        the app (its id and the app lease's epoch), checked before the batch is sent; a batch
        whose claim was taken over meanwhile records nothing (``Fenced``) and dispatch stops.
        """
        connector = self.ctx.connectors[app]
        size = max(1, min(connector.capabilities.batch_size, self.ctx.batch_size))
        any_done = False
        while True:
            claim = await self.ctx.claim_for(app)
            if claim is False:
                return any_done  # another daemon serves this app now
            intents = await self.ctx.store.call(_claim, app, size, claim)
            if not intents:
                return any_done
            try:
                go_on = await self._dispatch_batch(app, intents)
            except Fenced as exc:
                log.warning(
                    "claim taken over by another daemon; this app's writes stop here", app=app, error=str(exc)
                )
                return True
            any_done = True
            if not go_on:
                return any_done

    async def _dispatch_batch(self, app: str, intents: list[Intent]) -> bool:
        """Send one claimed batch; False if the app must not be written to any more for now."""
        groups: dict[tuple[str, str], list[Intent]] = defaultdict(list)
        for intent in intents:
            groups[(intent.sync, intent.op)].append(intent)
        try:
            for (sync, op), group in groups.items():
                if await self.ctx.claim_for(app) is False:
                    raise Fenced(f"this daemon no longer serves {app}")
                mapping = self.ctx.by_name.get(sync)
                if mapping is None:
                    await self.ctx.store.call(self._settle_all, group, "dead", f"no mapping named {sync}")
                    continue
                if op == "create":
                    await self._send_creates(mapping, app, group)
                elif op == "update":
                    await self._send_updates(mapping, app, group)
                elif op == "delete":
                    await self._send_deletes(mapping, app, group)
                else:
                    await self._send_reads(mapping, app, group)
        except AuthError as exc:
            self.ctx.pause(app, exc)
            await self.ctx.store.call(self._release, intents)
            return False
        except TransientError as exc:
            await self.ctx.store.call(self._backoff_all, intents, str(exc))
        except ConfigError as exc:
            # The app's settings cannot work (a missing column, an unknown object): pause it.
            self.ctx.pause(app, exc, why="its settings are wrong")
            await self.ctx.store.call(self._release, intents)
            return False
        except ConnectorError as exc:
            # The whole request was refused: every write in it is dead-lettered, nothing is lost.
            await self.ctx.store.call(self._fail_all, intents, exc)
        self.ctx.progress()
        return True

    def _release(self, store: StateStore, intents: Sequence[Intent]) -> None:
        with store.transaction():
            for intent in intents:
                current = store.intent(intent.id)
                if current is not None and current.status == "inflight":
                    _settle(store, intent, "pending")

    def _fail_all(self, store: StateStore, intents: Sequence[Intent], error: ConnectorError) -> None:
        with store.transaction():
            for intent in intents:
                current = store.intent(intent.id)
                if current is not None and current.status == "inflight":
                    self._failed(store, intent, error)

    def _settle_all(
        self, store: StateStore, intents: Sequence[Intent], status: str, error: str | None
    ) -> None:
        with store.transaction():
            for intent in intents:
                _settle(store, intent, status, error, "permanent" if status == "dead" else None)

    def _backoff_all(self, store: StateStore, intents: Sequence[Intent], error: str) -> None:
        with store.transaction():
            for intent in intents:
                current = store.intent(intent.id)
                if current is not None and current.status == "inflight":
                    self._backoff(store, intent, error)

    def _backoff(self, store: StateStore, intent: Intent, error: str) -> None:
        self.ctx.stats.apps[intent.app].errors += 1
        if intent.attempts >= self.ctx.max_attempts:
            _settle(store, intent, "dead", f"gave up after {intent.attempts} attempts: {error}", "transient")
            self._log_rejection(store, intent, f"gave up after {intent.attempts} attempts: {error}")
            return
        delay = retry_delay(self.ctx.retry_base, intent.attempts)
        not_before = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat()
        _retry_later(store, intent, error, not_before)

    def _log_rejection(self, store: StateStore, intent: Intent, error: str) -> None:
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
                    code=ReasonCode.REJECTED,
                )
            ],
            self.ctx.run_id,
        )

    def _failed(self, store: StateStore, intent: Intent, error: ConnectorError) -> None:
        """Settle an intent whose write failed: transient → retry later; permanent → dead letter."""
        if isinstance(error, TransientError):
            self._backoff(store, intent, str(error))
            return
        self.ctx.stats.apps[intent.app].errors += 1
        _settle(store, intent, "dead", str(error), type(error).__name__)
        self._log_rejection(store, intent, str(error))
        log.warning(
            "write rejected; dead-lettered",
            app=intent.app,
            op=intent.op,
            entity=intent.entity_id,
            error=str(error),
        )

    async def _send_creates(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        connector = self.ctx.connectors[app]
        obj = mapping.object_of(app)
        todo = await self.ctx.store.call(self._still_needed_creates, mapping, app, intents)
        if not todo:
            return
        # Look the natural key up first: a record made by a create whose commit we lost (crash,
        # timeout) or made by someone else meanwhile is linked, not duplicated. A first attempt
        # needs none for an app this cycle listed completely (the listing matched every record the
        # app held by key: a bulk first sync makes no lookups). An app whose create is an upsert
        # by the key is no exception: the upsert would write over a record someone made since the
        # last read, without the first-match rule ever comparing the two. An intent sent before can
        # have made a record: it is always looked up, to be linked as it was.
        listed = (mapping.name, app) in self.ctx.listed
        keyed = {i.id: k for i, k in todo if k and (i.attempts > 1 or not listed)}
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
            await self.ctx.store.call(
                self._adopt, mapping, app, [(i, adopt[i.id]) for i, _ in todo if i.id in adopt]
            )
        if not send:
            return
        if self.ctx.dry_run:
            await self._record_dry(send)
            return
        results = await connector.create(obj, [WriteItem(key=i.key, fields=i.payload) for i in send])
        await self.ctx.store.call(self._after_creates, mapping, app, send, results)

    def _still_needed_creates(
        self, store: StateStore, mapping: SyncMapping, app: str, intents: list[Intent]
    ) -> list[tuple[Intent, str | None]]:
        with store.transaction():
            entities = store.entities(i.entity_id for i in intents)
            linked = store.app_links(entities, app)
            out = []
            for intent in intents:
                entity = entities.get(intent.entity_id)
                if entity is None or entity.state != "active" or intent.entity_id in linked:
                    _settle(store, intent, "superseded")
                    continue
                out.append((intent, entity.key))
            return out

    def _adopt(
        self, store: StateStore, mapping: SyncMapping, app: str, pairs: list[tuple[Intent, RemoteRecord]]
    ) -> None:
        with store.transaction():
            taken = store.links_by_remote(mapping.name, app, [r.id for _, r in pairs])
            fresh: list[RemoteRecord] = []
            found: list[Intent] = []
            for intent, record in pairs:
                if record.id in taken and taken[record.id].entity_id == intent.entity_id:
                    # Linked to this very entity already (a crash between create and commit, then a
                    # read that linked it): the create is done, nothing to report.
                    _settle(store, intent, "done")
                    continue
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
                found.append(intent)
                self.ctx.stats.apps[app].linked += 1
            # Ingested while the intents are still open: a record our own earlier attempt made
            # takes what that attempt sent as its baseline (``Ingester._ingest``).
            self.ingester._ingest(store, mapping, app, fresh, store.latest_run())
            for intent in found:
                _settle(store, intent, "done")

    def _after_creates(
        self,
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        intents: list[Intent],
        results: list[WriteResult],
    ) -> None:
        with store.transaction():
            entities = store.entities(i.entity_id for i in intents)
            parked = store.parked_fields(entities)
            new_links = []
            changes: list[Change] = []
            conflicts: list[Conflict] = []
            high_run = store.latest_run()
            # Only this app's links matter (a record linked here meanwhile): the others' baselines
            # need not be decoded.
            held = store.app_links(entities, app)
            for intent, result in zip(intents, results, strict=True):
                if result.error is not None or result.record is None:
                    self._failed(store, intent, result.error or PermanentError("create returned no record"))
                    continue
                entity = entities[intent.entity_id]
                record = result.record
                existing = held.get(entity.id)
                if existing is not None and existing.remote_id != record.id:
                    # A read linked a record of this app with the key while our create was in
                    # flight (someone made it meanwhile): two records share the key now. Halt the
                    # key for a person, as any identity conflict, rather than lose track of one.
                    _settle(store, intent, "done")
                    self.ctx.stats.apps[app].created += 1
                    self.ctx.stats.apps[app].writes += 1
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
                            f"created in {app} while another {app} record with the key was linked: "
                            "sync of this key halted",
                            code=ReasonCode.IDENTITY,
                        )
                    )
                    continue
                link = Link(
                    None,
                    entity.id,
                    app,
                    record.id,
                    {},
                    record.version,
                    iso(record.updated_at),
                    alias=record.alias,
                )
                baseline_after_write(mapping, link, intent.values, intent.payload, record.fields)
                outcome = merge_record(
                    mapping,
                    entity,
                    link,
                    mapping.to_canonical(app, record.fields),
                    link.remote_updated_at,
                    parked=parked.get(entity.id, set()),
                    run=self.ctx.run_id,
                )
                changes.append(
                    Change(entity.id, "*", None, record.id, app, f"created in {app}", code=ReasonCode.CREATED)
                )
                changes += outcome.changes
                conflicts += outcome.conflicts
                self.ctx.stats.oscillations += len(outcome.oscillations)
                if outcome.changed:
                    store.mark_dirty([entity.id])
                new_links.append(link)
                _settle(store, intent, "done")
                self.ctx.stats.apps[app].created += 1
                self.ctx.stats.apps[app].writes += 1
            # Entities before links: a baseline equal to its entity's new values is stored as a reference.
            store.save_entities(entities.values())
            store.save_links(mapping.name, new_links, high_run)
            store.add_conflicts(mapping.name, conflicts)
            self.ctx.stats.conflicts += len(conflicts)
            self.ctx.stats.changes += store.log_changes(mapping.name, changes, self.ctx.run_id)

    async def _send_updates(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        connector = self.ctx.connectors[app]
        obj = mapping.object_of(app)
        ready = await self.ctx.store.call(self._current_updates, mapping, app, intents)
        if not ready:
            return
        if not connector.capabilities.conditional_writes:
            # No conditional writes: re-read first, and do not clobber a record changed since we read it.
            fresh = await connector.get(obj, [link.remote_id for _, link in ready])
            ready = await self.ctx.store.call(self._unchanged_since_read, mapping, app, ready, fresh)
            if not ready:
                return
        if self.ctx.dry_run:
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
        refetch = await self.ctx.store.call(self._after_updates, mapping, app, ready, results)
        if refetch:
            await self.ingester.refetch(mapping, app, refetch)

    def _current_updates(
        self, store: StateStore, mapping: SyncMapping, app: str, intents: list[Intent]
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
                    _settle(store, intent, "superseded")
                    store.mark_dirty([intent.entity_id])
                    continue
                out.append((intent, link))
            return out

    def _unchanged_since_read(
        self,
        store: StateStore,
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
                _settle(store, intent, "superseded")
                continue
            now = mapping.to_canonical(app, record.fields)
            if any(
                name in now and not same(now[name], link.baseline.get(name)) for name in mapping.readable(app)
            ):
                changed.append(record)
                _settle(store, intent, "superseded")
                continue
            keep.append((intent, link))
        if changed:
            self.ingester._ingest_page(store, mapping, app, changed, None, store.latest_run())
        return keep

    def _after_updates(
        self,
        store: StateStore,
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
            parked = store.parked_fields(entities)
            changes: list[Change] = []
            conflicts: list[Conflict] = []
            dirty: list[int] = []
            links = []
            for (intent, sent), result in zip(ready, results, strict=True):
                entity = entities[intent.entity_id]
                if isinstance(result.error, PreconditionFailed | NotFound):
                    kind = "precondition" if isinstance(result.error, PreconditionFailed) else "not_found"
                    _settle(store, intent, "superseded", str(result.error), kind)
                    refetch.append(sent.remote_id)
                    continue
                if result.error is not None or result.record is None:
                    self._failed(store, intent, result.error or PermanentError("update returned no record"))
                    continue
                record = result.record
                _settle(store, intent, "done")
                self.ctx.stats.apps[app].updated += 1
                self.ctx.stats.apps[app].writes += 1
                for name, value in intent.values.items():
                    changes.append(
                        Change(
                            entity.id,
                            name,
                            sent.baseline.get(name),
                            value,
                            app,
                            f"written to {app}",
                            code=ReasonCode.WRITTEN,
                        )
                    )
                link = current.get(entity.id, {}).get(app)
                if link is None or link.remote_id != sent.remote_id:
                    continue  # unlinked meanwhile
                if link.version not in (sent.version, record.version):
                    continue  # a newer read already recorded what the app holds
                if record.id != sent.remote_id and not store.links_by_remote(mapping.name, app, [record.id]):
                    # The app gave the record a new id (ids derived from the key): the link follows.
                    changes.append(
                        Change(
                            entity.id,
                            "*",
                            sent.remote_id,
                            record.id,
                            app,
                            f"{app} record {sent.remote_id} is now {record.id}: link moved",
                            code=ReasonCode.LINK_MOVED,
                        )
                    )
                    link.remote_id = record.id
                baseline_after_write(mapping, link, intent.values, intent.payload, record.fields)
                link.version, link.remote_updated_at = record.version, iso(record.updated_at)
                link.alias = record.alias or link.alias
                # What the app kept is read like any read: a value an automation put in place of
                # ours is a change from that app (and propagates), an equivalent form settles.
                outcome = merge_record(
                    mapping,
                    entity,
                    link,
                    mapping.to_canonical(app, record.fields),
                    link.remote_updated_at,
                    parked=parked.get(entity.id, set()),
                    run=self.ctx.run_id,
                )
                changes += outcome.changes
                conflicts += outcome.conflicts
                self.ctx.stats.oscillations += len(outcome.oscillations)
                if outcome.changed:
                    dirty.append(entity.id)
                links.append(link)
            store.save_entities(entities[eid] for eid in dirty)
            store.save_links(mapping.name, links)
            store.mark_dirty(dirty)
            store.add_conflicts(mapping.name, conflicts)
            self.ctx.stats.conflicts += len(conflicts)
            self.ctx.stats.changes += store.log_changes(mapping.name, changes, self.ctx.run_id)
        return refetch

    async def _send_deletes(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        connector = self.ctx.connectors[app]
        intents = await self.ctx.store.call(self._still_needed_deletes, intents)
        if not intents:
            return
        conditional = connector.capabilities.conditional_writes
        if not conditional and not self.ctx.dry_run:
            # An edit beats a delete: re-read first, and keep a record changed since we read it.
            ready = await self.ctx.store.call(self._current_deletes, app, intents)
            fresh = await connector.get(mapping.object_of(app), [link.remote_id for _, link in ready])
            kept = await self.ctx.store.call(self._unchanged_since_read, mapping, app, ready, fresh)
            intents = [i for i, _ in kept]
            if not intents:
                return
        if self.ctx.dry_run:
            await self._record_dry(intents)
            return
        items = [
            WriteItem(
                key=i.key,
                id=i.remote_id,
                fields={},
                expected_version=i.expected_version if conditional else None,
            )
            for i in intents
        ]
        results = await connector.delete(mapping.object_of(app), items)
        refetch = await self.ctx.store.call(self._after_deletes, mapping, app, intents, results)
        if refetch:
            await self.ingester.refetch(mapping, app, refetch)

    @staticmethod
    def _current_deletes(store: StateStore, app: str, intents: list[Intent]) -> list[tuple[Intent, Link]]:
        """Deletes paired with the link they act on (a delete whose link is gone is done)."""
        with store.transaction():
            links = store.links_of(i.entity_id for i in intents)
            out = []
            for intent in intents:
                link = links.get(intent.entity_id, {}).get(app)
                if link is None or link.remote_id != intent.remote_id:
                    _settle(store, intent, "superseded")
                    continue
                out.append((intent, link))
            return out

    async def _send_reads(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        """Read records again: a replayed quarantined read (quarantined again if still bad), or a
        record of which a stale copy was read (merged as read this time)."""
        ids = sorted({i.remote_id for i in intents if i.remote_id})
        await self.ctx.store.call(self._settle_all, intents, "done", None)
        if ids and not self.ctx.dry_run:
            self.ingester.trust(app, ids)
            await self.ingester.refetch(mapping, app, ids)

    @staticmethod
    def _still_needed_deletes(store: StateStore, intents: list[Intent]) -> list[Intent]:
        """Deletes of entities that came back (re-created, restored) meanwhile are not sent."""
        with store.transaction():
            entities = store.entities(i.entity_id for i in intents)
            out = []
            for intent in intents:
                entity = entities.get(intent.entity_id)
                if entity is not None and entity.state == "active":
                    _settle(store, intent, "superseded")
                    store.mark_dirty([entity.id])
                    continue
                out.append(intent)
            return out

    def _after_deletes(
        self,
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        intents: list[Intent],
        results: list[WriteResult],
    ) -> list[str]:
        refetch: list[str] = []
        with store.transaction():
            links = store.links_of(i.entity_id for i in intents)
            changes = []
            drop = []
            for intent, result in zip(intents, results, strict=True):
                if isinstance(result.error, PreconditionFailed):
                    # Edited since we read it: not deleted; the edit is read and wins.
                    _settle(store, intent, "superseded", str(result.error), "precondition")
                    if intent.remote_id:
                        refetch.append(intent.remote_id)
                    continue
                if result.error is not None and not isinstance(result.error, NotFound):
                    self._failed(store, intent, result.error)
                    continue
                link = links.get(intent.entity_id, {}).get(app)
                if link is not None and link.id is not None:
                    drop.append(link.id)
                _settle(store, intent, "done")
                changes.append(
                    Change(
                        intent.entity_id,
                        "*",
                        intent.remote_id,
                        None,
                        app,
                        f"deleted in {app}",
                        code=ReasonCode.DELETED,
                    )
                )
                if result.error is None:
                    self.ctx.stats.apps[app].deleted += 1
                    self.ctx.stats.apps[app].writes += 1
            store.drop_links(drop)
            self.ctx.stats.changes += store.log_changes(mapping.name, changes, self.ctx.run_id)
        return refetch

    async def _record_dry(self, intents: Sequence[Intent]) -> None:
        """Dry run: note the write instead of sending it (the store is a throw-away copy)."""
        await self.ctx.store.call(self._settle_all, intents, "done", None)
        for i in intents:
            self.ctx.planned.append(
                {
                    "app": i.app,
                    "op": i.op,
                    "entity_id": i.entity_id,
                    "remote_id": i.remote_id,
                    "fields": i.values,
                    "payload": i.payload,
                }
            )
            stats = self.ctx.stats.apps[i.app]
            stats.writes += 1
            if i.op == "create":
                stats.created += 1
            elif i.op == "update":
                stats.updated += 1
            else:
                stats.deleted += 1
