"""Compact stored forms of the state's bulkiest columns, shared by both backends.

Provenance says, for each field of an entity, which app gave its value, when and in which run.
Stored as a mapping it repeats the same ``{"app": ..., "at": ..., "run": ...}`` for every field,
although one read usually gave all of them. The stored form groups the fields by identical
provenance, once per group::

    [["left", "2026-01-01T00:00:00Z", 3, "*"]]                   # every value came from one read
    [["left", "2026-01-01T00:00:00Z", 3, ["email"]],
     [{"app": "crm", "at": "...", "run": 4, "prev": "x"}, "*"]]  # any other shape, as a mapping

A group is ``[app, at, run, fields]`` when its provenance holds exactly those three keys, and
``[provenance, fields]`` otherwise. ``fields`` is a list of names, or ``"*"`` for "every field of
the entity's values that no other group names"; ``"*"`` is written only when the provenance
covers exactly the fields of the values, so reading it back gives the same mapping. Text that
is a JSON object is provenance stored in full (states written before this form, or by hand):
it reads back as it is.

The change log keeps one stored row per new entity for its first run (see ``plan_changelog``).
Folding a row into one already committed must not hide it from whoever follows the log: every
row has a position in one ascending sequence (``seq``), which a fold moves to a fresh value, and
each part of a row keeps the position it was written at (see ``follow_parts``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.engine.model import Change, ReasonCode

__all__ = [
    "FOLDABLE",
    "ChangePlan",
    "StoredChange",
    "follow_parts",
    "pack_provenance",
    "plan_changelog",
    "stamp_folds",
    "unfold_changes",
    "unpack_provenance",
]

_TRIPLE = ("app", "at", "run")
ALL = "*"


def pack_provenance(
    values: Mapping[str, Any], provenance: Mapping[str, Mapping[str, Any]]
) -> list[Any] | dict[str, Any]:
    """The stored form of ``provenance`` (a JSON-ready list of groups).

    Provenance whose entries are not mappings (never written by syncd) is kept in full."""
    if not all(isinstance(p, Mapping) for p in provenance.values()):
        return dict(provenance)
    groups: dict[Any, tuple[Mapping[str, Any], list[str]]] = {}
    for name in sorted(provenance):
        prov = provenance[name]
        # Group by content (key order does not matter): the usual entry is the triple of app,
        # time and run; any other entry by a canonical text of its items.
        ident: Any
        if len(prov) == 3 and all(k in prov for k in _TRIPLE):
            ident = (prov["app"], prov["at"], prov["run"])
            if not all(type(part) is str or type(part) is int for part in ident):
                ident = repr(sorted(prov.items(), key=lambda kv: kv[0]))
        else:
            ident = repr(sorted(prov.items(), key=lambda kv: kv[0]))
        groups.setdefault(ident, (prov, []))[1].append(name)
    ordered = sorted(groups.values(), key=lambda g: g[1][0])
    star: int | None = None
    if set(provenance) == set(values) and ordered:
        star = max(range(len(ordered)), key=lambda i: len(ordered[i][1]))
    out: list[Any] = []
    for i, (prov, names) in enumerate(ordered):
        fields: Any = ALL if i == star else names
        if len(prov) == 3 and all(k in prov for k in _TRIPLE) and isinstance(prov["app"], str):
            out.append([prov["app"], prov["at"], prov["run"], fields])
        else:
            out.append([dict(prov), fields])
    return out


def unpack_provenance(values: Mapping[str, Any], stored: Any) -> dict[str, dict[str, Any]]:
    """Provenance as the engine uses it, from its stored form (or from a full mapping)."""
    if stored is None:
        return {}
    if isinstance(stored, dict):
        return stored
    out: dict[str, dict[str, Any]] = {}
    rest: dict[str, Any] | None = None
    for group in stored:
        if len(group) == 4:
            app, at, run, fields = group
            prov: dict[str, Any] = {"app": app, "at": at, "run": run}
        else:
            prov, fields = group
        if fields == ALL:
            rest = prov
            continue
        for name in fields:
            out[name] = dict(prov)
    if rest is not None:
        for name in values:
            if name not in out:
                out[name] = dict(rest)
    return out


#: Codes of the rows that go with a new entity's first read in the same run: how its records
#: in other apps came to be linked (created there, or matched by key) and what was written or
#: first filled in. None of them counts as drift (``count_drift`` reads stored rows only).
FOLDABLE = frozenset({ReasonCode.CREATED, ReasonCode.LINKED, ReasonCode.WRITTEN, ReasonCode.FIRST_VALUE})


@dataclass
class StoredChange:
    """One change-log row to insert; ``folded`` holds later rows told in it (or None)."""

    change: Change
    folded: list[list[Any]] | None = None


@dataclass
class ChangePlan:
    """What ``log_changes`` stores: new rows in order, and stored rows that take more folds."""

    rows: list[StoredChange] = field(default_factory=list)
    #: Stored row id -> its folded rows (those it had plus the new ones).
    updates: dict[int, list[list[Any]]] = field(default_factory=dict)
    #: Stored row id -> how many of its folded rows it had before (the rest are new).
    had: dict[int, int] = field(default_factory=dict)

    def insert_rows(
        self, stamp: str, run_id: int | None, sync: str, dumps: Callable[[Any], str]
    ) -> list[tuple[Any, ...]]:
        """The new rows as both backends insert them: (at, run_id, sync, entity_id, field, old,
        new, app, reason, code, detail, folded), JSON columns as ``dumps`` writes them."""
        return [
            (
                stamp,
                run_id,
                sync,
                r.change.entity_id,
                r.change.field,
                dumps(r.change.old),
                dumps(r.change.new),
                r.change.app,
                r.change.reason,
                str(r.change.code),
                dumps(r.change.detail) if r.change.detail is not None else None,
                dumps(r.folded) if r.folded else None,
            )
            for r in self.rows
        ]


def _fold(change: Change, stamp: str) -> list[Any]:
    return [
        stamp,
        change.field,
        change.old,
        change.new,
        change.app,
        change.reason,
        str(change.code),
        change.detail,
    ]


def plan_changelog(
    changes: Iterable[Change],
    run_id: int | None,
    stamp: str,
    anchors: Mapping[int, tuple[int, list[list[Any]]]],
) -> ChangePlan:
    """Fold each row that goes with a new entity's first read into that read's row.

    A new record used to cost a row for its read ("new record in left") and one more for each
    app it was then created in or matched in, each write, each first value. When the entity's
    latest row is its ``new_record`` row of the same run, such a row (a code in ``FOLDABLE``)
    is stored inside it instead, with its own time, field, values, app, reason, code and detail:
    ``unfold_changes`` gives it back as a row of its own, so the entity's history reads the same.
    Any other row for the entity ends the folding (history stays in order).

    ``anchors`` maps entity ids to their stored latest row when that is such a ``new_record``
    row of ``run_id``: ``(row id, its folded rows)``.
    """
    plan = ChangePlan()
    stored = {eid: (row_id, list(folds)) for eid, (row_id, folds) in anchors.items()}
    fresh: dict[int, StoredChange] = {}
    for change in changes:
        eid = change.entity_id
        if eid is not None and run_id is not None:
            if change.code == ReasonCode.NEW_RECORD:
                row = StoredChange(change)
                plan.rows.append(row)
                fresh[eid] = row
                stored.pop(eid, None)
                continue
            if change.code in FOLDABLE:
                if eid in fresh:
                    target = fresh[eid]
                    target.folded = [*(target.folded or []), _fold(change, stamp)]
                    continue
                if eid in stored:
                    row_id, folds = stored[eid]
                    plan.had.setdefault(row_id, len(folds))
                    folds.append(_fold(change, stamp))
                    plan.updates[row_id] = folds
                    continue
        plan.rows.append(StoredChange(change))
        if eid is not None:
            fresh.pop(eid, None)
            stored.pop(eid, None)
    return plan


def stamp_folds(plan: ChangePlan, row_id: int, seq: int) -> list[list[Any]]:
    """The folded rows of stored row ``row_id`` with the ones this plan adds marked with ``seq``,
    the row's new position in the change log (a follower that saw the row before sees it again
    at ``seq`` and takes only the parts written since)."""
    folds = plan.updates[row_id]
    for entry in folds[plan.had.get(row_id, 0) :]:
        if len(entry) == 8:
            entry.append(seq)
    return folds


def unfold_changes(row: dict[str, Any], folded: Sequence[Sequence[Any]] | None) -> list[dict[str, Any]]:
    """A stored change-log row (values already decoded) and the rows folded in it, newest first
    (the order ``changelog`` lists rows in). Folded rows share the stored row's id, run and sync.

    Each part carries its ``seq``: the position in the change log it was written at (the row's
    id for the row itself and for rows folded in as it was inserted; the fold's own position for
    rows folded in later)."""
    out: list[dict[str, Any]] = []
    for entry in reversed(folded or ()):
        at, name, old, new, app, reason, code, detail = entry[:8]
        out.append(
            {
                **row,
                "at": at,
                "field": name,
                "old": old,
                "new": new,
                "app": app,
                "reason": reason,
                "code": code,
                "detail": detail,
                "seq": entry[8] if len(entry) > 8 else row["id"],
            }
        )
    out.append({**row, "seq": row["id"]})
    return out


def follow_parts(rows: Iterable[dict[str, Any]], after: int, upto: int) -> list[dict[str, Any]]:
    """The parts of decoded stored rows (each with its ``folded`` list) written at positions in
    ``(after, upto]``, oldest first: what a follower that has seen everything up to ``after``
    has not seen yet. A row folded into since the follower last looked comes back whole; the
    parts it showed then have positions up to ``after`` and are left out."""
    parts: list[tuple[int, int, int, dict[str, Any]]] = []
    for row in rows:
        folded = row.pop("folded", None)
        unfolded = unfold_changes(row, folded)[::-1]  # the row first, then its folds in order
        for n, part in enumerate(unfolded):
            if after < part["seq"] <= upto:
                parts.append((part["seq"], part["id"], n, part))
    parts.sort(key=lambda p: p[:3])
    return [p[3] for p in parts]
