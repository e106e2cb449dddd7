"""Field-level three-way merge of one observed remote record into its entity.

Pure: no I/O. For every field the app reports, the observed value is compared with the link's
baseline (what the app held when we last agreed). Equal means "no change from this app" — the
single rule that suppresses echoes of our own writes and no-op touches. A change is taken when
the canonical value has not moved since that baseline; when it has moved too (another app
changed it meanwhile) the two values conflict and the mapping's policy decides, deterministically
from (baseline, values, timestamps, mapping).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .model import Candidate, Change, Conflict, Entity, Link, ReasonCode


class Policy(Protocol):
    @property
    def policy(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def priority(self) -> tuple[str, ...]: ...


class MappingView(Protocol):
    """What the engine needs from a compiled mapping (``syncd.mapping.Mapping`` provides it)."""

    @property
    def name(self) -> str: ...
    @property
    def apps(self) -> tuple[str, ...]: ...
    @property
    def initial_conflict(self) -> str: ...
    @property
    def delete_policy(self) -> str: ...

    def readable(self, app: str) -> tuple[str, ...]: ...
    def writable(self, app: str) -> tuple[str, ...]: ...
    def kind(self, field: str) -> str: ...
    def is_consent(self, field: str) -> bool: ...
    def conflict_policy(self, field: str) -> Policy: ...
    def to_canonical(self, app: str, raw: Mapping[str, Any]) -> dict[str, Any]: ...
    def to_remote(
        self, app: str, canonical: Mapping[str, Any], fields: Collection[str] | None = None
    ) -> dict[str, Any]: ...
    def key_of(self, canonical: Mapping[str, Any]) -> str | None: ...
    def in_scope(self, app: str, canonical: Mapping[str, Any]) -> bool: ...


def same(a: Any, b: Any) -> bool:
    """Value equality as the engine sees it: "" and None are both empty; sets compare sorted."""
    if a in ("", None) and b in ("", None):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _order(policy: Policy, apps: Sequence[str]) -> list[str]:
    return list(policy.priority) + [a for a in apps if a not in policy.priority]


def decide(
    policy: Policy, candidates: Sequence[Candidate], apps: Sequence[str]
) -> tuple[Candidate | None, str]:
    """The winning candidate under ``policy`` (None for ``review``) and why. Deterministic."""
    order = _order(policy, apps)
    rank = {app: i for i, app in enumerate(order)}

    def by_priority() -> Candidate:
        return min(candidates, key=lambda c: (rank.get(c.app, len(rank)), c.app))

    if policy.policy == "review":
        return None, "left for review"
    if policy.policy == "owner":
        for cand in candidates:
            if cand.app == policy.owner:
                return cand, f"{cand.app} owns the field"
        return by_priority(), f"owner {policy.owner} not involved; app priority"
    if policy.policy == "newest":
        newest = max(candidates, key=lambda c: (c.at or "", -rank.get(c.app, len(rank))))
        tie = sum(1 for c in candidates if (c.at or "") == (newest.at or "")) > 1
        return newest, "newest by remote timestamp" + (" (tie broken by app priority)" if tie else "")
    return by_priority(), "app priority"


@dataclass
class Outcome:
    """What ingesting one record decided."""

    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    #: The entity's canonical values changed: other apps need planning.
    changed: bool = False
    #: Review conflicts whose candidate for this app must be refreshed: field -> value.
    parked_updates: dict[str, Any] = field(default_factory=dict)
    #: Fields parked because two apps keep rewriting each other's form of them.
    oscillations: list[str] = field(default_factory=list)


def _set_merge(current: Any, base: Any, new: Any) -> list[str]:
    cur, old, now = (set(map(str, v or [])) for v in (current, base, new))
    return sorted((cur | (now - old)) - (old - now))


def merge_record(
    mapping: MappingView,
    entity: Entity,
    link: Link,
    observed: Mapping[str, Any],
    observed_at: str | None,
    *,
    parked: Collection[str] = (),
    run: int | None = None,
) -> Outcome:
    """Merge ``observed`` (canonical values read from ``link.app``) into ``entity``; update the baseline.

    ``parked`` are fields with an open review conflict: they are not merged, only recorded.
    """
    app = link.app
    out = Outcome()
    for name in mapping.readable(app):
        if name not in observed:
            continue  # absent in the payload is not a change; an explicit None is
        new = observed[name]
        known = name in link.baseline
        base = link.baseline.get(name)
        link.baseline[name] = new
        if known and same(new, base):
            continue
        link.coerced.pop(name, None)
        cur = entity.values.get(name)
        if name in parked:
            out.parked_updates[name] = new
            out.changes.append(
                Change(
                    entity.id,
                    name,
                    cur,
                    new,
                    app,
                    f"held: {name} is parked in an open conflict; {app}'s side updated",
                    code=ReasonCode.HELD,
                )
            )
            continue
        if same(new, cur):
            # Identical edit elsewhere, or our own write: nothing to decide. An app that ranks
            # higher for this field and holds the same value becomes its source, so a later
            # disagreement is decided against the best-ranked holder, whatever the read order.
            prov = entity.provenance.get(name) or {}
            if not known and _outranks(mapping, name, app, prov.get("app")):
                entity.provenance[name] = {**prov, "app": app}
            continue
        if mapping.is_consent(name) and not isinstance(new, bool):
            continue  # "pending", "cleaned", empty: not a consent answer, so not a change of consent
        prov = entity.provenance.get(name, {})
        if mapping.kind(name) == "set":
            merged = _set_merge(cur, base if known else cur, new)
            if not same(merged, cur):
                _take(
                    out,
                    entity,
                    name,
                    merged,
                    app,
                    observed_at,
                    run,
                    "set merge of " + app,
                    code=ReasonCode.MERGED,
                )
            continue
        if mapping.is_consent(name) and new is False:
            _take(
                out,
                entity,
                name,
                new,
                app,
                observed_at,
                run,
                f"unsubscribed in {app}: an unsubscribe always wins",
                code=ReasonCode.UNSUBSCRIBED,
            )
            continue
        if not known and cur is None:
            _take(
                out,
                entity,
                name,
                new,
                app,
                observed_at,
                run,
                f"first value, from {app}",
                code=ReasonCode.FIRST_VALUE,
            )
            continue
        if not known and new is None:
            continue  # the app lacks a value the entity has: the plan fills it in
        if known and same(cur, base) and _stale(mapping, name, prov, app, observed_at):
            # Under "newest", a value stamped before the current one does not replace it, even
            # when the app's record merely went back to it (an edit of ours that never landed).
            kept = Candidate(str(prov.get("app")), cur, prov.get("at"))
            stale = Candidate(app, new, observed_at)
            why = "newest by remote timestamp: older than the current value"
            detail = {"candidates": _cands([kept, stale]), "winner": kept.app}
            out.conflicts.append(Conflict(entity.id, name, [kept, stale], "newest", "auto", kept.app))
            out.changes.append(
                Change(
                    entity.id, name, cur, new, app, f"conflict lost: {why}", detail, code=ReasonCode.CONFLICT
                )
            )
            continue
        if known and same(cur, base):
            flips = _flips(entity, name, app, new)
            if flips >= OSCILLATION_FLIPS:
                _park_oscillation(out, entity, name, app, new, observed_at)
                continue
            _take(
                out,
                entity,
                name,
                new,
                app,
                observed_at,
                run,
                f"changed in {app}",
                code=ReasonCode.CHANGED,
                flips=flips,
            )
            continue
        # The canonical value moved too (or this is a first match): a real conflict.
        other = Candidate(str(prov.get("app") or "syncd"), cur, prov.get("at"))
        candidates = [other, Candidate(app, new, observed_at)]
        policy = mapping.conflict_policy(name)
        if not known and mapping.initial_conflict == "review":
            winner, why = None, "values differ at first match: left for review"
        else:
            winner, why = decide(policy, candidates, mapping.apps)
        if winner is None:
            out.conflicts.append(Conflict(entity.id, name, candidates, policy.policy, "open"))
            out.changes.append(
                Change(
                    entity.id,
                    name,
                    cur,
                    new,
                    app,
                    "conflict: " + why,
                    {"candidates": _cands(candidates)},
                    code=ReasonCode.CONFLICT,
                )
            )
            continue
        out.conflicts.append(Conflict(entity.id, name, candidates, policy.policy, "auto", winner.app))
        detail = {"candidates": _cands(candidates), "winner": winner.app}
        for loser in candidates:
            if loser is not winner:
                out.changes.append(
                    Change(
                        entity.id,
                        name,
                        winner.value,
                        loser.value,
                        loser.app,
                        f"conflict lost: {why}",
                        detail,
                        code=ReasonCode.CONFLICT,
                    )
                )
        if winner.app == app:
            _take(
                out,
                entity,
                name,
                new,
                app,
                observed_at,
                run,
                f"conflict won by {app}: {why}",
                detail,
                code=ReasonCode.CONFLICT,
            )
    return out


def _cands(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    return [{"app": c.app, "value": c.value, "at": c.at} for c in candidates]


#: How many times in a row a field may swing back to the value it had before, each time from
#: another app, before syncd calls it an oscillation and parks the field.
OSCILLATION_FLIPS = 3


def _flips(entity: Entity, name: str, app: str, new: Any) -> int:
    """Consecutive swings of ``name`` between two values, counting this change from ``app``.

    A swing is a change back to the value the field held before its current value, made by an
    app other than the one that set the current value: what two apps that normalise one value
    into different forms do to each other after every write of ours.
    """
    prov = entity.provenance.get(name) or {}
    setter = prov.get("app")
    if setter in (None, app) or "prev" not in prov or not same(prov["prev"], new):
        return 0
    return int(prov.get("flips", 0)) + 1


def _outranks(mapping: MappingView, name: str, app: str, other: Any) -> bool:
    """Whether ``app`` comes before ``other`` in the field's conflict order (owner, then priority)."""
    policy = mapping.conflict_policy(name)
    if other in (None, app) or policy.policy in ("review", "newest"):
        return False
    order = ([policy.owner] if policy.owner else []) + _order(policy, mapping.apps)
    rank = {a: i for i, a in reversed(list(enumerate(order)))}
    return rank.get(app, len(rank)) < rank.get(str(other), len(rank))


