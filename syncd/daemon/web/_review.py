"""What the review web page reads and changes, apart from HTTP: conflict rows with the rule that
would apply, the writes a resolution will make, dead letters by error kind, and the mapping edit
behind "always prefer app X for this field".

Units of work take a ``StateStore`` (run them with ``store.call``); nothing here knows of aiohttp.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import InlineTable, Table

from syncd.engine import Candidate, Change
from syncd.engine.model import ReasonCode
from syncd.engine.reconcile import decide
from syncd.errors import ConflictNotFound, RefusedValue
from syncd.mapping import Mapping as SyncMapping
from syncd.mapping import MappingError, parse_mapping
from syncd.store import ConflictRow, StateStore
from syncd.store.base import Intent
from syncd.sync.operations import admin_value

#: Conflicts one page of the queue shows.
PAGE_SIZE = 50
#: Most conflicts one bulk action settles (the rest stay for the next one).
BULK_LIMIT = 1000


@dataclass(frozen=True)
class ConflictFilter:
    """Which open conflicts the queue lists: by mapping, field, an app taking part, or entity."""

    sync: str | None = None
    field: str | None = None
    app: str | None = None
    entity: int | None = None

    def matches(self, row: ConflictRow) -> bool:
        return (
            (self.sync is None or row["sync"] == self.sync)
            and (self.field is None or row["field"] == self.field)
            and (self.app is None or any(c["app"] == self.app for c in row["candidates"]))
            and (self.entity is None or row["entity_id"] == self.entity)
        )


def rule_for(mapping: SyncMapping | None, row: ConflictRow) -> str:
    """The conflict rule of the field and what it would pick for this conflict, in words."""
    if mapping is None or row["field"] not in mapping.fields:
        return "no mapping holds this field any more"
    if row["kind"] == "identity":
        return "two records of one app share a key: a person picks which one stays"
    if row["kind"] == "oscillation":
        return "two apps keep rewriting each other's form of the value: a person picks one"
    policy = mapping.conflict_policy(row["field"])
    candidates = [Candidate(c["app"], c["value"], c.get("at")) for c in row["candidates"]]
    winner, why = decide(policy, candidates, mapping.apps)
    name = policy.policy + (f" {policy.owner}" if policy.policy == "owner" and policy.owner else "")
    if winner is None:
        return f"{name}: left for a person"
    return f"{name}: would take {winner.app} ({why})"


def open_conflicts(store: StateStore, wanted: ConflictFilter, limit: int = BULK_LIMIT) -> list[ConflictRow]:
    """Open conflicts matching ``wanted``, oldest first, at most ``limit``."""
    rows = store.conflicts(status="open", sync=wanted.sync, entity_id=wanted.entity, limit=100_000)
    return [r for r in rows if wanted.matches(r)][:limit]


def conflict_views(
    store: StateStore, mappings: Mapping[str, SyncMapping], rows: Sequence[ConflictRow]
) -> list[dict[str, Any]]:
    """Each conflict with its customer's key, the baseline (the value all apps last agreed on),
    each app's value and time, and the rule that would apply."""
    entities = store.entities({r["entity_id"] for r in rows})
    out = []
    for row in rows:
        entity = entities.get(row["entity_id"])
        out.append(
            {
                **row,
                "key": entity.key if entity is not None else None,
                "baseline": entity.values.get(row["field"]) if entity is not None else None,
                "rule": rule_for(mappings.get(row["sync"]), row),
            }
        )
    return out


