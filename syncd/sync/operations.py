"""Admin operations on the state, shared by the CLI, the admin API and the demo.

Resolve a conflict (or many at once: ``resolve_conflicts_bulk``), replay or drop dead letters,
one entity's view, and ``one_writer`` (hold the state's lease while a command writes, as the
daemon does). None of them imports the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from syncd.engine import Change
from syncd.engine.model import ReasonCode
from syncd.errors import ConflictClosed, ConflictNotFound, NotASide, RefusedValue
from syncd.mapping import Mapping as SyncMapping
from syncd.store import AsyncStore, ConflictRow, StateStore, now_iso

if TYPE_CHECKING:
    from syncd.settings import Settings

#: At most this many open conflicts are settled by one bulk resolution.
BULK_LIMIT = 1_000_000


async def resolve_conflict(
    store: AsyncStore,
    mappings: Mapping[str, SyncMapping],
    conflict_id: int,
    *,
    take: str | None = None,
    value: Any = None,
    allow_empty: bool = False,
    who: str | None = None,
    why: str | None = None,
) -> ConflictRow:
    """Settle a conflict with one side's value, or with ``value`` — which goes through the
    field's transforms and validation like a value read from an app (``RefusedValue`` if
    invalid, or empty without ``allow_empty``). ``mappings`` are the mappings by name. ``who``
    and ``why`` go into the change log with the resolution.

    Raises ``ConflictNotFound``, ``ConflictClosed`` or ``NotASide`` (``syncd.errors``) for an
    admin's mistake; nothing is changed then."""
    if take is None:
        value = await store.call(admin_value, mappings, conflict_id, value, allow_empty)
    return await store.call(resolve, conflict_id, take, value, who, why)


def os_user() -> str:
    """The person running the command, as the operating system knows them (for the change log)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def matching_conflicts(
    store: StateStore,
    *,
    field: str | None = None,
    app: str | None = None,
    ids: Iterable[int] | None = None,
) -> list[ConflictRow]:
    """The open conflicts a bulk resolution would touch: on ``field``, involving ``app`` (one of
    their sides), among ``ids``; every open conflict when all three are None. Oldest first."""
    wanted = set(ids) if ids is not None else None
    out = []
    for c in store.conflicts(status="open", limit=BULK_LIMIT):
        if field is not None and c["field"] != field:
            continue
        if app is not None and app not in {s.get("app") for s in c["candidates"]}:
            continue
        if wanted is not None and c["id"] not in wanted:
            continue
        out.append(c)
    return out


async def resolve_conflicts_bulk(
    store: AsyncStore,
    *,
    take: str,
    who: str,
    why: str | None = None,
    field: str | None = None,
    app: str | None = None,
    ids: Iterable[int] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Settle every open conflict matching the filter (``matching_conflicts``) with ``take``'s
    value, each in its own transaction and logged with ``who`` and ``why`` like a single one.

    A conflict ``take`` is no side of, or one on a record's identity (two records sharing a key:
    merge them in the app first, then resume it alone), is skipped; one settled meanwhile is
    counted as gone. ``dry_run`` only counts. Returns ``matched``, ``resolved``, ``skipped``,
    ``gone`` and the ``ids`` resolved."""
    chosen = list(ids) if ids is not None else None
    rows = await store.call(lambda s: matching_conflicts(s, field=field, app=app, ids=chosen))
    usable = [c for c in rows if c["kind"] != "identity" and take in {s.get("app") for s in c["candidates"]}]
    counts: dict[str, Any] = {
        "matched": len(rows),
        "resolved": 0,
        "skipped": len(rows) - len(usable),
        "gone": 0,
        "ids": [],
    }
    if dry_run:
        counts["would_resolve"] = len(usable)
        return counts
    for conflict in usable:
        try:
            await store.call(resolve, conflict["id"], take, None, who, why)
        except (ConflictClosed, ConflictNotFound):
            counts["gone"] += 1
            continue
        except NotASide:
            counts["skipped"] += 1
            continue
        counts["resolved"] += 1
        counts["ids"].append(conflict["id"])
    return counts


def admin_value(
    store: StateStore, mappings: Mapping[str, SyncMapping], conflict_id: int, value: Any, allow_empty: bool
) -> Any:
    """``value`` as the conflict's field would hold it, had an app sent it."""
    conflict = store.conflict(conflict_id)
    if conflict is None:
        raise ConflictNotFound(conflict_id)
    mapping = mappings.get(conflict["sync"])
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


def resolve(
    store: StateStore,
    conflict_id: int,
    take: str | None,
    value: Any,
    who: str | None = None,
    why: str | None = None,
) -> ConflictRow:
    """Close an open conflict with ``take``'s side or ``value`` (already checked); the entity is
    dirty so the next plan writes the value everywhere. Identity conflicts resume their key.
    The change log says who settled it (``who``, else "admin") and ``why``."""
    with store.transaction():
        conflict = store.conflict(conflict_id)
        if conflict is None:
            raise ConflictNotFound(conflict_id)
        if conflict["status"] != "open":
            raise ConflictClosed(conflict_id, conflict["status"])
        entity = store.entities([conflict["entity_id"]])[conflict["entity_id"]]
        name = conflict["field"]
        if conflict["kind"] == "identity":
            store.close_conflict(conflict_id, take, {"note": f"resumed by {who or 'admin'}", "why": why})
            store.mark_dirty([entity.id])
            return conflict
        if take is not None:
            chosen = [c for c in conflict["candidates"] if c["app"] == take]
            if not chosen:
                raise NotASide(conflict_id, take, [c["app"] for c in conflict["candidates"]])
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
                    f"conflict {conflict_id} resolved by {who or 'admin'}" + (f": {why}" if why else ""),
                    {"candidates": conflict["candidates"], "by": who or "admin", "why": why},
                    code=ReasonCode.RESOLVED,
                )
            ],
            None,
        )
        conflict["resolution"] = {"value": new}
        return conflict