def _stale(mapping: MappingView, name: str, prov: Mapping[str, Any], app: str, at: str | None) -> bool:
    """A change from ``app`` stamped before the current value (set by another app), under "newest"."""
    setter, current_at = prov.get("app"), prov.get("at")
    if mapping.conflict_policy(name).policy != "newest" or setter in (None, app) or not at or not current_at:
        return False
    return str(at) < str(current_at)


def _transform_hint(a: Any, b: Any) -> str:
    """The transform that would give both forms of a value one canonical form, where one is evident."""
    if isinstance(a, str) and isinstance(b, str):
        if a.strip() == b.strip():
            return '"trim"'
        if " ".join(a.split()) == " ".join(b.split()):
            return '"collapse"'
        if a.casefold() == b.casefold():
            return '{ case = "lower" } (or "upper", "title")'
        if [c for c in a if c.isdigit()] == [c for c in b if c.isdigit()]:
            return '{ e164 = "<region>" }'
    return "{ map = { ... } }"


def _park_oscillation(out: Outcome, entity: Entity, name: str, app: str, new: Any, at: str | None) -> None:
    """Stop a field that two apps keep rewriting into their own forms: park it for a person."""
    prov = entity.provenance.get(name) or {}
    other = Candidate(str(prov.get("app") or "syncd"), entity.values.get(name), prov.get("at"))
    candidates = [other, Candidate(app, new, at)]
    message = (
        f"oscillation: {other.app} keeps {other.value!r} and {app} keeps {new!r} for {name}, "
        f"each rewriting the other's form after every write; parked. Declare a transform on "
        f"fields.{name} so both forms have one canonical value, e.g. transforms = "
        f"[{_transform_hint(other.value, new)}], then resolve this conflict"
    )
    out.conflicts.append(
        Conflict(entity.id, name, candidates, "review", "open", kind="oscillation", note=message)
    )
    out.changes.append(
        Change(
            entity.id,
            name,
            other.value,
            new,
            app,
            message,
            {"candidates": _cands(candidates)},
            code=ReasonCode.OSCILLATION,
        )
    )
    out.oscillations.append(name)