@dataclass
class Planned:
    """What settling one conflict will do: its new value and the write to each app (or why not)."""

    conflict: ConflictRow
    key: str | None
    action: str
    value: Any = None
    writes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def plan_resolution(
    store: StateStore,
    mappings: Mapping[str, SyncMapping],
    ids: Iterable[int],
    action: str,
    *,
    take: str | None = None,
    value: Any = None,
    allow_empty: bool = False,
) -> list[Planned]:
    """For each conflict: the value ``action`` (``take``, ``value`` or ``park``) gives the field,
    and the writes the next plan makes for it: per app linked to the customer, the field's path
    and the value as that app receives it (after the outbound transforms). A conflict that cannot
    be settled so carries its error instead; the others are unaffected."""
    out: list[Planned] = []
    for conflict_id in ids:
        row = store.conflict(conflict_id)
        if row is None:
            out.append(_missing(conflict_id, action))
            continue
        entity = store.entities([row["entity_id"]]).get(row["entity_id"])
        planned = Planned(row, entity.key if entity is not None else None, action)
        out.append(planned)
        if row["status"] != "open":
            planned.error = f"conflict {conflict_id} is already {row['status']}"
            continue
        if action == "park":
            planned.value = entity.values.get(row["field"]) if entity is not None else None
            continue
        if row["kind"] == "identity":
            planned.error = "an identity conflict is settled with the CLI (syncd conflicts resolve)"
            continue
        if action == "take":
            chosen = [c for c in row["candidates"] if c["app"] == take]
            if not chosen:
                sides = ", ".join(c["app"] for c in row["candidates"])
                planned.error = f"{take} is not a side of conflict {conflict_id} (its sides: {sides})"
                continue
            planned.value = chosen[0]["value"]
        else:
            try:
                planned.value = admin_value(store, mappings, conflict_id, value, allow_empty)
            except (RefusedValue, ConflictNotFound) as exc:
                planned.error = str(exc)
                continue
        mapping = mappings.get(row["sync"])
        if mapping is None or entity is None or row["field"] not in mapping.fields:
            continue
        canonical = {**entity.values, row["field"]: planned.value}
        links = store.links_of([entity.id]).get(entity.id, {})
        spec = mapping.field_specs[row["field"]]
        for app, link in sorted(links.items()):
            app_field = spec.apps.get(app)
            if app_field is None or not app_field.writable:
                continue
            if link.baseline.get(row["field"]) == planned.value:
                continue
            planned.writes.append(
                {"app": app, "path": app_field.path, "value": app_field.outbound_value(canonical)}
            )
    return out


def _missing(conflict_id: int, action: str) -> Planned:
    stub: ConflictRow = {
        "id": conflict_id,
        "sync": "",
        "entity_id": 0,
        "field": "",
        "kind": "field",
        "candidates": [],
        "policy": "",
        "status": "missing",
        "winner": None,
        "resolution": None,
        "created_at": "",
        "resolved_at": None,
        "note": None,
    }
    return Planned(stub, None, action, error=f"no conflict {conflict_id}")


def keep_parked(store: StateStore, conflict_id: int, by: str, why: str) -> ConflictRow:
    """Leave an open conflict parked, noting in the change log who looked and why."""
    with store.transaction():
        row = store.conflict(conflict_id)
        if row is None:
            raise ConflictNotFound(conflict_id)
        entity = store.entities([row["entity_id"]]).get(row["entity_id"])
        current = entity.values.get(row["field"]) if entity is not None else None
        reason = f"conflict {conflict_id} kept parked by {by}" + (f": {why}" if why else "")
        change = Change(
            row["entity_id"],
            row["field"],
            current,
            current,
            None,
            reason,
            {"by": by, "why": why},
            code=ReasonCode.ADMIN,
        )
        store.log_changes(row["sync"], [change], None)
        return row


# -- dead letters ----------------------------------------------------------------------------------


def dead_letter_groups(store: StateStore, limit: int = 1000) -> list[dict[str, Any]]:
    """Dead letters grouped by error kind (then app), each with its customer's key."""
    letters = store.dead_letters(limit)
    entities = store.entities({i.entity_id for i in letters})
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for intent in letters:
        entity = entities.get(intent.entity_id)
        groups[(intent.error_kind or "unknown", intent.app)].append(
            {**vars(intent), "key": entity.key if entity is not None else None}
        )
    return [
        {"kind": kind, "app": app, "letters": rows, "ids": [r["id"] for r in rows]}
        for (kind, app), rows in sorted(groups.items())
    ]


def dead_letters_by_id(store: StateStore, ids: Iterable[int]) -> list[Intent]:
    found = [store.intent(i) for i in ids]
    return [i for i in found if i is not None and i.status == "dead"]


