"""The engine's data: entities, links (with baselines), change-log entries, conflicts, planned writes.

Plain mutable dataclasses owned by one reconcile step at a time; the store turns them into rows.
Values are canonical (the mapping's canonical form): JSON scalars, or sorted lists for set fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

EntityState = Literal["active", "deleted", "archived"]
WriteOp = Literal["create", "update", "delete"]


@dataclass
class Entity:
    """A synced thing (a person, a company) and its agreed canonical values."""

    id: int
    sync: str
    key: str | None
    values: dict[str, Any] = field(default_factory=dict)
    #: field -> {"app": name, "at": remote timestamp (ISO) or None, "run": run id}
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    state: EntityState = "active"
    #: Apps this entity must not be (re)created in: unlinked by policy or left the app's scope.
    excluded: list[str] = field(default_factory=list)


@dataclass
class Link:
    """An entity's record in one app, with the baseline: what that record was last known to hold."""

    id: int | None
    entity_id: int
    app: str
    remote_id: str
    baseline: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    remote_updated_at: str | None = None
    #: field -> [value we wrote, value the app kept] when the app kept a shortened value.
    coerced: dict[str, list[Any]] = field(default_factory=dict)
    #: The app's second, stable id for the record (``RemoteRecord.alias``), where it has one.
    alias: str | None = None


class ReasonCode(StrEnum):
    """Why a change-log row was written, for machines (the row's ``reason`` is for people).

    Reports count by code (drift: changed, merged, unsubscribed, conflict, missing), never by
    parsing the prose.
    """

    CHANGED = "changed"  # a field changed in an app and the new value was taken
    MERGED = "merged"  # a set field merged from several apps
    UNSUBSCRIBED = "unsubscribed"  # a consent field went to "no" in an app
    CONFLICT = "conflict"  # a conflict was parked or decided by a rule
    MISSING = "missing"  # a record was missing from an app's complete listing
    OTHER = "other"  # rows written before codes existed, whose prose matched none of the above


@dataclass(frozen=True)
class Change:
    """One change-log entry: a decision about one field (or the record, with ``field="*"``)."""

    entity_id: int
    field: str
    old: Any
    new: Any
    app: str | None
    reason: str
    detail: dict[str, Any] | None = None
    #: The machine-readable reason (see ``ReasonCode``); the prose ``reason`` is for people.
    code: str | None = None


@dataclass(frozen=True)
class Candidate:
    """One side of a conflict: the value an app holds and the app's timestamp for it."""

    app: str
    value: Any
    at: str | None = None


@dataclass
class Conflict:
    """A field on which apps disagree. ``status`` is ``open`` (waiting for a person) or ``auto``."""

    entity_id: int
    field: str
    candidates: list[Candidate]
    policy: str
    status: Literal["open", "auto", "resolved"] = "open"
    winner: str | None = None
    kind: Literal["field", "identity", "oscillation"] = "field"
    #: What a person should know to settle it (e.g. the transform that would end an oscillation).
    note: str | None = None


@dataclass(frozen=True)
class PlannedWrite:
    """A write the plan wants: ``values`` are canonical, ``payload`` is in the app's shape."""

    entity_id: int
    app: str
    op: WriteOp
    remote_id: str | None
    values: dict[str, Any]
    payload: dict[str, Any]
    expected_version: str | None = None
