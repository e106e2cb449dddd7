"""Pure ingest decisions: reading a record into canonical values, which linked records a page
clashes with by key, the delete policy, scope after a merge, and the mass-delete guard.

No store and no I/O: the ingest step (``syncd.sync.ingest``) loads what these need, calls them,
and writes what they decide.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any, Protocol

import orjson

from .model import Change, Entity, Link, ReasonCode
from .plan import needs_write
from .reconcile import MappingView, merge_record

#: Pseudo-field of identity conflicts (two records with one natural key in one app).
IDENTITY = "@identity"


class IngestMappingView(MappingView, Protocol):
    """What the ingest decisions need from a compiled mapping, beyond the merge's view."""

    @property
    def mass_delete_threshold(self) -> float: ...

    def has_filters(self, app: str) -> bool: ...


def canonical_values(
    mapping: MappingView, app: str, record_id: str, fields: Mapping[str, Any], version: str | None
) -> dict[str, Any] | str:
    """A record's canonical values, or why it cannot be read (never naming its values).

    The values must be storable as JSON: a lone surrogate in a name, say, is refused here so that
    one bad record is quarantined instead of failing its page's transaction.
    """
    try:
        values = mapping.to_canonical(app, fields)
        orjson.dumps(values)
        orjson.dumps([record_id, version])
    except orjson.JSONEncodeError:
        return "a value is not valid Unicode text (e.g. a lone surrogate)"
    except Exception as exc:  # quarantined with the kind of error, not the value
        return f"its fields could not be mapped ({type(exc).__name__})"
    return values


def clashing_records(
    keys: Mapping[str, str],
    by_key: Mapping[str, Entity],
    held: Mapping[int, Link],
    replaced: Collection[str],
) -> list[str]:
    """Linked records that unlinked records share a natural key with (sorted remote ids).

    ``keys`` maps each unlinked record to its key, ``by_key`` the keys to their entities, ``held``
    those entities to their link in the app; a record the new one says it replaces is no clash.
    """
    out = set()
    for rid, key in keys.items():
        entity = by_key.get(key)
        link = held.get(entity.id) if entity is not None else None
        if link is not None and link.remote_id != rid and link.remote_id not in replaced:
            out.add(link.remote_id)
    return sorted(out)


def in_scope_after(
    mapping: IngestMappingView,
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
    merge_record(mapping, probe, Link(None, entity.id, app, remote_id), observed, at, parked=parked, run=run)
    return mapping.in_scope(app, probe.values)


def tombstone(
    mapping: MappingView,
    entity: Entity,
    link: Link,
    all_links: dict[int, dict[str, Link]],
    changes: list[Change],
    drop: list[Link],
    dirty: set[int],
    *,
    reason: str,
    code: ReasonCode,
) -> None:
    """Positive evidence that ``link``'s record is gone: apply the delete policy (edits win).

    ``reason`` and ``code`` name the evidence (deleted in the app, missing from its listing).
    Appends to ``changes``, ``drop`` (links to remove) and ``dirty`` (entities to plan), and sets
    the entity's state or exclusions; ``all_links`` (entity -> app -> link) loses the link.
    """
    app = link.app
    drop.append(link)
    all_links.get(entity.id, {}).pop(app, None)
    policy = mapping.delete_policy
    if policy == "ignore" and entity.state == "active":
        # "Changes nothing": the link stays, nothing is deleted and nothing is re-created.
        drop.pop()
        all_links.setdefault(entity.id, {})[app] = link
        changes.append(
            Change(
                entity.id, "*", None, None, app, f"{reason}: ignored (delete policy), link kept", code=code
            )
        )
        return
    if entity.state != "active":
        changes.append(Change(entity.id, "*", None, None, app, f"{reason}: link dropped", code=code))
        return
    if needs_write(mapping, entity, link):
        changes.append(
            Change(
                entity.id, "*", None, None, app, f"{reason}, but edited elsewhere: the edit wins", code=code
            )
        )
        dirty.add(entity.id)
        return
    if policy == "propagate":
        entity.state = "deleted"
        changes.append(
            Change(entity.id, "*", entity.key, None, app, f"{reason}: deleting in the other apps", code=code)
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
                code=code,
            )
        )
        dirty.add(entity.id)
    else:
        entity.excluded = sorted({*entity.excluded, app})
        changes.append(Change(entity.id, "*", None, None, app, f"{reason}: unlinked, others kept", code=code))


def mass_delete_stop(
    mapping: IngestMappingView, app: str, linked: int, missing: int, *, allowed: bool
) -> str | None:
    """Why a complete listing that lacks ``missing`` of ``linked`` records must not delete them
    (None when the deletes may go ahead): all of them, or more than the mapping's threshold."""
    share = missing / linked if linked else 0.0
    if allowed or not (missing == linked or share > mapping.mass_delete_threshold):
        return None
    return (
        f"{app}: complete listing lacks {missing} of {linked} linked records "
        f"({share:.0%} > {mapping.mass_delete_threshold:.0%}): delete propagation stopped"
    )


def retry_delay(base: float, attempts: int) -> float:
    """Seconds before a write that failed ``attempts`` times is tried again (doubling each time)."""
    return float(base * 2 ** (attempts - 1))


def new_key(mapping: MappingView, entity: Entity) -> str | None:
    """The entity's natural key if its values now give another, non-empty one."""
    key = mapping.key_of(entity.values)
    return None if key == entity.key or key is None else key
