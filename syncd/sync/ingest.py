"""Ingest: read apps' records, match them to entities, merge them in, and infer deletes.

Each page is merged in one store transaction together with its cursor. The decisions (what a
record maps to, which records clash by key, the delete policy, scope, the mass-delete guard) are
the engine's (``syncd.engine``); this module loads what they need and records what they decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from syncd.connector import AuthError, ConnectorError, RemoteRecord, TransientError
from syncd.engine import (
    IDENTITY,
    Change,
    Conflict,
    Entity,
    Link,
    baseline_after_write,
    canonical_values,
    clashing_records,
    in_scope_after,
    mass_delete_stop,
    merge_record,
    needs_write,
    new_entity_values,
    new_key,
    same,
    tombstone,
)
from syncd.engine.model import Candidate, ReasonCode
from syncd.failures import failure
from syncd.mapping import Mapping as SyncMapping
from syncd.store import StateStore

from .context import SyncContext, iso

log = structlog.get_logger("syncd.runner")

#: How many of the records a held delete lacks are kept as its evidence (all are remembered).
HOLD_SAMPLE = 20


class Ingester:
    """Reads apps and merges what they hold into the state (the first half of a cycle)."""

    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        #: Records to read again so they get linked: (sync, app) -> remote ids (an identity
        #: conflict ended because the other record disappeared).
        self._relink: dict[tuple[str, str], set[str]] = {}
        #: Records read again by id because a copy of them was stale (app, remote id): merged as
        #: read whatever their stamp, so an app whose clock went back loses no edit.
        self._trusted: set[tuple[str, str]] = set()

    async def read_app(
        self, mapping: SyncMapping, app: str, *, full: bool = False, run: int | None = None
    ) -> bool:
        """Read one app's changes (all records when ``full`` or on first sight). True if complete.

        ``run`` identifies this read (a new one is started when not given): a complete listing
        infers deletes only for links it did not see during *this* read.
        """
        if run is None:
            run = await self.ctx.store.call(lambda s: s.begin_run(f"read:{app}"))
        connector = self.ctx.connectors[app]
        obj = mapping.object_of(app)
        saved = await self.ctx.store.call(lambda s: s.get_cursor(mapping.name, app))
        cursor = None if full else saved
        complete = False
        stats = self.ctx.stats
        before = stats.apps[app].read
        quarantined = self.ctx.stats.apps[app].quarantined
        try:
            async for page in connector.read_changes(obj, cursor):
                if page.total is not None:
                    stats.read_totals[app] = before + page.total
                await self._ingest_checked(mapping, app, page.records, page.cursor, run)
                complete = page.complete
                self.ctx.progress()
            if complete:
                # For syncd status: this read ended well, with a complete listing.
                await self._record(app, ok=True, complete_run=run)
                await self.ctx.store.call(self._infer_deletes, mapping, app, run, saved)
                await self._recheck_identity(mapping, app)
                if (
                    run == self.ctx.run_id
                    and self.ctx.stats.apps[app].quarantined == quarantined
                    # A record out of the app's scope is not linked by a listing: a create for
                    # its key may still find it (a scope that flips), so lookups stay on.
                    and not mapping.has_filters(app)
                ):
                    self.ctx.listed.add((mapping.name, app))
            elif (
                cursor is not None
                and connector.capabilities.id_listing
                and await self._scan_ids(mapping, app, run)
            ):
                await self._recheck_identity(mapping, app)
            await self._relink_pending(mapping, app)
        except AuthError as exc:
            self.ctx.pause(app, exc)
            await self._record(app, ok=False, failure=failure(exc), paused="credentials rejected")
            return False
        except ConnectorError as exc:
            self.ctx.stats.apps[app].errors += 1
            self.ctx.stats.failures[app] = failure(exc)
            log.warning("read failed; no deletes inferred from this listing", app=app, error=str(exc))
            await self._record(app, ok=False, failure=failure(exc))
            return False
        if not complete:
            await self._record(app, ok=True)
        return complete

    async def _record(
        self,
        app: str,
        *,
        ok: bool,
        failure: dict[str, str] | None = None,
        paused: str | None = None,
        complete_run: int | None = None,
    ) -> None:
        """Keep how this read of ``app`` ended in the state, for ``syncd status``."""

        def unit(store: StateStore) -> None:
            store.record_read(app, ok=ok, failure=failure, paused=paused, complete_run=complete_run)

        await self.ctx.store.call(unit)

    async def catch_up(self, mapping: SyncMapping, app: str) -> int:
        """After this cycle wrote to ``app``: move its cursor past the records that are exactly
        what syncd recorded (each linked, not deleted, at its link's version), so the next cycle
        does not re-read its own writes. Stops at the first page holding anything else (someone
        else's change, a tombstone, a record syncd does not know): that page and all after it
        are read, as usual, by the next cycle. Returns how many records it stepped past."""
        connector = self.ctx.connectors[app]
        obj = mapping.object_of(app)
        saved = await self.ctx.store.call(lambda s: s.get_cursor(mapping.name, app))
        if saved is None or not connector.capabilities.incremental:
            return 0
        passed = 0
        try:
            async for page in connector.read_changes(obj, saved):
                if not page.records or page.complete or page.cursor == saved:
                    # Nothing to step past, or a listing that starts over (a cursor that does
                    # not move, a complete listing): the next cycle reads it anyway.
                    break
                if not await self.ctx.store.call(
                    self._advance_if_ours, mapping, app, page.records, page.cursor
                ):
                    break
                passed += len(page.records)
        except ConnectorError as exc:
            # Nothing is lost: the cursor stays where the cycle's reads left it.
            log.info(
                "catch-up read after writes failed; the next cycle reads from the cursor",
                app=app,
                error=str(exc),
            )
        return passed

    @staticmethod
    def _advance_if_ours(
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        records: Sequence[RemoteRecord],
        cursor: dict[str, Any] | None,
    ) -> bool:
        with store.transaction():
            links = store.links_by_remote(mapping.name, app, [r.id for r in records])
            for record in records:
                link = links.get(record.id)
                if (
                    record.deleted
                    or record.error is not None
                    or record.version is None
                    or link is None
                    or link.version != record.version
                    or not _holds_baseline(mapping, app, record, link)
                ):
                    return False
            if cursor is None:
                return False
            store.set_cursor(mapping.name, app, cursor)
            return True

    async def skip_own_writes(self, mapping: SyncMapping, app: str) -> bool:
        """Let ``app``'s connector move its saved cursor past the writes this cycle made there.

        Runs after the outbox is drained: every write that succeeded has its baseline committed,
        so reading it back could only find an echo. The cursor moves only if it is still the one
        the connector was shown (compare and set in one unit of work). True if it moved.
        """
        if self.ctx.dry_run:
            return False
        saved = await self.ctx.store.call(lambda s: s.get_cursor(mapping.name, app))
        if saved is None:
            return False
        try:
            moved = await self.ctx.connectors[app].cursor_after_writes(mapping.object_of(app), saved)
        except ConnectorError as exc:
            log.info("cursor kept: could not check the app's changes", app=app, error=str(exc))
            return False
        if moved is None or moved == saved:
            return False

        def swap(store: StateStore) -> bool:
            if store.get_cursor(mapping.name, app) != saved:
                return False
            store.set_cursor(mapping.name, app, moved)
            return True

        return bool(await self.ctx.store.call(swap))

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
        clashes, canonical = await self.ctx.store.call(self._identity_clashes, mapping, app, records)
        gone: list[str] = []
        rechecked: list[RemoteRecord] = []
        if clashes:
            try:
                rechecked = await self.ctx.connectors[app].get(mapping.object_of(app), clashes)
            except TransientError as exc:
                log.warning(
                    "could not check records sharing a key; treated as present", app=app, error=str(exc)
                )
                rechecked = []
            else:
                found = {r.id for r in rechecked} | {old for r in rechecked for old in r.replaces}
                gone = [rid for rid in clashes if rid not in found]
        await self.ctx.store.call(
            self._ingest_page, mapping, app, records, cursor, run, gone, rechecked, canonical
        )

    async def _recheck_identity(self, mapping: SyncMapping, app: str) -> None:
        """Ask the app about the records open identity conflicts name: a record that went without
        a trace (a hard delete, or the unlinked twin) ends its conflict."""
        conflicts = await self.ctx.store.call(
            lambda store: store.conflicts(status="open", sync=mapping.name, kind="identity")
        )
        ids = sorted({str(c["value"]) for x in conflicts for c in x["candidates"] if c.get("app") == app})
        if not ids:
            return
        found = await self.ctx.connectors[app].get(mapping.object_of(app), ids)
        present = {r.id for r in found} | {old for r in found for old in r.replaces}
        gone = [i for i in ids if i not in present]
        if gone:

            def close(store: StateStore) -> None:
                with store.transaction():
                    self._close_identity(store, mapping, app, gone)

            await self.ctx.store.call(close)

    async def _scan_ids(self, mapping: SyncMapping, app: str, run: int) -> bool:
        """Between full listings, a cheap id-only listing finds records deleted without a trace
        (hard deletes in a table without ``deleted_at``), at most once per ``id_scan_interval``."""
        interval = self.ctx.id_scan_interval.get(app, 0.0)
        marker = f"{app}#ids"
        last = await self.ctx.store.call(lambda s: s.get_cursor(mapping.name, marker))
        now = datetime.now(UTC).timestamp()
        if last is not None and interval > 0 and now - float(last.get("at", 0)) < interval:
            return False
        ids = await self.ctx.connectors[app].list_ids(mapping.object_of(app))
        if not await self.ctx.store.call(self._lacks_nothing, mapping, app, ids):
            await self.ctx.store.call(self._mark_listed, mapping, app, ids, run)
            await self.ctx.store.call(self._infer_deletes, mapping, app, run, None)
        await self.ctx.store.call(lambda s: s.set_cursor(mapping.name, marker, {"at": now}))
        return True

    @staticmethod
    def _lacks_nothing(store: StateStore, mapping: SyncMapping, app: str, ids: Sequence[str]) -> bool:
        """The id listing holds every linked record of ``app`` and no hold of its deletes is open:
        delete inference would find nothing and change nothing, so the links need not be marked
        seen one by one (a statement and a rewritten row per link, every scan)."""
        listed = set(ids)
        if store.count_links_listed(mapping.name, app, listed) < store.count_links(mapping.name, app):
            return False
        return not any(
            store.held_deletes(status=status, sync=mapping.name, app=app, limit=1)
            for status in ("held", "approved", "rejected")
        )

    @staticmethod
    def _mark_listed(store: StateStore, mapping: SyncMapping, app: str, ids: Sequence[str], run: int) -> None:
        with store.transaction():
            store.mark_seen(mapping.name, app, ids, run)

    async def _relink_pending(self, mapping: SyncMapping, app: str) -> None:
        """Read again the records left standing when an identity conflict ended, so they link."""
        ids = sorted(self._relink.pop((mapping.name, app), set()))
        if ids:
            await self.refetch(mapping, app, ids)

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
        canonical: Sequence[dict[str, Any] | str | None] | None = None,
    ) -> None:
        """Merge one page in one transaction (with its cursor).

        ``gone`` are records of ``app`` that the page's records would have clashed with by key and
        that the app no longer has (checked just before); ``rechecked`` are such records the app
        still has, as they are now. Both are applied before the page itself. ``canonical``, when
        given, holds each page record's canonical values as the clash check computed them.
        """
        with store.transaction():
            if gone:
                self._drop_replaced(store, mapping, app, gone)
            if rechecked:
                self._ingest(store, mapping, app, rechecked, run)
                self.ctx.stats.apps[app].read -= len(rechecked)  # a look, not part of the listing
            self._ingest(store, mapping, app, records, run, canonical)
            if cursor is not None:
                store.set_cursor(mapping.name, app, cursor)

    def _readable(
        self,
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        records: Sequence[RemoteRecord],
        canonical: Sequence[dict[str, Any] | str | None] | None = None,
    ) -> tuple[dict[str, dict[str, Any]], list[RemoteRecord]]:
        """Map each record to canonical values; a record that cannot be read, mapped or stored is
        quarantined (a dead letter naming the app, the id and why, never the values) and the rest
        of the page goes on. Returns the observed values and the records that go on.

        ``canonical`` (aligned with ``records``) are values already computed for them."""
        observed: dict[str, dict[str, Any]] = {}
        keep: list[RemoteRecord] = []
        bad: list[tuple[str, str]] = []
        for index, record in enumerate(records):
            if record.error is not None:
                bad.append((record.id, record.error))
                continue
            if not record.deleted:
                known = canonical[index] if canonical is not None else None
                values = (
                    known
                    if known is not None
                    else canonical_values(mapping, app, record.id, record.fields, record.version)
                )
                if isinstance(values, str):
                    bad.append((record.id, values))
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
            self.ctx.stats.apps[app].quarantined += new
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
                for mapping in self.ctx.mappings:
                    if app not in mapping.apps:
                        continue
                    obj = mapping.object_of(app)
                    ids = sorted({str(r["record_id"]) for r in rows if r["object"] == obj})
                    linked = store.links_by_remote(mapping.name, app, ids)
                    self.ctx.stats.apps[app].quarantined += store.quarantine_reads(
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

        await self.ctx.store.call(write)

    def _identity_clashes(
        self, store: StateStore, mapping: SyncMapping, app: str, records: Sequence[RemoteRecord]
    ) -> tuple[list[str], list[dict[str, Any] | str | None]]:
        """Linked records of ``app`` that unlinked ``records`` share a natural key with, and the
        canonical values of each record (aligned with ``records``: ``None`` for tombstones and
        unreadable records, why for values that cannot be mapped), computed once for the page.

        Before two records with one key are called an identity conflict, the runner asks the app
        whether the linked one still exists: a record deleted and re-created with the same key
        (a new id) must be relinked, not halted.
        """
        sync = mapping.name
        canonical: list[dict[str, Any] | str | None] = [
            None
            if r.deleted or r.error is not None
            else canonical_values(mapping, app, r.id, r.fields, r.version)
            for r in records
        ]
        fresh = [(r, v) for r, v in zip(records, canonical, strict=True) if isinstance(v, dict)]
        if not fresh:
            return [], canonical
        links = store.links_by_remote(sync, app, [r.id for r, _ in fresh])
        keys: dict[str, str] = {}
        for record, values in fresh:
            if record.id in links:
                continue
            key = mapping.key_of(values)
            if key:
                keys[record.id] = key
        if not keys:
            return [], canonical
        by_key = store.entities_by_key(sync, set(keys.values()))
        if not by_key:
            return [], canonical
        held = store.app_links([e.id for e in by_key.values()], app)
        replaced = {old for r in records if not r.deleted for old in r.replaces}
        return clashing_records(keys, by_key, held, replaced), canonical

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
                code=ReasonCode.RELINKED,
            )
            for link in links.values()
        ]
        store.drop_links(link.id for link in links.values() if link.id is not None)
        self._close_identity(store, mapping, app, links)
        self.ctx.stats.changes += store.log_changes(mapping.name, changes, store.latest_run())

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
            self.ctx.stats.changes += store.log_changes(
                mapping.name,
                [
                    Change(
                        conflict["entity_id"],
                        IDENTITY,
                        sorted(ids),
                        sorted(ids - gone),
                        app,
                        f"identity conflict {conflict['id']} closed: a record it named no longer exists",
                        code=ReasonCode.IDENTITY_CLOSED,
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
                    Change(
                        link.entity_id,
                        "*",
                        old,
                        new,
                        app,
                        f"{app} record {old} is now {new}: link moved",
                        code=ReasonCode.LINK_MOVED,
                    )
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
                        code=ReasonCode.MERGED_IN_APP,
                    )
                )
        store.drop_links(link.id for link in dropped if link.id is not None)
        store.save_links(sync, moved)
        store.save_entities(entities.values())
        self._close_identity(store, mapping, app, [old for old, _ in pairs])
        self.ctx.stats.changes += store.log_changes(sync, changes, store.latest_run())

    def _ingest(
        self,
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        records: Sequence[RemoteRecord],
        run: int | None = None,
        canonical: Sequence[dict[str, Any] | str | None] | None = None,
    ) -> None:
        """Merge a batch of remote records from ``app`` (already in a transaction); ``canonical``
        are their values if already computed (aligned with ``records``)."""
        sync = mapping.name
        stats = self.ctx.stats.apps[app]
        stamped = self.ctx.connectors[app].capabilities.stamped_by_app
        stats.read += len(records)
        observed, records = self._readable(store, mapping, app, records, canonical)
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
        # A create of ours sent before, whose answer was lost: the record it made shows up here.
        sent = store.sent_creates(app, [e for e in matched if e not in all_links]) if matched else {}
        parked = store.parked_fields(entities)
        touched: dict[int, Entity] = {}
        dirty: set[int] = set()
        save_links: dict[int, Link] = {}
        drop: list[Link] = []
        changes: list[Change] = []
        conflicts: list[Conflict] = []
        seen: list[str] = []
        unlinked_gone: list[str] = []
        stale: list[tuple[RemoteRecord, Link]] = []

        for record in records:
            at = iso(record.updated_at)
            link = links.get(record.id)
            if record.deleted:
                if link is not None and link.entity_id in entities:
                    entity = entities[link.entity_id]
                    tombstone(
                        mapping,
                        entity,
                        link,
                        all_links,
                        changes,
                        drop,
                        dirty,
                        reason=f"deleted in {app}",
                        code=ReasonCode.REMOTE_DELETED,
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
                if stamped and _read_before_known(record, at, link) and (app, record.id) not in self._trusted:
                    # Read before a state syncd already recorded for this record (its own write,
                    # or a read of another daemon's): the app holds something newer. Merging it
                    # would take back values the app no longer has; the record is read again by
                    # id instead (and that read merged as it is, should the app's clock have
                    # gone back rather than this copy being old).
                    stats.stale += 1
                    stale.append((record, link))
                    if entity.id not in dirty and needs_write(mapping, entity, link, held):
                        dirty.add(entity.id)
                    continue
                self._trusted.discard((app, record.id))
                outcome = merge_record(mapping, entity, link, obs, at, parked=held, run=run)
                link.version, link.remote_updated_at = record.version, at
                link.alias = record.alias or link.alias
                for name, value in outcome.parked_updates.items():
                    store.update_parked(entity.id, name, app, value, at)
                changes += outcome.changes
                conflicts += outcome.conflicts
                self.ctx.stats.oscillations += len(outcome.oscillations)
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
                            code=ReasonCode.EDIT_WINS,
                        )
                    )
                if outcome.changed:
                    self._rekey(store, mapping, entity, changes)
                    touched[entity.id] = entity
                    dirty.add(entity.id)
                if entity.state == "active" and not mapping.in_scope(app, entity.values):
                    # Scope is decided on the canonical values, here and in the plan alike.
                    changes.append(
                        Change(
                            entity.id,
                            "*",
                            None,
                            None,
                            app,
                            f"left the scope of {app}: unlinked",
                            code=ReasonCode.OUT_OF_SCOPE,
                        )
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
                                    code=ReasonCode.IDENTITY,
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
                            code=ReasonCode.IDENTITY,
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
                            code=ReasonCode.RECREATED,
                        )
                    )
                    changes += new_entity_values(mapping, entity, app, obs, at, run)
                    link = Link(
                        None, entity.id, app, record.id, dict(obs), record.version, at, alias=record.alias
                    )
                else:
                    if not in_scope_after(mapping, entity, app, record.id, obs, at, held, run):
                        continue
                    if entity.state != "active":
                        entity.state = "active"
                        changes.append(
                            Change(
                                entity.id,
                                "*",
                                None,
                                key,
                                app,
                                f"restored: {app} has the key again",
                                code=ReasonCode.RESTORED,
                            )
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
                    own = sent.get(entity.id)
                    if own is not None and _made_by(mapping, app, own.payload, obs):
                        # Our own earlier create: what it sent is the baseline, as after any
                        # create, so an edit made elsewhere since is a change against it, not a
                        # first match settled by a timestamp the app stamped when syncd wrote it.
                        baseline_after_write(mapping, link, own.values, own.payload, record.fields)
                        why = f"created in {app} (found by key: the create's answer was lost)"
                        code = ReasonCode.CREATED
                    else:
                        why, code = f"linked existing {app} record by key", ReasonCode.LINKED
                    found = Change(entity.id, "*", None, record.id, app, why, code=code)
                    outcome = merge_record(mapping, entity, link, obs, at, parked=held, run=run)
                    changes.append(found)
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
                self.ctx.stats.entities_new += 1
            all_links.setdefault(entity.id, {})[app] = link
            save_links[id(link)] = link
            seen.append(record.id)
            touched[entity.id] = entity
            dirty.add(entity.id)

        if stale:
            obj = mapping.object_of(app)
            store.enqueue(
                (
                    f"{sync}:{app}:reread:{r.id}:{r.version}:{lk.version}",
                    sync,
                    app,
                    obj,
                    "read",
                    lk.entity_id,
                    r.id,
                    {},
                    {},
                    None,
                )
                for r, lk in stale
            )
        store.drop_links(link.id for link in drop if link.id is not None)
        # Entities before links: a baseline equal to its entity's new values is stored as a reference.
        store.save_entities(touched.values())
        store.save_links(sync, save_links.values(), run)
        if run is not None:
            store.mark_seen(sync, app, seen, run)
        store.mark_dirty(dirty)
        store.add_conflicts(sync, conflicts)
        self.ctx.stats.conflicts += len(conflicts)
        self.ctx.stats.changes += store.log_changes(sync, changes, run)
        self._close_identity(store, mapping, app, [*unlinked_gone, *(link.remote_id for link in drop)])

    @staticmethod
    def _rekey(store: StateStore, mapping: SyncMapping, entity: Entity, changes: list[Change]) -> None:
        key = new_key(mapping, entity)
        if key is None:
            return
        if store.entities_by_key(entity.sync, [key]):
            changes.append(
                Change(
                    entity.id,
                    IDENTITY,
                    entity.key,
                    key,
                    None,
                    "new key already belongs to another entity",
                    code=ReasonCode.IDENTITY,
                )
            )
            return
        changes.append(
            Change(
                entity.id, "@key", entity.key, key, None, "natural key changed", code=ReasonCode.KEY_CHANGED
            )
        )
        entity.key = key

    def _infer_deletes(
        self,
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        run: int,
        cursor_before: dict[str, Any] | None = None,
    ) -> None:
        """After a complete listing: linked records it did not contain are deleted — unless too many.

        When the guard stops it, the deletes are *held* (``held_deletes``: the evidence, for a
        person to approve or reject) and the cursor goes back to where it was before the listing,
        so the change feed is read again and real deletes still arrive as tombstones (positive
        evidence). A held set a person approved is deleted by the next complete listing that
        lacks no more than it (only those still missing); records of a rejected hold are kept:
        their absence deletes nothing and alerts no more.
        """
        sync = mapping.name
        if mapping.delete_policy == "ignore":
            return  # the policy says a delete changes nothing
        linked = store.count_links(sync, app)
        missing = store.count_unseen(sync, app, run)
        rejected = store.held_deletes(status="rejected", sync=sync, app=app)
        if not missing and not rejected:
            self._clear_holds(store, sync, app, [])
            return
        unseen = self._unseen_ids(store, sync, app, run, missing) if rejected else None
        if rejected:
            assert unseen is not None
            kept: set[str] = set()
            still = set(unseen)
            with store.transaction():
                for hold in rejected:
                    records = set(store.held_delete_records(hold["id"]))
                    if records & still:
                        kept |= records
                    else:  # every record it kept is listed again: the rejection has done its work
                        store.close_held_delete(hold["id"], "cleared")
            # Records a person chose to keep count on neither side of the guard's share.
            linked -= len(still & kept)
            unseen = [rid for rid in unseen if rid not in kept]
            missing = len(unseen)
            if not missing:
                self._clear_holds(store, sync, app, [])
                return
        message = mass_delete_stop(mapping, app, linked, missing, allowed=self.ctx.allow_mass_delete)
        if message is None:
            self._clear_holds(store, sync, app, [])
            self._delete_missing(store, mapping, app, run, unseen, f"missing from the complete {app} listing")
            return
        if unseen is None:
            unseen = self._unseen_ids(store, sync, app, run, missing)
        approved = self._approval_for(store, sync, app, unseen)
        if approved is not None:
            self._clear_holds(store, sync, app, [approved])
            self._delete_missing(
                store,
                mapping,
                app,
                run,
                unseen,
                f"missing from the complete {app} listing; deletes approved in hold #{approved}",
            )
            with store.transaction():
                store.close_held_delete(approved, "applied")
                self.ctx.stats.changes += store.log_changes(
                    sync,
                    [
                        Change(
                            0,
                            "*",
                            linked,
                            linked - missing,
                            app,
                            f"held deletes #{approved} carried out: {missing} {app} records still missing",
                            {"hold": approved},
                            code=ReasonCode.DELETES_APPROVED,
                        )
                    ],
                    run,
                )
            log.warning("held deletes carried out", app=app, hold=approved, deleted=missing)
            return
        hold_id = self._hold(store, mapping, app, run, linked, unseen)
        message += f"; held as #{hold_id}: `syncd deletes list`, then approve or reject it"
        self.ctx.stats.delete_guard.append(message)
        self.ctx.stats.apps[app].delete_guard += 1
        with store.transaction():
            store.log_changes(
                sync,
                [
                    Change(
                        0,
                        "*",
                        linked,
                        linked - missing,
                        app,
                        "mass-delete guard: " + message,
                        {"hold": hold_id},
                        code=ReasonCode.MASS_DELETE_GUARD,
                    )
                ],
                run,
            )
            if cursor_before is not None:
                store.set_cursor(sync, app, cursor_before)
        log.error("mass-delete guard", app=app, missing=missing, linked=linked, hold=hold_id)

    @staticmethod
    def _unseen_ids(store: StateStore, sync: str, app: str, run: int, missing: int) -> list[str]:
        return sorted(link.remote_id for link in store.unseen_links(sync, app, run, max(missing, 1)))

    @staticmethod
    def _approval_for(store: StateStore, sync: str, app: str, missing: Sequence[str]) -> int | None:
        """The approved hold of ``app`` covering every record now missing (newest first), if any."""
        wanted = set(missing)
        for hold in store.held_deletes(status="approved", sync=sync, app=app):
            if wanted <= set(store.held_delete_records(hold["id"])):
                return hold["id"]
        return None

    @staticmethod
    def _clear_holds(store: StateStore, sync: str, app: str, keep: Sequence[int]) -> None:
        """A listing the guard let through (or that lacks nothing) ends the app's open holds and
        pending approvals: what they were about is either back or deleted the usual way."""
        with store.transaction():
            for status in ("held", "approved"):
                for hold in store.held_deletes(status=status, sync=sync, app=app):
                    if hold["id"] not in keep:
                        store.close_held_delete(hold["id"], "cleared")

    @staticmethod
    def _hold(
        store: StateStore, mapping: SyncMapping, app: str, run: int, linked: int, missing: Sequence[str]
    ) -> int:
        """Open (or update) the app's hold with this listing's evidence; returns its id."""
        shown = store.links_by_remote(mapping.name, app, missing[:HOLD_SAMPLE])
        keys = store.entities(link.entity_id for link in shown.values())
        sample = [
            {
                "entity_id": link.entity_id,
                "key": keys[link.entity_id].key if link.entity_id in keys else None,
                "remote_id": rid,
            }
            for rid, link in sorted(shown.items())
        ]
        return store.hold_deletes(
            mapping.name, app, linked=linked, missing=len(missing), sample=sample, records=missing, run_id=run
        )

    def _delete_missing(
        self,
        store: StateStore,
        mapping: SyncMapping,
        app: str,
        run: int,
        ids: Sequence[str] | None,
        reason: str,
    ) -> None:
        """Apply the delete policy to the links of ``app`` a complete listing lacked: ``ids``, or
        (None) every link this run did not see."""
        sync = mapping.name
        todo = list(ids) if ids is not None else None
        while True:
            if todo is None:
                batch = store.unseen_links(sync, app, run, 500)
            else:
                chunk, todo = todo[:500], todo[500:]
                batch = list(store.links_by_remote(sync, app, chunk).values()) if chunk else []
            if not batch:
                break
            with store.transaction():
                entities = store.entities(link.entity_id for link in batch)
                all_links = store.links_of(entities)
                changes: list[Change] = []
                drop: list[Link] = []
                dirty: set[int] = set()
                for link in batch:
                    tombstone(
                        mapping,
                        entities[link.entity_id],
                        link,
                        all_links,
                        changes,
                        drop,
                        dirty,
                        reason=reason,
                        code=ReasonCode.MISSING,
                    )
                store.drop_links(link.id for link in drop if link.id is not None)
                store.save_entities(entities.values())
                store.mark_dirty(dirty)
                self.ctx.stats.changes += store.log_changes(sync, changes, run)
                self._close_identity(store, mapping, app, [link.remote_id for link in drop])

    # -- records pushed by webhooks or re-reads ----------------------------------------------------

    async def ingest(self, mapping: SyncMapping, app: str, records: Sequence[RemoteRecord]) -> None:
        """Merge records fetched outside a listing (webhook hints, pre-write re-reads)."""
        run = await self.ctx.store.call(lambda s: s.latest_run())
        await self._ingest_checked(mapping, app, records, None, run)

    async def refetch(
        self,
        mapping: SyncMapping,
        app: str,
        ids: Sequence[str],
        replaces: Mapping[str, Sequence[str]] | None = None,
        *,
        known: Sequence[RemoteRecord] = (),
    ) -> None:
        """Re-read records by id; ones that are gone count as deleted (positive evidence).

        ``replaces`` adds, per id, the ids that record took over (from a webhook that said so). A
        record read under another id than asked for (an app answering for a merged-away id with
        the survivor) took over the id asked for. ``known`` are records the connector vouched for
        without a read (``records_from_webhooks``); they are taken as read.
        """
        connector = self.ctx.connectors[app]
        records = [*known, *(await connector.get(mapping.object_of(app), ids) if ids else [])]
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

    def ingest_in(
        self, store: StateStore, pages: Sequence[tuple[SyncMapping, str, Sequence[RemoteRecord]]]
    ) -> None:
        """Merge records fetched outside a listing (as ``ingest``) as part of a caller's unit of
        work, several (mapping, app, records) at once. Raises ``ClashByKey`` if any of them shares
        a key with a linked record (the app must be asked first: use ``ingest``); the caller's
        transaction must then be rolled back."""
        with store.transaction():
            run = store.latest_run()
            for mapping, app, records in pages:
                clashes, canonical = self._identity_clashes(store, mapping, app, records)
                if clashes:
                    raise ClashByKey(app)
                self._ingest_page(store, mapping, app, records, None, run, canonical=canonical)

    def trust(self, app: str, ids: Sequence[str]) -> None:
        """The next read of these records is merged as read, whatever its stamp (see ``_trusted``)."""
        self._trusted.update((app, rid) for rid in ids)

    async def relink_pending(self, mapping: SyncMapping, app: str) -> None:
        """Read again the records an ended identity conflict left standing (after ``ingest_in``)."""
        await self._relink_pending(mapping, app)


class ClashByKey(Exception):
    """``Ingester.ingest_in`` met records sharing a key with linked ones (see there)."""


def _read_before_known(record: RemoteRecord, at: str | None, link: Link) -> bool:
    """Whether ``record`` (stamped ``at``) is older than what ``link`` last recorded of it.

    Only a read of the same record counts: one that took over other ids (a merge) is a newer
    state whatever its stamp, and one composed from webhook events (no version) is the
    connector's to vouch for. Equal stamps are not older (an app stamping in whole seconds gives
    a write of ours and a person's edit in the same second one stamp).
    """
    known = link.remote_updated_at
    return (
        at is not None
        and known is not None
        and record.version is not None
        and at < known
        and record.version != link.version
        and record.id == link.remote_id
        and not record.replaces
    )


def _holds_baseline(mapping: SyncMapping, app: str, record: RemoteRecord, link: Link) -> bool:
    """True if ``record`` holds exactly the values syncd recorded for it. Its version alone does
    not tell: an app that stamps whole seconds (Mailchimp's ``last_changed``) gives a person's edit
    made in the same second as syncd's write the version of that write."""
    try:
        observed = mapping.to_canonical(app, record.fields)
    except Exception:  # a value that cannot be read: the next cycle's read quarantines it
        return False
    baseline = link.baseline
    return all(same(observed.get(name), baseline.get(name)) for name in {*observed, *baseline})


def _made_by(mapping: SyncMapping, app: str, payload: Mapping[str, Any], observed: Mapping[str, Any]) -> bool:
    """True if ``observed`` (a record's canonical values) holds every value ``payload`` (what a
    create sent to ``app``) set: the record is, as far as anyone can tell, the one it made."""
    sent = mapping.to_canonical(app, payload)
    return bool(sent) and all(same(observed.get(name), value) for name, value in sent.items())
