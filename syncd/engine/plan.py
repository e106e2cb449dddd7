"""Planning: which writes bring every app in line with an entity's canonical values.

Pure: no I/O. For each app of the mapping, the canonical values are projected through the
app's outbound transforms and compared with the link's baseline (in canonical form, after a
round trip through the app's inbound transforms, so lossy-but-stable mappings do not diff
forever). Only changed fields are written. An app without a link gets a create (the dispatcher
first looks the natural key up, so an existing record is linked rather than duplicated).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .model import Entity, Link, PlannedWrite
from .reconcile import MappingView, roundtrip, same


def plan_entity(
    mapping: MappingView,
    entity: Entity,
    links: Mapping[str, Link],
    *,
    parked: Collection[str] = (),
    can_create: Collection[str] | None = None,
    busy_apps: Collection[str] = (),
    archiving: Collection[str] = (),
    refused: list[str] | None = None,
) -> list[PlannedWrite]:
    """Writes for one entity. ``parked`` fields (open review conflicts) are never written;
    ``busy_apps`` already have a write in flight for this entity and are planned later.

    A deleted entity is deleted everywhere it is linked; an archived one only in the apps whose
    deletes archive (``archiving``). Apps where a create had to be refused (the natural key is
    empty: such a record could never be matched again) are appended to ``refused``."""
    if entity.state in ("deleted", "archived"):
        return [
            PlannedWrite(entity.id, app, "delete", link.remote_id, {}, {}, link.version)
            for app, link in sorted(links.items())
            if app not in busy_apps and (entity.state == "deleted" or app in archiving)
        ]
    if entity.state != "active":
        return []
    writes: list[PlannedWrite] = []
    for app in mapping.apps:
        if app in busy_apps:
            continue
        link = links.get(app)
        if link is None:
            write = _plan_create(mapping, entity, app, parked, can_create)
            if write is not None and not mapping.key_of(entity.values):
                if refused is not None:
                    refused.append(app)
                continue
        else:
            write = _plan_update(mapping, entity, link, parked)
        if write is not None:
            writes.append(write)
    return writes


def needs_write(mapping: MappingView, entity: Entity, link: Link, parked: Collection[str] = ()) -> bool:
    """True if ``link``'s record lacks a canonical value the plan would write to it."""
    return entity.state == "active" and _plan_update(mapping, entity, link, parked) is not None


def _plan_create(
    mapping: MappingView,
    entity: Entity,
    app: str,
    parked: Collection[str],
    can_create: Collection[str] | None,
) -> PlannedWrite | None:
    if app in entity.excluded or (can_create is not None and app not in can_create):
        return None
    if not mapping.in_scope(app, entity.values):
        return None
    names = [
        f
        for f in mapping.writable(app)
        if entity.values.get(f) not in (None, "", [])
        and f not in parked
        and not _refused_consent(mapping, f, entity, None)
    ]
    if not names:
        return None
    values = {f: entity.values[f] for f in names}
    payload = mapping.to_remote(app, entity.values, names)
    return PlannedWrite(entity.id, app, "create", None, values, payload)


def _refused_consent(mapping: MappingView, name: str, entity: Entity, link: Link | None) -> bool:
    """Never subscribe anyone through an API over another answer: where an app holds an unsubscribe
    (or a state like "pending" or "cleaned"), syncd only ever withdraws consent there, it never
    grants it (re-consent and confirmation are the person's acts)."""
    if not mapping.is_consent(name) or entity.values.get(name) is not True:
        return False
    return link is not None and name in link.baseline and link.baseline[name] is not True


def _plan_update(
    mapping: MappingView, entity: Entity, link: Link, parked: Collection[str]
) -> PlannedWrite | None:
    readable = set(mapping.readable(link.app))
    rt = roundtrip(mapping, link.app, entity.values)
    changed: dict[str, Any] = {}
    for name in mapping.writable(link.app):
        if name in parked:
            continue
        want = rt.get(name) if name in readable else entity.values.get(name)
        have = link.baseline.get(name)
        if same(want, have):
            continue
        if name not in link.baseline and want in (None, "", []):
            continue
        coerced = link.coerced.get(name)
        if coerced is not None and same(coerced[0], want) and same(coerced[1], have):
            continue  # the app keeps its own form of this value; writing again would loop
        if _refused_consent(mapping, name, entity, link):
            continue
        if mapping.is_consent(name) and not isinstance(entity.values.get(name), bool):
            continue  # no consent answer to give: a "pending" or "cleaned" state is the app's own
        changed[name] = entity.values.get(name)
    if not changed:
        return None
    payload = mapping.to_remote(link.app, entity.values, list(changed))
    return PlannedWrite(entity.id, link.app, "update", link.remote_id, changed, payload, link.version)


def baseline_after_write(
    mapping: MappingView,
    link: Link,
    written: Mapping[str, Any],
    payload: Mapping[str, Any],
    returned: Mapping[str, Any] | None,
) -> None:
    """Record in the baseline what the app was sent: ``written`` (canonical values) as ``payload``
    (the app-shaped fields actually sent).

    Only what was sent counts: the entity may have moved on while the call was in flight, and
    that newer value must still be planned. What the app kept is then merged like any read
    (``merge_record`` with ``returned``): a form that maps to the same canonical value settles
    quietly, a different value (an automation rewrote it inside the write) is a change from that
    app and propagates once. The one exception is an app that can only keep a shortened value
    (a length limit): the shortened form is remembered as that app's form of the value, so the
    full value is neither written again and again nor cut short in every other app.
    """
    readable = set(mapping.readable(link.app))
    observed = mapping.to_canonical(link.app, returned) if returned is not None else {}
    sent = mapping.to_canonical(link.app, payload) if readable else {}
    for name in written:
        want = sent.get(name, written[name]) if name in readable else written[name]
        link.baseline[name] = want
        link.coerced.pop(name, None)
        kept = observed.get(name)
        if name in readable and name in observed and not same(kept, want) and _shortened(want, kept):
            link.baseline[name] = kept
            link.coerced[name] = [want, kept]


def _shortened(want: Any, kept: Any) -> bool:
    """The app kept only the beginning of a longer text: a length limit, not a new value."""
    return (
        isinstance(want, str)
        and isinstance(kept, str)
        and 0 < len(kept) < len(want)
        and want.startswith(kept)
    )