def entity_view(store: StateStore, key: str, limit: int = 20) -> dict[str, Any] | None:
    """The single customer view of one entity: values with provenance, links, open conflicts and
    its latest ``limit`` change-log entries. None if no entity has that key (or id)."""
    entity = store.find_entity(None, key.strip().lower()) or store.find_entity(None, key)
    if entity is None:
        return None
    links = store.links_of([entity.id]).get(entity.id, {})
    origins = link_origins(store, entity.id, links)
    return {
        "id": entity.id,
        "sync": entity.sync,
        "key": entity.key,
        "state": entity.state,
        "values": entity.values,
        "provenance": entity.provenance,
        "excluded": entity.excluded,
        "links": [
            {
                "app": app,
                "remote_id": link.remote_id,
                "version": link.version,
                "baseline": link.baseline,
                "origin": origins.get(app),
            }
            for app, link in sorted(links.items())
        ],
        "conflicts": store.conflicts(status="open", entity_id=entity.id),
        "changes": store.changelog(entity_id=entity.id, limit=limit),
    }


#: Change-log codes that say how an entity's record in an app came to be linked.
_ORIGIN_CODES = {
    ReasonCode.CREATED.value: "created",
    ReasonCode.LINKED.value: "linked",
    ReasonCode.RELINKED.value: "linked",
    ReasonCode.LINK_MOVED.value: "linked",
    ReasonCode.NEW_RECORD.value: "first_seen",
}


def link_origins(store: StateStore, entity_id: int, links: Mapping[str, Any]) -> dict[str, str]:
    """How each linked record came to be, from the entity's change log: ``created`` (syncd
    created it in the app), ``linked`` (an existing record matched by its key), or
    ``first_seen`` (the record the entity was first read from, matched by no other app's
    existing record). The record the entity was first read from counts as ``linked`` once
    another app's existing record was matched to it: both existed before syncd linked them.
    Apps whose history was pruned are left out."""
    rows = store.changelog(entity_id=entity_id, limit=BULK_LIMIT)
    origin: dict[str, str] = {}
    for row in reversed(rows):  # oldest first: the newest word on a link wins
        kind = _ORIGIN_CODES.get(str(row["code"]))
        if kind is None or row["app"] not in links:
            continue
        if kind == "first_seen" and origin.get(row["app"]) == "first_seen":
            continue
        origin[str(row["app"])] = kind
    if "linked" in origin.values():
        origin = {app: "linked" if kind == "first_seen" else kind for app, kind in origin.items()}
    return origin


def replay(store: StateStore, ids: Iterable[int]) -> int:
    """Mark dead letters replayed and their entities dirty, so the next plan writes fresh values;
    a quarantined read goes back to the outbox to be read again. Returns how many were replayed."""
    n = 0
    with store.transaction():
        for intent_id in ids:
            intent = store.intent(intent_id)
            if intent is None or intent.status != "dead":
                continue
            if intent.op == "read":
                # A quarantined read: the dispatcher reads the record again.
                store.settle(intent.id, "pending", intent.last_error, intent.error_kind)
                n += 1
                continue
            store.settle(intent.id, "replayed", intent.last_error, intent.error_kind)
            store.mark_dirty([intent.entity_id])
            n += 1
    return n


def drop_dead_letters(store: StateStore, ids: Iterable[int]) -> int:
    """Give up on dead letters for good (kept as ``dropped``); returns how many were dead."""
    n = 0
    with store.transaction():
        for intent_id in ids:
            intent = store.intent(intent_id)
            if intent is not None and intent.status == "dead":
                store.settle(intent_id, "dropped", intent.last_error, intent.error_kind)
                n += 1
    return n


@asynccontextmanager
async def one_writer(settings: Settings) -> AsyncIterator[None]:
    """Hold the state's lease while writing, like `syncd run` does: one writer per state
    (``syncd.daemon.LeaseHeld`` if another holds it, or if daemons share the state)."""
    from syncd.daemon.lease import Holder, Lease, LeaseHeld

    store = await AsyncStore(settings.state).open()
    try:
        lease = Lease(store, ttl=settings.daemon.lease_ttl, state=str(settings.state))
        await lease.acquire()
        # Daemons sharing a PostgreSQL state do not hold this lease; their heartbeats say they run.
        now = time.time()
        live = await store.call(lambda s: s.live_daemons(now))
        if live:
            await lease.release()
            info = live[0]["info"]
            running = Holder(
                live[0]["daemon_id"], int(info.get("pid") or 0), str(info.get("host") or "unknown")
            )
            raise LeaseHeld(running, float(live[0]["expires_at"]), str(settings.state))
        heartbeat = asyncio.create_task(lease.heartbeat(lambda: None))
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await lease.release()
    finally:
        await store.close()