def log_dead_letter_action(
    store: StateStore, intents: Sequence[Intent], verb: str, by: str, why: str
) -> None:
    """One change-log entry per dead letter replayed or dropped, naming who and why."""
    by_sync: dict[str, list[Change]] = defaultdict(list)
    for intent in intents:
        reason = f"dead letter #{intent.id} ({intent.op} to {intent.app}) {verb} by {by}" + (
            f": {why}" if why else ""
        )
        detail = {"by": by, "why": why, "intent": intent.id, "error": intent.last_error}
        by_sync[intent.sync].append(
            Change(intent.entity_id, "*", None, None, intent.app, reason, detail, code=ReasonCode.ADMIN)
        )
    for sync, changes in by_sync.items():
        store.log_changes(sync, changes, None)


# -- "always prefer app X for this field" ----------------------------------------------------------


class MappingEditError(Exception):
    """The mapping file cannot be edited as asked (the message says why); nothing was written."""


@dataclass(frozen=True)
class MappingEdit:
    """The mapping file's text now and with the rule, the unified diff, and the current text's
    digest (the write is refused if the file changed since the diff was shown)."""

    path: Path
    old: str
    new: str
    diff: str
    digest: str


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def prefer_edit(
    mapping: SyncMapping, field_name: str, app: str, *, who: str, known_apps: Iterable[str] | None = None
) -> MappingEdit:
    """The mapping file with ``[fields.<field>.conflict] policy = "owner", owner = <app>``: from then
    on ``app``'s value wins every conflict on the field. Comments and layout are kept; the new
    text is validated as a mapping before anything is shown."""
    if field_name not in mapping.fields:
        raise MappingEditError(f"mapping {mapping.name!r} has no field {field_name!r}")
    if app not in mapping.apps:
        raise MappingEditError(f"{app!r} is not an app of mapping {mapping.name!r}")
    path = Path(mapping.source)
    try:
        old = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingEditError(f"cannot read {path}: {exc.strerror or exc}") from None
    problems: list[str] = []
    for as_table in (True, False):
        # A `[fields.x]` table takes a `[fields.x.conflict]` table; a field written with dotted keys
        # or as an inline table takes an inline `conflict = {...}` (tried when the first is invalid).
        try:
            new = _with_rule(old, field_name, app, who, as_table=as_table)
        except MappingEditError as exc:
            problems.append(str(exc))
            continue
        if new == old:
            raise MappingEditError(f"{field_name} already prefers {app}")
        try:
            parse_mapping(
                new, source=str(path), known_apps=list(known_apps) if known_apps is not None else None
            )
        except MappingError as exc:
            problems.append("the edited mapping would be invalid: " + "; ".join(exc.problems))
            continue
        break
    else:
        raise MappingEditError(f"{path}: cannot add the rule to field {field_name!r}: {problems[0]}")
    diff = "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), str(path), f"{path} (with the rule)"
        )
    )
    return MappingEdit(path, old, new, diff, digest(old))


def _with_rule(text: str, field_name: str, app: str, who: str, *, as_table: bool) -> str:
    doc = tomlkit.parse(text)
    fields = doc.get("fields")
    spec = fields.get(field_name) if isinstance(fields, dict) else None
    if not isinstance(spec, dict):
        raise MappingEditError(f"field {field_name!r} is not written in a way this page can edit")
    existing = spec.get("conflict")
    try:
        if isinstance(existing, dict):
            existing["policy"] = "owner"
            existing["owner"] = app
        elif as_table and not isinstance(spec, InlineTable):
            rule = tomlkit.table()
            rule.add(
                tomlkit.comment(
                    f"{app} wins every conflict on {field_name} (set on the review page by {who})"
                )
            )
            rule.add("policy", "owner")
            rule.add("owner", app)
            if isinstance(spec, Table):
                spec.append("conflict", rule)
            else:
                spec["conflict"] = rule
        else:
            inline = tomlkit.inline_table()
            inline.update({"policy": "owner", "owner": app})
            spec["conflict"] = inline
    except (ValueError, TypeError, tomlkit.exceptions.TOMLKitError) as exc:
        raise MappingEditError(str(exc)) from None
    return tomlkit.dumps(doc)


def write_atomically(path: Path, text: str, expected_digest: str) -> None:
    """Replace ``path`` by ``text`` in one step (a temporary file beside it, flushed to disk, then
    renamed over it): a reader sees the old file or the new one, never half of one. Refused if the
    file no longer holds what the diff was made from."""
    current = path.read_text(encoding="utf-8")
    if digest(current) != expected_digest:
        raise MappingEditError(f"{path} changed since the diff was shown; look at the new diff")
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
