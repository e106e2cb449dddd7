"""The engine's data: entities, links (with baselines), change-log entries, conflicts, planned writes.

Plain mutable dataclasses owned by one reconcile step at a time; the store turns them into rows.
Values are canonical (the mapping's canonical form): JSON scalars, or sorted lists for set fields.
"""

from __future__ import annotations

import dataclasses
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

    # Counted as drift by a full reconciliation.
    CHANGED = "changed"  # a field changed in an app and the new value was taken
    MERGED = "merged"  # a set field merged from several apps
    UNSUBSCRIBED = "unsubscribed"  # a consent field went to "no" in an app
    CONFLICT = "conflict"  # a conflict was parked or decided by a rule
    MISSING = "missing"  # a record was missing from an app's complete listing
    # Reading and matching.
    NEW_RECORD = "new_record"  # a record seen for the first time: a new entity and all its values
    FIRST_VALUE = "first_value"  # a field the entity had no value for took an app's value
    LINKED = "linked"  # a record was linked to an existing entity by its natural key
    HELD = "held"  # an app changed a field parked in an open conflict; only its side was noted
    OSCILLATION = "oscillation"  # two apps kept rewriting each other's form: the field is parked
    IDENTITY = "identity"  # two records of one app share a key: the key's sync is halted
    IDENTITY_CLOSED = "identity_closed"  # an identity conflict ended: one of its records is gone
    KEY_CHANGED = "key_changed"  # the entity's natural key changed with its values
    LINK_MOVED = "link_moved"  # an app gave a record a new id (or merged it): the link follows
    RELINKED = "relinked"  # a gone record's key came back on a new record: linked to that one
    MERGED_IN_APP = "merged_in_app"  # an app merged a record into one another entity holds
    OUT_OF_SCOPE = "out_of_scope"  # the entity left an app's scope: unlinked there
    # Deletes and their policy.
    REMOTE_DELETED = "remote_deleted"  # an app said a record is deleted (positive evidence)
    EDIT_WINS = "edit_wins"  # edited after (or while) it was deleted elsewhere: it stays
    RESTORED = "restored"  # a deleted or archived entity came back with its key
    RECREATED = "recreated"  # a new record with a deleted entity's key starts it afresh
    MASS_DELETE_GUARD = "mass_delete_guard"  # a listing missed too many records: no deletes
    # Writes.
    CREATED = "created"  # syncd created the record in an app
    WRITTEN = "written"  # syncd wrote a field to an app
    DELETED = "deleted"  # syncd deleted the record in an app
    REJECTED = "rejected"  # an app refused a write (a dead letter)
    REFUSED = "refused"  # syncd did not create a record (its natural key is empty)
    # People.
    RESOLVED = "resolved"  # an admin settled a conflict
    DELETES_APPROVED = "deletes_approved"  # an admin let deletes held by the guard go ahead
    DELETES_REJECTED = "deletes_rejected"  # an admin kept the records the guard held deletes of
    ADMIN = "admin"  # an admin acted without changing a value (kept a conflict parked, replayed a write)
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
    #: The machine-readable reason; the prose ``reason`` is for people. Given by keyword.
    code: ReasonCode = dataclasses.field(kw_only=True)


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