def _take(
    out: Outcome,
    entity: Entity,
    name: str,
    value: Any,
    app: str,
    at: str | None,
    run: int | None,
    reason: str,
    detail: dict[str, Any] | None = None,
    *,
    code: ReasonCode,
    flips: int = 0,
) -> None:
    old = entity.values.get(name)
    out.changes.append(Change(entity.id, name, old, value, app, reason, detail, code=code))
    entity.values[name] = value
    entity.provenance[name] = {"app": app, "at": at, "run": run, "prev": old, "flips": flips}
    out.changed = True


def new_entity_values(
    mapping: MappingView,
    entity: Entity,
    app: str,
    observed: Mapping[str, Any],
    at: str | None,
    run: int | None,
) -> list[Change]:
    """Fill a brand-new entity from its first record; one change-log entry for the record.

    The entry's ``new`` holds every value taken (field -> value): a first sync of N records
    logs N rows, not one per field.
    """
    taken: dict[str, Any] = {}
    for name in mapping.readable(app):
        value = observed.get(name)
        if value is not None and (isinstance(value, bool) or not mapping.is_consent(name)):
            entity.values[name] = value
            entity.provenance[name] = {"app": app, "at": at, "run": run}
            taken[name] = value
    if not taken:
        return []
    return [Change(entity.id, "*", None, taken, app, f"new record in {app}", code=ReasonCode.NEW_RECORD)]


def roundtrip(mapping: MappingView, app: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical values the app would hold after we wrote ``values`` to it."""
    return mapping.to_canonical(app, mapping.to_remote(app, values))
