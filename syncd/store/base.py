"""The state store's interface: what the engine, the daemon and the CLI may ask of a store.

Every backend (SQLite, the embedded default; PostgreSQL for several daemons) implements
``StateStore``. It is the union of one protocol per area (runs and cursors, entities, links and
baselines, change log, conflicts, outbox, inbox, erasure, leases, reports,
health), so a function that
needs one area can say so in its signature. Code above the store sees only these protocols and
the row types below, never a connection or SQL.

A *unit of work* is a plain synchronous function ``fn(store, *args)``: ``AsyncStore.call`` runs
it off the event loop, and whatever it does inside ``store.transaction()`` commits together or
not at all. Rows that are views for people and scripts (conflicts, the change log, the inbox,
receipts) are typed dictionaries, so they serialise to JSON as they are; the engine's own objects
(``Entity``, ``Link``, ``Change``, ``Conflict``, ``Intent``) are dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Concatenate, NotRequired, ParamSpec, Protocol, TypedDict, TypeVar

from syncd.engine.model import Change, Conflict, Entity, Link

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Intent:
    """A durable write intent (outbox row)."""

    id: int
    key: str
    sync: str
    app: str
    object: str
    op: str
    entity_id: int
    remote_id: str | None
    values: dict[str, Any]
    payload: dict[str, Any]
    expected_version: str | None
    status: str
    attempts: int
    last_error: str | None = None
    error_kind: str | None = None
    created_at: str = ""
    #: Who has the intent in flight (a daemon id), under which lease epoch, until when (ISO).
    claimed_by: str | None = None
    claim_epoch: int | None = None
    claim_expires: str | None = None


#: ``(key, sync, app, object, op, entity_id, remote_id, values, payload, expected_version)``
NewIntent = tuple[str, str, str, str, str, int, str | None, dict[str, Any], dict[str, Any], str | None]


class RunRow(TypedDict):
    id: int
    kind: str
    started_at: str
    finished_at: str | None
    stats: str | None


class CursorRow(TypedDict):
    sync: str
    app: str
    cursor: str | None
    updated_at: str


class ChangeRow(TypedDict):
    id: int
    at: str
    run_id: int | None
    sync: str
    entity_id: int | None
    field: str
    old: Any
    new: Any
    app: str | None
    reason: str
    code: str | None
    detail: Any
    #: Where this entry stands in the order the change log is followed in (``changes_after``):
    #: the row's id, or the later position at which it was folded into an older row.
    seq: int


class ConflictRow(TypedDict):
    id: int
    sync: str
    entity_id: int
    field: str
    kind: str
    candidates: list[dict[str, Any]]
    policy: str
    status: str
    winner: str | None
    resolution: Any
    created_at: str
    resolved_at: str | None
    note: str | None
    entity_key: NotRequired[str | None]


class InboxRow(TypedDict):
    id: int
    app: str
    event_id: str
    object: str
    record_id: str
    deleted: int
    received_at: str
    processed_at: str | None
    attempts: int
    not_before: str | None
    error: str | None


class LeaseRow(TypedDict):
    name: str
    holder: str
    expires_at: float
    acquired_at: str
    #: The fencing token: it grows each time the lease changes hands (never on a renewal).
    epoch: int


class DaemonRow(TypedDict):
    """One daemon's latest heartbeat in the registry (``info`` is what it chose to publish)."""

    daemon_id: str
    info: dict[str, Any]
    seen_at: float
    expires_at: float


class ErasureRow(TypedDict):
    id: int
    key_hash: str
    requested_at: str
    finished_at: str | None
    status: str
    apps: Any


class AppHealthRow(TypedDict):
    """What the state knows of one app's reads, for ``syncd status``: the last successful and the
    last failed read (with its ``syncd.failures.failure`` record), why it is paused (None when it
    is not) and the run of its last complete listing."""

    app: str
    last_ok_at: str | None
    last_failed_at: str | None
    failure: dict[str, Any] | None
    paused: str | None
    complete_run: int | None
    updated_at: str


class HeldDeleteRow(TypedDict):
    """Deletes the mass-delete guard held back for one app of one sync, and what became of them.

    ``status``: ``held`` (waiting for a person; at most one per sync and app), ``approved`` (the
    next complete listing may delete those of them still missing), ``rejected`` (kept; no alert
    while the missing records stay within this set), ``applied`` (an approval was carried out),
    ``cleared`` (a later listing found the records back, or too few missing to hold).
    ``sample`` is bounded evidence: ``{"entity_id", "key", "remote_id"}`` of some missing records.
    """

    id: int
    sync: str
    app: str
    status: str
    created_at: str
    updated_at: str
    run_id: int | None
    trips: int
    linked: int
    missing: int
    sample: list[dict[str, Any]]
    decided_by: str | None
    decided_at: str | None
    why: str | None
    applied_at: str | None


