"""The right to erasure: forget one person in every app and in syncd's own state.

``forget(runner, key)`` finds the person's records in every app of every mapping — the linked
ones and any other record with that natural key — and erases each through its app's erasure
route (``Connector.erase``: HubSpot's GDPR delete, Mailchimp's permanent delete, a SQL ``DELETE``,
Zendesk's permanent deletion, Stripe's customer deletion). Then syncd's own state loses every
trace of the person: values, links, change log, conflicts, outbox, inbox.

What stays is a receipt without personal data — when, which apps, how many records, the result,
and a salted hash of the key — and a suppression entry (the same hash) that stops any later sync
from re-creating the person out of an app that still held a record. An app that failed keeps
the ids of its records in the receipt until a retry (``retry_erasures``, run by every sync and by
the daemon's housekeeping) erases them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from syncd.connector import ConnectorError, NotFound, WriteItem
from syncd.runner import Runner
from syncd.store import StateStore

log = structlog.get_logger("syncd.erasure")


def _normalised(runner: Runner, key: str) -> dict[str, str]:
    """The key in each mapping's canonical form (mapping name -> key)."""
    out: dict[str, str] = {}
    for mapping in runner.mappings:
        if len(mapping.key_fields) != 1:
            continue
        norm = mapping.key_of({mapping.key_fields[0]: key})
        if norm:
            out[mapping.name] = norm
    return out


async def forget(runner: Runner, key: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Erase the person with natural key ``key`` everywhere; returns the receipt (see the module)."""
    keys = _normalised(runner, key)
    if not keys:
        raise ValueError(f"{key!r} is not a natural key any mapping accepts")
    norm = next(iter(keys.values()))

    def local(store: StateStore) -> tuple[str, list[int], dict[tuple[str, str], set[str]]]:
        digest = store.hash_key(norm)
        entity_ids: list[int] = []
        targets: dict[tuple[str, str], set[str]] = defaultdict(set)
        for mapping in runner.mappings:
            if mapping.name not in keys:
                continue
            entity = store.entities_by_key(mapping.name, [keys[mapping.name]]).get(keys[mapping.name])
            if entity is None:
                continue
            entity_ids.append(entity.id)
            for app, link in store.links_of([entity.id]).get(entity.id, {}).items():
                targets[(app, mapping.object_of(app))].add(link.remote_id)
        return digest, entity_ids, targets

    digest, entity_ids, targets = await runner.store.call(local)
    lookups: dict[str, str] = {}
    # Records that carry the key but are not linked (duplicates, records out of scope) go too.
    for mapping in runner.mappings:
        if mapping.name not in keys:
            continue
        for app in mapping.apps:
            connector = runner.connectors[app]
            obj = mapping.object_of(app)
            try:
                found = await connector.find(obj, mapping.key_path(app), [key.strip()])
            except ConnectorError as exc:
                lookups[app] = f"lookup by key failed: {type(exc).__name__}"
                continue
            for record in found:
                if mapping.key_of(mapping.to_canonical(app, record.fields)) == keys[mapping.name]:
                    targets[(app, obj)].add(record.id)

    if dry_run:
        return {
            "dry_run": True,
            "key_hash": digest,
            "entities": len(entity_ids),
            "apps": {app: {"records": len(ids)} for (app, _), ids in sorted(targets.items())},
            "lookup_errors": lookups,
        }

    def begin(store: StateStore) -> int:
        with store.transaction():
            erasure_id = store.save_erasure(None, digest, "running", {})
            # Suppressed first: a sync running meanwhile must not re-create the person.
            store.suppress(digest, erasure_id)
            return erasure_id

    erasure_id = await runner.store.call(begin)
    apps: dict[str, dict[str, Any]] = {}
    for (app, obj), ids in sorted(targets.items()):
        apps[app] = await _erase_app(runner, erasure_id, app, obj, sorted(ids))
    for app, error in lookups.items():
        apps.setdefault(app, {"object": None, "erased": 0, "failed": []})["lookup_error"] = error
    status = "done" if not any(a["failed"] or a.get("lookup_error") for a in apps.values()) else "partial"

    def finish(store: StateStore) -> dict[str, int]:
        with store.transaction():
            records = {
                app: [rid for (a, _), ids in targets.items() if a == app for rid in ids] for app in apps
            }
            scrubbed = store.scrub(entity_ids, records)
            store.save_erasure(erasure_id, digest, status, apps)
            return scrubbed

    scrubbed = await runner.store.call(finish)
    log.info("person erased", erasure=erasure_id, status=status, apps=sorted(apps))
    return {
        "erasure_id": erasure_id,
        "key_hash": digest,
        "status": status,
        "apps": apps,
        "state_rows_removed": scrubbed,
    }


async def _erase_app(
    runner: Runner, erasure_id: int, app: str, obj: str, ids: Sequence[str]
) -> dict[str, Any]:
    """Erase ``ids`` in one app; ``failed`` keeps the ids (no personal data) for a retry."""
    result: dict[str, Any] = {"object": obj, "erased": 0, "failed": []}
    if not ids:
        return result
    connector = runner.connectors.get(app)
    if connector is None:
        result["failed"] = [{"id": rid, "error": f"app {app} is not configured"} for rid in ids]
        return result
    items = [WriteItem(key=f"erase:{erasure_id}:{app}:{rid}", id=rid, fields={}) for rid in ids]
    try:
        outcomes = await connector.erase(obj, items)
    except ConnectorError as exc:
        result["failed"] = [{"id": rid, "error": f"{type(exc).__name__}: {exc}"} for rid in ids]
        return result
    for rid, outcome in zip(ids, outcomes, strict=True):
        if outcome.error is None or isinstance(outcome.error, NotFound):
            result["erased"] += 1
        else:
            result["failed"].append({"id": rid, "error": f"{type(outcome.error).__name__}: {outcome.error}"})
    return result


async def retry_erasures(runner: Runner) -> int:
    """Erase what earlier erasures could not (an app was down); returns how many finished."""
    pending = await runner.store.call(lambda s: s.erasures("partial"))
    finished = 0
    for erasure in pending:
        apps: dict[str, dict[str, Any]] = erasure["apps"]
        for app, outcome in apps.items():
            failed = outcome.get("failed") or []
            if not failed or not outcome.get("object"):
                continue
            again = await _erase_app(runner, erasure["id"], app, outcome["object"], [f["id"] for f in failed])
            outcome["erased"] = int(outcome.get("erased", 0)) + again["erased"]
            outcome["failed"] = again["failed"]
        status = (
            "done" if not any(a.get("failed") or a.get("lookup_error") for a in apps.values()) else "partial"
        )
        await runner.store.call(_save, erasure["id"], erasure["key_hash"], status, apps)
        finished += status == "done"
    return finished


def _save(store: StateStore, erasure_id: int, digest: str, status: str, apps: Mapping[str, Any]) -> None:
    with store.transaction():
        store.save_erasure(erasure_id, digest, status, dict(apps))
