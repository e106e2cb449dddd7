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
import copy
import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
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
    needs_write,
    new_entity_values,
    plan_entity,
    same,
)
from syncd.engine.model import Candidate
from syncd.failures import failure
from syncd.mapping import Mapping as SyncMapping
from syncd.store import AsyncStore, ConflictRow, Intent, StateStore, now_iso

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
    #: Creates refused because the record's natural key was empty.
    refused: int = 0
    #: Records that could not be read or mapped (quarantined as dead letters).
    quarantined: int = 0


@dataclass
class RunStats:
    """Counts of one cycle, overall and per app."""

    run_id: int = 0
    entities_new: int = 0
    conflicts: int = 0
    review: int = 0
    changes: int = 0
    #: Fields parked because two apps kept rewriting each other's form of a value.
    oscillations: int = 0
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
            "refused": self.total("refused"),
            "quarantined": self.total("quarantined"),
            "oscillations": self.oscillations,
            "delete_guard": self.delete_guard,
            "paused": self.paused,
            "failures": self.failures,
            "apps": {name: vars(s) for name, s in sorted(self.apps.items())},
        }


class RefusedValue(ValueError):
    """A value set by hand that the field's transforms and checks do not accept (nothing changed)."""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def _dirty_ids(store: StateStore, sync: str, limit: int, after: int) -> list[int]:
    return store.dirty_ids(sync, limit, after)


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
        self.store = store
        self.mappings = list(mappings)
        self.by_name = {m.name: m for m in self.mappings}
        self.connectors = dict(connectors)
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.allow_mass_delete = allow_mass_delete
        self.dry_run = dry_run
        #: Seconds between id-only listings per app (0 or absent: at every incremental read).
        self.id_scan_interval: dict[str, float] = dict(id_scan_interval or {})
        #: In a dry run: the writes that would have been sent.
        self.planned: list[dict[str, Any]] = []
        self.paused: set[str] = set()
        self.stats = RunStats()
        self.run_id = 0
        #: Called after every committed page / dispatch batch (progress displays, metrics).
        self.on_progress: Callable[[RunStats], None] | None = None
        #: Records to read again so they get linked: (sync, app) -> remote ids (an identity
        #: conflict ended because the other record disappeared).
        self._relink: dict[tuple[str, str], set[str]] = {}

    # -- the cycle -------------------------------------------------------------------------------

    async def run_cycle(self, *, full: bool = False, apps: Iterable[str] | None = None) -> RunStats:
        """Read every app, merge, infer deletes, plan, and dispatch until the outbox is drained."""
        self.stats = RunStats()
        self.run_id = await self.store.call(lambda s: s.begin_run("full" if full else "cycle"))
        self.stats.run_id = self.run_id
        wanted = set(apps) if apps is not None else None
        for mapping in self.mappings:
            for app in mapping.apps:
                if (wanted is None or app in wanted) and app not in self.paused:
                    await self.read_app(mapping, app, full=full, run=self.run_id)
        await self.plan()
        await self.drain()
        self.stats.review = await self.store.call(lambda s: s.count_conflicts("open"))
        self.stats.paused = sorted(self.paused)
        await self.store.call(lambda s: s.finish_run(self.run_id, self.stats.as_dict()))
        return self.stats

    async def read_app(
        self, mapping: SyncMapping, app: str, *, full: bool = False, run: int | None = None
    ) -> bool:
        """Read one app's changes (all records when ``full`` or on first sight). True if complete.

        ``run`` identifies this read (a new one is started when not given): a complete listing
        infers deletes only for links it did not see during *this* read.
        """
        if run is None:
            run = await self.store.call(lambda s: s.begin_run(f"read:{app}"))
        connector = self.connectors[app]
        obj = mapping.object_of(app)
        saved = await self.store.call(lambda s: s.get_cursor(mapping.name, app))
        cursor = None if full else saved
        complete = False
        try:
            async for page in connector.read_changes(obj, cursor):
                await self._ingest_checked(mapping, app, page.records, page.cursor, run)
                complete = page.complete
                self._progress()
            if complete:
                await self.store.call(self._infer_deletes, mapping, app, run, saved)
                await self._recheck_identity(mapping, app)
            elif (
                cursor is not None
                and connector.capabilities.id_listing
                and await self._scan_ids(mapping, app, run)
            ):
                await self._recheck_identity(mapping, app)
            await self._relink_pending(mapping, app)
        except AuthError as exc:
            self._pause(app, exc)
            return False
        except ConnectorError as exc:
            self.stats.apps[app].errors += 1
            self.stats.failures[app] = failure(exc)
            log.warning("read failed; no deletes inferred from this listing", app=app, error=str(exc))
            return False
        return complete

    async def _ingest_checked(
        self,
        mapping: SyncMapping,
        app: str,
        records: Sequence[RemoteRecord],
        cursor: dict[str, Any] | None,
        run: int | None,
    ) -> None:
        """Ingest a page, first asking the app about linked records the page clashes with by key:
        gone ones are replaced by the page's records, existing ones are read as they are now."""
        clashes = await self.store.call(self._identity_clashes, mapping, app, records)
        gone: list[str] = []
        rechecked: list[RemoteRecord] = []
        if clashes:
            try:
                rechecked = await self.connectors[app].get(mapping.object_of(app), clashes)
            except TransientError as exc:
                log.warning(
                    "could not check records sharing a key; treated as present", app=app, error=str(exc)
                )
                rechecked = []
            else:
                found = {r.id for r in rechecked} | {old for r in rechecked for old in r.replaces}
                gone = [rid for rid in clashes if rid not in found]
        await self.store.call(self._ingest_page, mapping, app, records, cursor, run, gone, rechecked)

    async def _recheck_identity(self, mapping: SyncMapping, app: str) -> None:
        """Ask the app about the records open identity conflicts name: a record that went without
        a trace (a hard delete, or the unlinked twin) ends its conflict."""
        conflicts = await self.store.call(
            lambda store: store.conflicts(status="open", sync=mapping.name, kind="identity")
        )
        ids = sorted({str(c["value"]) for x in conflicts for c in x["candidates"] if c.get("app") == app})
        if not ids:
            return
        found = await self.connectors[app].get(mapping.object_of(app), ids)
        present = {r.id for r in found} | {old for r in found for old in r.replaces}
        gone = [i for i in ids if i not in present]
        if gone:

            def close(store: StateStore) -> None:
                with store.transaction():
                    self._close_identity(store, mapping, app, gone)

            await self.store.call(close)

    async def _scan_ids(self, mapping: SyncMapping, app: str, run: int) -> bool:
        """Between full listings, a cheap id-only listing finds records deleted without a trace
        (hard deletes in a table without ``deleted_at``), at most once per ``id_scan_interval``."""
        interval = self.id_scan_interval.get(app, 0.0)
        marker = f"{app}#ids"
        last = await self.store.call(lambda s: s.get_cursor(mapping.name, marker))
        now = datetime.now(UTC).timestamp()
        if last is not None and interval > 0 and now - float(last.get("at", 0)) < interval:
            return False
        ids = await self.connectors[app].list_ids(mapping.object_of(app))
        await self.store.call(self._mark_listed, mapping, app, ids, run)
        await self.store.call(self._infer_deletes, mapping, app, run, None)
        await self.store.call(lambda s: s.set_cursor(mapping.name, marker, {"at": now}))
        return True

    @staticmethod
    def _mark_listed(store: StateStore, mapping: SyncMapping, app: str, ids: Sequence[str], run: int) -> None:
        with store.transaction():
            store.mark_seen(mapping.name, app, ids, run)

    async def _relink_pending(self, mapping: SyncMapping, app: str) -> None:
        """Read again the records left standing when an identity conflict ended, so they link."""
        ids = sorted(self._relink.pop((mapping.name, app), set()))
        if ids:
            await self.refetch(mapping, app, ids)

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
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        records: Sequence[RemoteRecord],
        cursor: dict[str, Any] | None,
        run: int | None = None,
        gone: Sequence[str] = (),
        rechecked: Sequence[RemoteRecord] = (),
    ) -> None:
        """Merge one page in one transaction (with its cursor).

        ``gone`` are records of ``app`` that the page's records would have clashed with by key and
        that the app no longer has (checked just before); ``rechecked`` are such records the app
        still has, as they are now. Both are applied before the page itself.
        """
        with store.transaction():
            if gone:
                self._drop_replaced(store, mapping, app, gone)
            if rechecked:
                self._ingest(store, mapping, app, rechecked, run)
                self.stats.apps[app].read -= len(rechecked)  # a look, not part of the listing
            self._ingest(store, mapping, app, records, run)
            if cursor is not None:
                store.set_cursor(mapping.name, app, cursor)

    def _readable(
        self, store: StateStore, mapping: SyncMapping, app: str, records: Sequence[RemoteRecord]
    ) -> tuple[dict[str, dict[str, Any]], list[RemoteRecord]]:
        """Map each record to canonical values; a record that cannot be read, mapped or stored is
        quarantined (a dead letter naming the app, the id and why, never the values) and the rest
        of the page goes on. Returns the observed values and the records that go on."""
        observed: dict[str, dict[str, Any]] = {}
        keep: list[RemoteRecord] = []
        bad: list[tuple[str, str]] = []
        for record in records:
            if record.error is not None:
                bad.append((record.id, record.error))
                continue
            if not record.deleted:
                try:
                    values = mapping.to_canonical(app, record.fields)
                    orjson.dumps(values)
                    orjson.dumps([record.id, record.version])
                except orjson.JSONEncodeError:
                    bad.append((record.id, "a value is not valid Unicode text (e.g. a lone surrogate)"))
                    continue
                except Exception as exc:  # quarantined with the kind of error, not the value
                    bad.append((record.id, f"its fields could not be mapped ({type(exc).__name__})"))
                    continue
                observed[record.id] = values
            keep.append(record)
        sync = mapping.name
        if bad:
            obj = mapping.object_of(app)
            linked = store.links_by_remote(sync, app, [rid for rid, _ in bad])
            items = [
                (rid, linked[rid].entity_id if rid in linked else 0, f"{app} record {rid}: {why}")
                for rid, why in bad
            ]
            new = store.quarantine_reads(sync, app, obj, items)
            self.stats.apps[app].quarantined += new
            for rid, why in bad:
                log.error("record quarantined: it cannot be read", app=app, record=rid, reason=why)
        if keep and store.has_quarantined_reads(sync, app):
            store.release_quarantine(sync, app, [r.id for r in keep])
        return observed, keep

    async def quarantine_events(self, app: str, rows: Sequence[Mapping[str, Any]], error: str) -> None:
        """Webhook events whose re-read kept failing: quarantine their records (dead letters
        with op ``read``: ``syncd deadletters replay`` reads them again)."""

        def write(store: StateStore) -> None:
            with store.transaction():
                for mapping in self.mappings:
                    if app not in mapping.apps:
                        continue
                    obj = mapping.object_of(app)
                    ids = sorted({str(r["record_id"]) for r in rows if r["object"] == obj})
                    linked = store.links_by_remote(mapping.name, app, ids)
                    self.stats.apps[app].quarantined += store.quarantine_reads(
                        mapping.name,
                        app,
                        obj,
                        [
                            (
                                rid,
                                linked[rid].entity_id if rid in linked else 0,
                                f"{app} record {rid}: {error}",
                            )
                            for rid in ids
                        ],
                    )

        await self.store.call(write)

    def _identity_clashes(
        self, store: StateStore, mapping: SyncMapping, app: str, records: Sequence[RemoteRecord]
    ) -> list[str]:
        """Linked records of ``app`` that unlinked ``records`` share a natural key with.

        Before two records with one key are called an identity conflict, the runner asks the app
        whether the linked one still exists: a record deleted and re-created with the same key
        (a new id) must be relinked, not halted.
        """
        sync = mapping.name
        fresh = [r for r in records if not r.deleted]
        if not fresh:
            return []
        links = store.links_by_remote(sync, app, [r.id for r in fresh])
        keys: dict[str, str] = {}
        for record in fresh:
            if record.id in links:
                continue
            key = mapping.key_of(mapping.to_canonical(app, record.fields))
            if key:
                keys[record.id] = key
        if not keys:
            return []
        by_key = store.entities_by_key(sync, set(keys.values()))
        if not by_key:
            return []
        held = store.app_links([e.id for e in by_key.values()], app)
        replaced = {old for r in fresh for old in r.replaces}
        out = set()
        for rid, key in keys.items():
            entity = by_key.get(key)
            link = held.get(entity.id) if entity is not None else None
            if link is not None and link.remote_id != rid and link.remote_id not in replaced:
                out.add(link.remote_id)
        return sorted(out)

    def _drop_replaced(self, store: StateStore, mapping: SyncMapping, app: str, gone: Sequence[str]) -> None:
        """Links to records the app no longer has, whose key a new record of the app now carries:
        the entity is relinked to the new record (no delete policy applies: the person is there)."""
        links = store.links_by_remote(mapping.name, app, gone)
        changes = [
            Change(
                link.entity_id,
                "*",
                link.remote_id,
                None,
                app,
                f"{app} record {link.remote_id} no longer exists and a new {app} record has its key: relinking",
            )
            for link in links.values()
        ]
        store.drop_links(link.id for link in links.values() if link.id is not None)
        self._close_identity(store, mapping, app, links)
        self.stats.changes += store.log_changes(mapping.name, changes, store.latest_run())

    def _close_identity(self, store: StateStore, mapping: SyncMapping, app: str, gone: Iterable[str]) -> None:
        """Open identity conflicts of ``app`` naming a record that is gone are over: close them,
        unhalt their entities, and have the record left standing read again so it gets linked."""
        gone = set(gone)
        if not gone:
            return
        for conflict in store.conflicts(status="open", sync=mapping.name, kind="identity"):
            sides = [c for c in conflict["candidates"] if c.get("app") == app]
            ids = {str(c.get("value")) for c in sides}
            if not ids & gone:
                continue
            store.close_conflict(
                conflict["id"],
                None,
                {"note": f"{app} record {', '.join(sorted(ids & gone))} no longer exists"},
            )
            store.mark_dirty([conflict["entity_id"]])
            self._relink.setdefault((mapping.name, app), set()).update(ids - gone)
            self.stats.changes += store.log_changes(
                mapping.name,
                [
                    Change(
                        conflict["entity_id"],
                        IDENTITY,
                        sorted(ids),
                        sorted(ids - gone),
                        app,
                        f"identity conflict {conflict['id']} closed: a record it named no longer exists",
                    )
                ],
                store.latest_run(),
            )

    def _follow_replacements(
        self, store: StateStore, mapping: SyncMapping, app: str, records: Sequence[RemoteRecord]
    ) -> None:
        """Move links from the ids records replaced (app-side merges, ids derived from a changed
        key) to the records themselves. An entity whose record was merged into a record another
        entity is linked to loses its link there: nothing is deleted and nothing is re-created."""
        sync = mapping.name
        pairs: list[tuple[str, str]] = [
            (old, r.id) for r in records if not r.deleted for old in r.replaces if old != r.id
        ]
        aliased: dict[str, str] = {r.alias: r.id for r in records if not r.deleted and r.alias}
        if aliased:
            # A record whose id changed without anyone saying so (no webhook): its stable alias
            # is already linked under the old id.
            for alias, link in store.links_by_alias(sync, app, aliased).items():
                if link.remote_id != aliased[alias]:
                    pairs.append((link.remote_id, aliased[alias]))
        if not pairs:
            return
        old_links = store.links_by_remote(sync, app, [old for old, _ in pairs])
        if not old_links:
            return
        holders = store.links_by_remote(sync, app, [new for _, new in pairs])
        entities = store.entities(link.entity_id for link in old_links.values())
        changes: list[Change] = []
        moved: list[Link] = []
        dropped: list[Link] = []
        for old, new in pairs:
            found = old_links.pop(old, None)
            if found is None:
                continue
            link = found
            holder = holders.get(new)
            if holder is None:
                link.remote_id = new
                holders[new] = link
                moved.append(link)
                changes.append(
                    Change(link.entity_id, "*", old, new, app, f"{app} record {old} is now {new}: link moved")
                )
            elif holder.entity_id != link.entity_id:
                entity = entities[link.entity_id]
                entity.excluded = sorted({*entity.excluded, app})
                dropped.append(link)
                changes.append(
                    Change(
                        link.entity_id,
                        "*",
                        old,
                        new,
                        app,
                        f"{app} merged record {old} into {new}, which another entity is linked to: "
                        f"unlinked from {app}; nothing deleted, nothing re-created",
                    )
                )
        store.drop_links(link.id for link in dropped if link.id is not None)
        store.save_links(sync, moved)
        store.save_entities(entities.values())
        self._close_identity(store, mapping, app, [old for old, _ in pairs])
        self.stats.changes += store.log_changes(sync, changes, store.latest_run())

    def _ingest(
        self,
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        records: Sequence[RemoteRecord],
        run: int | None = None,
    ) -> None:
        """Merge a batch of remote records from ``app`` (already in a transaction)."""
        sync = mapping.name
        stats = self.stats.apps[app]
        stats.read += len(records)
        observed, records = self._readable(store, mapping, app, records)
        self._follow_replacements(store, mapping, app, records)
        links = store.links_by_remote(sync, app, [r.id for r in records])
        keys = {rid: mapping.key_of(obs) for rid, obs in observed.items() if rid not in links}
        if keys and store.has_suppressions():
            # People erased on request: a record an app still holds never brings them back.
            hashes = {rid: store.hash_key(k) for rid, k in keys.items() if k}
            gone = store.suppressed(hashes.values())
            if gone:
                skip = {rid for rid, h in hashes.items() if h in gone}
                records = [r for r in records if r.id not in skip]
                keys = {rid: k for rid, k in keys.items() if rid not in skip}
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
        unlinked_gone: list[str] = []

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
                else:
                    unlinked_gone.append(record.id)
                continue
            obs = observed[record.id]
            if link is not None:
                seen.append(record.id)
                entity = entities[link.entity_id]
                held = parked.get(entity.id, set())
                outcome = merge_record(mapping, entity, link, obs, at, parked=held, run=run)
                link.version, link.remote_updated_at = record.version, at
                link.alias = record.alias or link.alias
                for name, value in outcome.parked_updates.items():
                    store.update_parked(entity.id, name, app, value, at)
                changes += outcome.changes
                conflicts += outcome.conflicts
                self.stats.oscillations += len(outcome.oscillations)
                if outcome.changed and entity.state != "active":
                    # An edit beats a delete: edited here after it was deleted elsewhere, the
                    # entity comes back, and the apps it was deleted from get it again.
                    entity.state = "active"
                    changes.append(
                        Change(
                            entity.id,
                            "*",
                            None,
                            entity.key,
                            app,
                            f"edited in {app} after a delete: the edit wins",
                        )
                    )
                if outcome.changed:
                    self._rekey(store, mapping, entity, changes)
                    touched[entity.id] = entity
                    dirty.add(entity.id)
                if entity.state == "active" and not mapping.in_scope(app, entity.values):
                    # Scope is decided on the canonical values, here and in the plan alike.
                    changes.append(
                        Change(entity.id, "*", None, None, app, f"left the scope of {app}: unlinked")
                    )
                    drop.append(link)
                    all_links.get(entity.id, {}).pop(app, None)
                    touched[entity.id] = entity
                    continue
                save_links[id(link)] = link
                if entity.id not in dirty and needs_write(mapping, entity, link, held):
                    # The app holds something other than the canonical value (it lost a conflict,
                    # or it was never written): plan the write that brings it in line.
                    dirty.add(entity.id)
                continue
            # A record we have no link for: match it by natural key, or start a new entity.
            key = keys.get(record.id)
            entity_or_none = by_key.get(key) if key else None
            if entity_or_none is None and not mapping.in_scope(app, obs):
                continue
            if entity_or_none is not None:
                entity = entity_or_none
                existing = all_links.get(entity.id, {}).get(app)
                if existing is not None and existing.remote_id != record.id:
                    if IDENTITY in parked.get(entity.id, set()):
                        # Already halted for review: name this record too if it is a new one.
                        if store.add_conflict_candidate(entity.id, IDENTITY, app, record.id):
                            changes.append(
                                Change(
                                    entity.id,
                                    IDENTITY,
                                    existing.remote_id,
                                    record.id,
                                    app,
                                    f"one more {app} record shares the key {key!r}: sync of this key stays halted",
                                )
                            )
                        continue
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
                held = parked.get(entity.id, set())
                if entity.state == "deleted":
                    # Re-created after a delete: the deleted record's values are over.
                    if not mapping.in_scope(app, obs):
                        continue
                    entity.values, entity.provenance = {}, {}
                    entity.state, entity.excluded = "active", []
                    changes.append(
                        Change(
                            entity.id,
                            "*",
                            None,
                            key,
                            app,
                            f"re-created in {app} after a delete: starts from the new record",
                        )
                    )
                    changes += new_entity_values(mapping, entity, app, obs, at, run)
                    link = Link(
                        None, entity.id, app, record.id, dict(obs), record.version, at, alias=record.alias
                    )
                else:
                    if not self._in_scope_after(mapping, entity, app, record.id, obs, at, held, run):
                        continue
                    if entity.state != "active":
                        entity.state = "active"
                        changes.append(
                            Change(entity.id, "*", None, key, app, f"restored: {app} has the key again")
                        )
                    entity.excluded = [a for a in entity.excluded if a != app]
                    link = Link(
                        None,
                        entity.id,
                        app,
                        record.id,
                        version=record.version,
                        remote_updated_at=at,
                        alias=record.alias,
                    )
                    outcome = merge_record(mapping, entity, link, obs, at, parked=held, run=run)
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
                link = Link(
                    None, entity.id, app, record.id, dict(obs), record.version, at, alias=record.alias
                )
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
        self._close_identity(store, mapping, app, [*unlinked_gone, *(link.remote_id for link in drop)])

    @staticmethod
    def _in_scope_after(
        mapping: SyncMapping,
        entity: Entity,
        app: str,
        remote_id: str,
        observed: Mapping[str, Any],
        at: str | None,
        parked: set[str],
        run: int | None,
    ) -> bool:
        """Whether ``entity`` would be in ``app``'s scope once this record of the app is merged.

        Decided on the canonical values the merge would give, exactly as for a linked record, so a
        record matched by key is never linked only to be unlinked at its next read.
        """
        if not mapping.has_filters(app):
            return True
        probe = copy.deepcopy(entity)
        merge_record(
            mapping, probe, Link(None, entity.id, app, remote_id), observed, at, parked=parked, run=run
        )
        return mapping.in_scope(app, probe.values)

    def _rekey(self, store: StateStore, mapping: SyncMapping, entity: Entity, changes: list[Change]) -> None:
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
        policy = mapping.delete_policy
        if policy == "ignore" and entity.state == "active":
            # "Changes nothing": the link stays, nothing is deleted and nothing is re-created.
            drop.pop()
            all_links.setdefault(entity.id, {})[app] = link
            changes.append(
                Change(entity.id, "*", None, None, app, f"{reason}: ignored (delete policy), link kept")
            )
            return
        if entity.state != "active":
            changes.append(Change(entity.id, "*", None, None, app, f"{reason}: link dropped"))
            return
        if needs_write(mapping, entity, link):
            changes.append(
                Change(entity.id, "*", None, None, app, f"{reason}, but edited elsewhere: the edit wins")
            )
            dirty.add(entity.id)
            return
        if policy == "propagate":
            entity.state = "deleted"
            changes.append(
                Change(entity.id, "*", entity.key, None, app, f"{reason}: deleting in the other apps")
            )
            dirty.add(entity.id)
        elif policy == "archive":
            entity.state = "archived"
            changes.append(
                Change(
                    entity.id,
                    "*",
                    entity.key,
                    None,
                    app,
                    f"{reason}: archiving in the other apps that archive (the rest are kept)",
                )
            )
            dirty.add(entity.id)
        else:
            entity.excluded = sorted({*entity.excluded, app})
            changes.append(Change(entity.id, "*", None, None, app, f"{reason}: unlinked, others kept"))

    def _infer_deletes(
        self,
        store: StateStore,
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
        if mapping.delete_policy == "ignore":
            return  # the policy says a delete changes nothing
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
                self._close_identity(store, mapping, app, [link.remote_id for link in drop])

    # -- records pushed by webhooks or re-reads ----------------------------------------------------

    async def ingest(self, mapping: SyncMapping, app: str, records: Sequence[RemoteRecord]) -> None:
        """Merge records fetched outside a listing (webhook hints, pre-write re-reads)."""
        run = await self.store.call(lambda s: s.latest_run())
        await self._ingest_checked(mapping, app, records, None, run)

    async def refetch(
        self,
        mapping: SyncMapping,
        app: str,
        ids: Sequence[str],
        replaces: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Re-read records by id; ones that are gone count as deleted (positive evidence).

        ``replaces`` adds, per id, the ids that record took over (from a webhook that said so). A
        record read under another id than asked for (an app answering for a merged-away id with
        the survivor) took over the id asked for.
        """
        connector = self.connectors[app]
        records = await connector.get(mapping.object_of(app), ids)
        extra = {rid: set(olds) for rid, olds in (replaces or {}).items()}
        found = {r.id for r in records} | {old for r in records for old in r.replaces}
        out: list[RemoteRecord] = []
        for record in records:
            olds = extra.get(record.id, set())
            if olds - set(record.replaces):
                record = dataclasses.replace(record, replaces=tuple(sorted({*record.replaces, *olds})))
            out.append(record)
        gone = [RemoteRecord(id=i, fields={}, deleted=True) for i in ids if i not in found]
        await self.ingest(mapping, app, [*out, *gone])
        await self._relink_pending(mapping, app)

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
            replaces: dict[str, set[str]] = {}
            for hint in hints:
                if hint.object == obj and hint.replaces:
                    replaces.setdefault(hint.record_id, set()).update(hint.replaces)
            for start in range(0, len(ids), 100):
                chunk = ids[start : start + 100]
                await self.refetch(
                    mapping, app, chunk, {i: sorted(replaces[i]) for i in chunk if i in replaces}
                )
        await self.plan()

    # -- plan --------------------------------------------------------------------------------------

    async def plan(self) -> int:
        """Turn every dirty entity into outbox intents; returns how many were queued."""
        total = 0
        for mapping in self.mappings:
            after = 0
            while True:
                ids = await self.store.call(_dirty_ids, mapping.name, self.batch_size, after)
                if not ids:
                    break
                total += await self.store.call(self._plan_batch, mapping, ids)
                after = ids[-1]
        return total

    def _plan_batch(self, store: StateStore, mapping: SyncMapping, ids: Sequence[int]) -> int:
        with store.transaction():
            entities = store.entities(ids)
            links = store.links_of(ids)
            parked = store.parked_fields(ids)
            busy = store.busy_apps(ids)
            creatable = [a for a in mapping.apps if self.connectors[a].capabilities.create]
            archiving = [a for a in mapping.apps if self.connectors[a].capabilities.archives]
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
                                Change(eid, "*", None, None, app, f"left the scope of {app}: unlinked")
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
                    self.stats.apps[app].refused += 1
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
            store.mark_dirty(settled, False)
            store.drop_links(drop)
            self.stats.changes += store.log_changes(mapping.name, changes, self.run_id or None)
            return n

    # -- dispatch ----------------------------------------------------------------------------------

    async def drain(self, *, max_wait: float = 300.0) -> None:
        """Dispatch until the outbox is empty (waiting for retry back-offs up to ``max_wait``)."""
        deadline = asyncio.get_running_loop().time() + max_wait
        while True:
            progressed = False
            for app in await self.store.call(lambda s: s.pending_apps()):
                if app in self.paused or app not in self.connectors:
                    continue
                progressed |= await self.dispatch_app(app)
            # Writes can make entities dirty again (adopted records, refused conditional writes).
            if await self.plan():
                progressed = True
            if progressed:
                continue
            due = await self.store.call(lambda s: s.next_due())
            pending = [a for a in await self.store.call(lambda s: s.pending_apps()) if a not in self.paused]
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
            intents = await self.store.call(lambda s: s.claim(app, None, size))
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
                    elif op == "delete":
                        await self._send_deletes(mapping, app, group)
                    else:
                        await self._send_reads(mapping, app, group)
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

    def _release(self, store: StateStore, intents: Sequence[Intent]) -> None:
        with store.transaction():
            for intent in intents:
                current = store.intent(intent.id)
                if current is not None and current.status == "inflight":
                    store.settle(intent.id, "pending")

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
                store.settle(intent.id, status, error, "permanent" if status == "dead" else None)

    def _backoff_all(self, store: StateStore, intents: Sequence[Intent], error: str) -> None:
        with store.transaction():
            for intent in intents:
                current = store.intent(intent.id)
                if current is not None and current.status == "inflight":
                    self._backoff(store, intent, error)

    def _backoff(self, store: StateStore, intent: Intent, error: str) -> None:
        self.stats.apps[intent.app].errors += 1
        if intent.attempts >= self.max_attempts:
            store.settle(intent.id, "dead", f"gave up after {intent.attempts} attempts: {error}", "transient")
            self._log_rejection(store, intent, f"gave up after {intent.attempts} attempts: {error}")
            return
        delay = self.retry_base * (2 ** (intent.attempts - 1))
        not_before = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat()
        store.retry_later(intent.id, error, not_before)

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
                )
            ],
            self.run_id,
        )

    def _failed(self, store: StateStore, intent: Intent, error: ConnectorError) -> None:
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
        self, store: StateStore, mapping: SyncMapping, app: str, intents: list[Intent]
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
        self, store: StateStore, mapping: SyncMapping, app: str, pairs: list[tuple[Intent, RemoteRecord]]
    ) -> None:
        with store.transaction():
            taken = store.links_by_remote(mapping.name, app, [r.id for _, r in pairs])
            fresh = []
            for intent, record in pairs:
                if record.id in taken and taken[record.id].entity_id == intent.entity_id:
                    # Linked to this very entity already (a crash between create and commit, then a
                    # read that linked it): the create is done, nothing to report.
                    store.settle(intent.id, "done")
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
                store.settle(intent.id, "done")
                self.stats.apps[app].linked += 1
            self._ingest(store, mapping, app, fresh, store.latest_run())

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
            held = store.links_of(entities)
            for intent, result in zip(intents, results, strict=True):
                if result.error is not None or result.record is None:
                    self._failed(store, intent, result.error or PermanentError("create returned no record"))
                    continue
                entity = entities[intent.entity_id]
                record = result.record
                existing = held.get(entity.id, {}).get(app)
                if existing is not None and existing.remote_id != record.id:
                    # A read linked a record of this app with the key while our create was in
                    # flight (someone made it meanwhile): two records share the key now. Halt the
                    # key for a person, as any identity conflict, rather than lose track of one.
                    store.settle(intent.id, "done")
                    self.stats.apps[app].created += 1
                    self.stats.apps[app].writes += 1
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
                    _iso(record.updated_at),
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
                    run=self.run_id,
                )
                changes.append(Change(entity.id, "*", None, record.id, app, f"created in {app}"))
                changes += outcome.changes
                conflicts += outcome.conflicts
                self.stats.oscillations += len(outcome.oscillations)
                if outcome.changed:
                    store.mark_dirty([entity.id])
                new_links.append(link)
                store.settle(intent.id, "done")
                self.stats.apps[app].created += 1
                self.stats.apps[app].writes += 1
            store.save_links(mapping.name, new_links, high_run)
            store.save_entities(entities.values())
            store.add_conflicts(mapping.name, conflicts)
            self.stats.conflicts += len(conflicts)
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
                    store.settle(intent.id, "superseded")
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
                        )
                    )
                    link.remote_id = record.id
                baseline_after_write(mapping, link, intent.values, intent.payload, record.fields)
                link.version, link.remote_updated_at = record.version, _iso(record.updated_at)
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
                    run=self.run_id,
                )
                changes += outcome.changes
                conflicts += outcome.conflicts
                self.stats.oscillations += len(outcome.oscillations)
                if outcome.changed:
                    dirty.append(entity.id)
                links.append(link)
            store.save_links(mapping.name, links)
            store.save_entities(entities[eid] for eid in dirty)
            store.mark_dirty(dirty)
            store.add_conflicts(mapping.name, conflicts)
            self.stats.conflicts += len(conflicts)
            self.stats.changes += store.log_changes(mapping.name, changes, self.run_id)
        return refetch

    async def _send_deletes(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        connector = self.connectors[app]
        intents = await self.store.call(self._still_needed_deletes, intents)
        if not intents:
            return
        conditional = connector.capabilities.conditional_writes
        if not conditional and not self.dry_run:
            # An edit beats a delete: re-read first, and keep a record changed since we read it.
            ready = await self.store.call(self._current_deletes, app, intents)
            fresh = await connector.get(mapping.object_of(app), [link.remote_id for _, link in ready])
            kept = await self.store.call(self._unchanged_since_read, mapping, app, ready, fresh)
            intents = [i for i, _ in kept]
            if not intents:
                return
        if self.dry_run:
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
        refetch = await self.store.call(self._after_deletes, mapping, app, intents, results)
        if refetch:
            await self.refetch(mapping, app, refetch)

    @staticmethod
    def _current_deletes(store: StateStore, app: str, intents: list[Intent]) -> list[tuple[Intent, Link]]:
        """Deletes paired with the link they act on (a delete whose link is gone is done)."""
        with store.transaction():
            links = store.links_of(i.entity_id for i in intents)
            out = []
            for intent in intents:
                link = links.get(intent.entity_id, {}).get(app)
                if link is None or link.remote_id != intent.remote_id:
                    store.settle(intent.id, "superseded")
                    continue
                out.append((intent, link))
            return out

    async def _send_reads(self, mapping: SyncMapping, app: str, intents: list[Intent]) -> None:
        """A replayed quarantined read: read the records again (quarantined again if still bad)."""
        ids = sorted({i.remote_id for i in intents if i.remote_id})
        await self.store.call(self._settle_all, intents, "done", None)
        if ids and not self.dry_run:
            await self.refetch(mapping, app, ids)

    @staticmethod
    def _still_needed_deletes(store: StateStore, intents: list[Intent]) -> list[Intent]:
        """Deletes of entities that came back (re-created, restored) meanwhile are not sent."""
        with store.transaction():
            entities = store.entities(i.entity_id for i in intents)
            out = []
            for intent in intents:
                entity = entities.get(intent.entity_id)
                if entity is not None and entity.state == "active":
                    store.settle(intent.id, "superseded")
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
                    store.settle(intent.id, "superseded", str(result.error), "precondition")
                    if intent.remote_id:
                        refetch.append(intent.remote_id)
                    continue
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
        return refetch

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
        self, conflict_id: int, *, take: str | None = None, value: Any = None, allow_empty: bool = False
    ) -> ConflictRow:
        """Settle a conflict with one side's value, or with ``value`` — which goes through the
        field's transforms and validation like a value read from an app (ValueError if invalid,
        or empty without ``allow_empty``)."""
        if take is None:
            value = await self.store.call(self._admin_value, conflict_id, value, allow_empty)
        return await self.store.call(self._resolve, conflict_id, take, value)

    def _admin_value(self, store: StateStore, conflict_id: int, value: Any, allow_empty: bool) -> Any:
        conflict = store.conflict(conflict_id)
        if conflict is None:
            raise LookupError(f"no conflict {conflict_id}")
        mapping = self.by_name.get(conflict["sync"])
        name = conflict["field"]
        if mapping is None or name not in mapping.fields:
            return value
        try:
            normalised = mapping.admin_value(name, value)
        except ValueError as exc:
            raise RefusedValue(f"conflict {conflict_id}: {exc}; nothing was changed") from None
        if normalised is None and not allow_empty:
            raise RefusedValue(
                f"conflict {conflict_id}: an empty value would clear {name!r} in every app; "
                'give --allow-empty (admin API: "allow_empty": true) if that is what you want'
            )
        return normalised

    def _resolve(self, store: StateStore, conflict_id: int, take: str | None, value: Any) -> ConflictRow:
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