class Transactional(Protocol):
    def transaction(self) -> AbstractContextManager[None]:
        """One atomic unit; nested calls join the outer transaction."""
        ...

    def run(self, fn: Callable[Concatenate[StateStore, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the unit of work ``fn(store, ...)``. A backend that runs it as one transaction may
        replay it on a serialization failure, so a unit must be retry-safe (no I/O inside)."""
        ...

    def close(self) -> None: ...


class Tables(Protocol):
    """The state's tables as rows, for copying a state between backends (``syncd state migrate``)."""

    def read_table(self, table: str, after: int | None, limit: int) -> list[dict[str, Any]]:
        """Rows of ``table`` in key order: for tables keyed by ``id``, up to ``limit`` rows with
        ``id > after``; for the others every row when ``after`` is None, else none."""
        ...

    def write_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None: ...
    def count_rows(self, table: str) -> int: ...
    def clear_tables(self) -> None:
        """Empty every table of the state (the schema stays)."""
        ...


class RunsAndCursors(Protocol):
    def begin_run(self, kind: str) -> int: ...
    def finish_run(self, run_id: int, stats: dict[str, Any]) -> None: ...
    def latest_run(self) -> int: ...
    def last_run(self, kind: str) -> RunRow | None: ...
    def prune_runs(self, older_than: str) -> int: ...
    def get_cursor(self, sync: str, app: str) -> dict[str, Any] | None: ...
    def set_cursor(self, sync: str, app: str, cursor: dict[str, Any] | None) -> None: ...
    def cursors(self) -> list[CursorRow]: ...


class Entities(Protocol):
    def entities(self, ids: Iterable[int]) -> dict[int, Entity]: ...
    def entities_by_key(self, sync: str, keys: Iterable[str]) -> dict[str, Entity]: ...
    def new_entity(self, sync: str, key: str | None) -> Entity: ...
    def save_entities(self, entities: Iterable[Entity], *, dirty: bool | None = None) -> None: ...
    def mark_dirty(self, ids: Iterable[int], dirty: bool = True) -> None: ...
    def dirty_ids(self, sync: str, limit: int, after: int = 0) -> list[int]: ...
    def find_entity(self, sync: str | None, key: str) -> Entity | None: ...
    def count_entities(self, sync: str) -> dict[str, int]: ...


class Links(Protocol):
    def links_by_alias(self, sync: str, app: str, aliases: Iterable[str]) -> dict[str, Link]: ...
    def links_by_remote(self, sync: str, app: str, remote_ids: Iterable[str]) -> dict[str, Link]: ...
    def links_of(self, entity_ids: Iterable[int]) -> dict[int, dict[str, Link]]: ...
    def app_links(self, entity_ids: Iterable[int], app: str) -> dict[int, Link]: ...
    def save_links(self, sync: str, links: Iterable[Link], run_id: int | None = None) -> None: ...
    def drop_links(self, ids: Iterable[int]) -> None: ...
    def mark_seen(self, sync: str, app: str, remote_ids: Sequence[str], run_id: int) -> None: ...
    def count_links(self, sync: str, app: str) -> int: ...
    def count_links_listed(self, sync: str, app: str, remote_ids: Collection[str]) -> int:
        """How many of the app's links have one of ``remote_ids`` (distinct ids)."""
        ...

    def unseen_links(self, sync: str, app: str, run_id: int, limit: int) -> list[Link]: ...
    def count_unseen(self, sync: str, app: str, run_id: int) -> int: ...


class ChangeLog(Protocol):
    def log_changes(self, sync: str, changes: Iterable[Change], run_id: int | None) -> int: ...
    def changelog(
        self,
        *,
        entity_id: int | None = None,
        sync: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[ChangeRow]: ...
    def changelog_position(self) -> int:
        """How far the change log can be followed now: every entry at or below this position
        that will ever be visible is visible (``changes_after`` reads up to it)."""
        ...

    def changes_after(self, after: int, limit: int = 200) -> tuple[list[ChangeRow], int]:
        """Entries written after position ``after``, oldest first, and the position to ask from
        next time. Ids stay stable for references (``before=`` paging); a row folded into after it
        was written comes back with only its new parts (``encoding.follow_parts``). At most about
        ``limit`` entries; call again from the returned position for more."""
        ...

    def prune_changelog(self, older_than: str) -> int: ...
    def count_drift(self, run_id: int, app: str) -> int: ...


class Conflicts(Protocol):
    def add_conflicts(self, sync: str, conflicts: Iterable[Conflict]) -> None: ...
    def parked_fields(self, entity_ids: Iterable[int]) -> dict[int, set[str]]: ...
    def update_parked(self, entity_id: int, field: str, app: str, value: Any, at: str | None) -> None: ...
    def add_conflict_candidate(self, entity_id: int, field: str, app: str, value: Any) -> bool: ...
    def conflicts(
        self,
        *,
        status: str | None = "open",
        sync: str | None = None,
        entity_id: int | None = None,
        kind: str | None = None,
        limit: int = 1000,
    ) -> list[ConflictRow]: ...
    def conflict(self, conflict_id: int) -> ConflictRow | None: ...
    def close_conflict(self, conflict_id: int, winner: str | None, resolution: Any) -> None: ...
    def count_conflicts(self, status: str = "open") -> int: ...


class HeldDeletes(Protocol):
    def hold_deletes(
        self,
        sync: str,
        app: str,
        *,
        linked: int,
        missing: int,
        sample: Sequence[Mapping[str, Any]],
        records: Sequence[str],
        run_id: int | None,
    ) -> int:
        """Record a trip of the guard: the open (``held``) hold of ``sync``/``app`` is updated
        with this listing's evidence (one more trip), or a new one opened. Returns its id.
        ``records`` are every missing remote id; ``sample`` a few of them, for people."""
        ...

    def held_deletes(
        self,
        *,
        status: str | None = None,
        sync: str | None = None,
        app: str | None = None,
        limit: int = 1000,
    ) -> list[HeldDeleteRow]:
        """Holds, newest first (``status=None``: every status)."""
        ...

    def held_delete(self, hold_id: int) -> HeldDeleteRow | None: ...
    def held_delete_records(self, hold_id: int) -> list[str]:
        """Every remote id the hold's latest listing lacked (sorted)."""
        ...

    def decide_held_delete(self, hold_id: int, status: str, by: str, why: str) -> bool:
        """Set a ``held`` hold to ``status`` (approved or rejected) with who and why; False (and
        nothing changed) if the hold is not ``held`` any more."""
        ...

    def close_held_delete(self, hold_id: int, status: str) -> None:
        """End a hold for good (``applied`` or ``cleared``), stamping ``applied_at``."""
        ...


class Outbox(Protocol):
    def enqueue(self, intents: Iterable[NewIntent]) -> int: ...
    def quarantine_reads(
        self, sync: str, app: str, obj: str, items: Iterable[tuple[str, int, str]]
    ) -> int: ...
    def release_quarantine(self, sync: str, app: str, remote_ids: Sequence[str]) -> int: ...
    def has_quarantined_reads(self, sync: str, app: str) -> bool: ...
    def busy_apps(self, entity_ids: Iterable[int]) -> dict[int, set[str]]: ...
    def claim(
        self,
        app: str,
        op: str | None,
        limit: int,
        *,
        now: str | None = None,
        owner: str | None = None,
        epoch: int = 0,
        ttl: float | None = None,
    ) -> list[Intent]: ...
    def pending_apps(self) -> list[str]: ...
    def settle(
        self,
        intent_id: int,
        status: str,
        error: str | None = None,
        kind: str | None = None,
        *,
        owner: str | None = None,
        epoch: int | None = None,
    ) -> bool: ...
    def retry_later(
        self,
        intent_id: int,
        error: str,
        not_before: str,
        *,
        owner: str | None = None,
        epoch: int | None = None,
    ) -> bool: ...
    def outbox_depth(self) -> int: ...
    def next_due(self) -> str | None: ...
    def dead_letters(self, limit: int = 1000) -> list[Intent]: ...
    def intent(self, intent_id: int) -> Intent | None: ...
    def entity_has_open_intent(self, entity_id: int, app: str) -> bool: ...
    def sent_creates(self, app: str, entity_ids: Sequence[int]) -> dict[int, Intent]:
        """Per entity, its open create intent for ``app`` that was claimed at least once: sent,
        perhaps, with its answer lost (a crash, a timeout). Entities without one are left out."""
        ...

    def count_dead_letters(self) -> int: ...


class Inbox(Protocol):
    def inbox_add(self, app: str, events: Iterable[tuple[str, str, str, bool]]) -> int: ...
    def inbox_pending(
        self, limit: int = 1000, exclude: Sequence[str] = (), *, now: str | None = None
    ) -> list[InboxRow]: ...
    def inbox_retry(
        self, ids: Iterable[int], error: str, not_before: str, max_attempts: int
    ) -> list[InboxRow]: ...
    def count_inbox_pending(self) -> int: ...
    def inbox_done(self, ids: Iterable[int]) -> None: ...
    def prune_inbox(self, older_than: str) -> int: ...


class Erasure(Protocol):
    def key_salt(self) -> str: ...
    def hash_key(self, key: str) -> str: ...
    def suppressed(self, hashes: Iterable[str]) -> set[str]: ...
    def has_suppressions(self) -> bool: ...
    def suppress(self, key_hash: str, erasure_id: int) -> None: ...
    def save_erasure(
        self, erasure_id: int | None, key_hash: str, status: str, apps: dict[str, Any]
    ) -> int: ...
    def erasures(self, status: str | None = None, limit: int = 1000) -> list[ErasureRow]: ...
    def scrub(self, entity_ids: Sequence[int], records: Mapping[str, Sequence[str]]) -> dict[str, int]: ...


class Leases(Protocol):
    def take_lease(self, name: str, holder: str, now: float, ttl: float) -> LeaseRow: ...
    def steal_lease(self, name: str, old_holder: str, holder: str, now: float, ttl: float) -> bool: ...
    def renew_lease(
        self, name: str, holder: str, now: float, ttl: float, *, epoch: int | None = None
    ) -> bool: ...
    def release_lease(self, name: str, holder: str, *, epoch: int | None = None) -> None: ...


class DirtyClaims(Protocol):
    """Dirty entities as units of work shared by several daemons.

    ``mark_dirty`` bumps an entity's dirty generation; ``claim_dirty`` hands out ``(entity id,
    generation)`` pairs no other live claim holds; ``ack_dirty`` clears the flag only where the
    generation is still the claimed one (an event that arrived meanwhile keeps the row dirty).
    """

    def claim_dirty(
        self, sync: str, limit: int, owner: str, ttl: float, *, now: float | None = None
    ) -> list[tuple[int, int]]: ...
    def ack_dirty(self, items: Iterable[tuple[int, int]]) -> int: ...


class RateBudgets(Protocol):
    def take_tokens(self, name: str, n: float, rate: float, burst: float, now: float) -> float:
        """Take ``n`` tokens from bucket ``name`` (``rate`` per second, at most ``burst``) if they
        are there: 0.0. Otherwise nothing is taken and the answer is the seconds to wait."""
        ...


class DaemonRegistry(Protocol):
    def heartbeat(self, daemon_id: str, info: dict[str, Any], now: float, ttl: float) -> None: ...
    def live_daemons(self, now: float) -> list[DaemonRow]: ...


class Health(Protocol):
    """The facts ``syncd status`` reports, kept where every process can read them."""

    def record_read(
        self,
        app: str,
        *,
        ok: bool,
        failure: dict[str, Any] | None = None,
        paused: str | None = None,
        complete_run: int | None = None,
    ) -> None:
        """One read of ``app`` ended: ``ok`` (it also ends a pause; ``complete_run`` is the run of
        a complete listing) or failed with ``failure`` (``paused`` says why the app is paused)."""
        ...

    def app_health(self) -> dict[str, AppHealthRow]: ...
    def outbox_by_app(self) -> dict[str, dict[str, int]]:
        """Per app: ``pending`` writes (pending or in flight) and ``dead`` letters."""
        ...

    def last_webhooks(self) -> dict[str, str]:
        """Per app: when its newest webhook event was received (ISO)."""
        ...

    def budget_levels(self, now: float) -> dict[str, float]:
        """Per shared rate bucket: the fraction of its burst in use at ``now`` (0.0 to 1.0)."""
        ...

    def live_leases(self, now: float) -> list[LeaseRow]:
        """The leases held at ``now`` (not expired), by name."""
        ...


class StateStore(
    Transactional,
    RunsAndCursors,
    Entities,
    Links,
    ChangeLog,
    Conflicts,
    HeldDeletes,
    Outbox,
    Inbox,
    Erasure,
    Leases,
    DirtyClaims,
    RateBudgets,
    DaemonRegistry,
    Health,
    Tables,
    Protocol,
):
    """Everything a state store offers (see the module docstring)."""
