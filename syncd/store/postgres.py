"""The PostgreSQL state store, for several daemons sharing one state.

Why synchronous psycopg 3 with a pool, and not an async driver: the engine's units of work are
plain synchronous functions ``fn(store, *args)`` that make many store calls, often inside
``store.transaction()``, and decide between them. Keeping that model means the same unit runs
on SQLite and on PostgreSQL unchanged, and is type-checked once. ``AsyncStore`` runs each unit on
a worker thread (several threads here, as PostgreSQL has no single-writer limit); the unit
checks out ONE pooled connection (``psycopg_pool``) and runs as ONE transaction on it. The
connection belongs to the thread for that transaction (a thread-local binding), so one
``PgStore`` serves all worker threads.

Isolation: every unit of work runs REPEATABLE READ (a snapshot), so two daemons running units
at once (two ingests touching one entity, a plan racing an ingest, two creates of one natural
key) never decide from a mix of old and new rows, and never both win: PostgreSQL aborts the
second writer of a row with a serialization failure, the unique indexes refuse a second entity
for one natural key or a second link for one record, and ``run`` replays the WHOLE unit on a
fresh snapshot (which then sees the winner's work), a bounded number of times with jittered
back-off. Every decision the engine makes about an entity writes that entity's row (its values,
its dirty flag), so two decisions about one entity always collide on that row. SERIALIZABLE
would catch more (write skew between units writing disjoint rows), but on the engine's large
batched units its predicate locks made almost every concurrent pair abort, so it was measured
out. A unit of work must be retry-safe: it may only read and write the store
(no HTTP calls, no clock-dependent side effects outside the store, no appending to outside
lists it does not reset). The one object the store itself changes, a new ``Link``'s ``id``, is
reset when its transaction rolls back, so a replay inserts it again. A store method called
outside any unit is its own small unit.

The coordination primitives that lock rows explicitly (intent and dirty-entity claims with
``FOR UPDATE SKIP LOCKED``, leases, the token bucket) run READ COMMITTED when called on their
own: the row lock is what makes them atomic, and under that level a waiter re-reads the row
that the lock holder committed instead of failing and retrying. Inside a unit they share its
REPEATABLE READ transaction.

Values are stored as the same JSON text as the SQLite backend (``_dumps``), so a value compares
equal after a round trip through either backend and a state copies between them as it is.
"""

from __future__ import annotations

import functools
import random
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from syncd.engine.model import Change, Conflict, Entity, Link

from . import pg_migrations
from .base import (
    AppHealthRow,
    ChangeRow,
    ConflictRow,
    CursorRow,
    DaemonRow,
    ErasureRow,
    HeldDeleteRow,
    InboxRow,
    Intent,
    LeaseRow,
    NewIntent,
    RunRow,
    StateStore,
)
from .db import (
    _FORGET,
    KEEP_BASELINES,
    LINK_COLUMNS,
    TABLES,
    _after,
    _change_item,
    _dumps,
    _fence,
    _loads,
    _outbox_row,
    _where,
    hash_with_salt,
    now_iso,
    refill,
)
from .encoding import (
    FOLDABLE,
    follow_parts,
    pack_provenance,
    plan_changelog,
    stamp_folds,
    unfold_changes,
    unpack_provenance,
)

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound="PgStore")

#: Errors after which a whole unit of work is replayed on a fresh snapshot.
RETRYABLE: tuple[type[Exception], ...] = (
    errors.SerializationFailure,
    errors.DeadlockDetected,
    errors.UniqueViolation,
)

#: The isolation of units of work (see the module docstring).
UNIT = "REPEATABLE READ"
READ_COMMITTED = "READ COMMITTED"

#: Held (shared) by every transaction that takes change-log positions, from before it takes
#: them until it ends: the followers' horizon waits for its holders (``changelog_position``).
CHANGELOG_LOCK = 0x73796E636C
#: The change log's count: ids of new rows and the positions folds move rows to.
_POSITIONS = "pg_get_serial_sequence('changelog', 'id')"
#: Most horizon observations kept waiting for their writers (more are merged into the newest).
_PENDING = 16


def _atomic(
    isolation: str = UNIT,
) -> Callable[[Callable[Concatenate[S, P], T]], Callable[Concatenate[S, P], T]]:
    """Run a multi-statement method as one unit when it is not called inside one already."""

    def wrap(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
        def inner(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            if self._bound() is not None:
                return method(self, *args, **kwargs)
            return self._retrying(lambda: method(self, *args, **kwargs), isolation)

        functools.update_wrapper(inner, method)
        return inner

    return wrap


class PgStore:
    """``StateStore`` over a PostgreSQL database (safe to share between threads)."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        attempts: int = 12,
        password: str | None = None,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.max_size = max_size
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if password is not None:
            kwargs["password"] = password
        self.pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=kwargs,
            open=False,
            name="syncd-state",
        )
        self.pool.open(wait=True, timeout=30)
        self._local = threading.local()
        self._salt: str | None = None
        #: Followers' horizon (``_horizon``): the settled position, and looks still waiting.
        self._follow_mutex = threading.Lock()
        self._safe: int | None = None
        self._pending: list[tuple[int, set[str]]] = []
        self.retries = 0
        with self.pool.connection() as conn:
            pg_migrations.apply(conn, now_iso())

    def close(self) -> None:
        self.pool.close()

    # -- units of work ---------------------------------------------------------------------------

    def _bound(self) -> psycopg.Connection[dict[str, Any]] | None:
        return cast("psycopg.Connection[dict[str, Any]] | None", getattr(self._local, "conn", None))

    @contextmanager
    def _begin(self, isolation: str) -> Iterator[None]:
        if self._bound() is not None:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        with self.pool.connection() as conn:
            conn.execute(f"BEGIN ISOLATION LEVEL {isolation}".encode())
            self._local.conn, self._local.depth, self._local.new_links = conn, 1, []
            try:
                yield
            except BaseException:
                self._local.conn = None
                # Links this transaction gave an id to have none after all: a replay of the unit
                # inserts them again instead of updating rows that were rolled back.
                for link in self._local.new_links:
                    link.id = None
                if not conn.closed:
                    conn.rollback()
                raise
            finally:
                self._local.conn = None
            try:
                conn.commit()
            except BaseException:
                for link in self._local.new_links:
                    link.id = None
                raise

    def transaction(self) -> AbstractContextManager[None]:
        """One atomic unit (REPEATABLE READ); nested calls join the outer transaction.

        A transaction opened here is not replayed on a serialization failure (a ``with`` block
        cannot be run twice): code that wants that passes a function to ``run``.
        """
        return self._begin(UNIT)

    def _retrying(self, attempt: Callable[[], T], isolation: str) -> T:
        for n in range(1, self.attempts + 1):
            try:
                with self._begin(isolation):
                    return attempt()
            except RETRYABLE:
                if n == self.attempts:
                    raise
                self.retries += 1
                time.sleep(random.uniform(0, min(0.5, 0.005 * 2**n)))
        raise AssertionError("unreachable")

    def run(self, fn: Callable[Concatenate[StateStore, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the unit of work ``fn(store, ...)`` as one transaction, replayed on a serialization
        failure or deadlock. Inside a transaction already, ``fn`` simply joins it."""
        if self._bound() is not None:
            return fn(self, *args, **kwargs)
        return self._retrying(lambda: fn(self, *args, **kwargs), UNIT)

    def _exec(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> psycopg.Cursor[dict[str, Any]]:
        conn = self._bound()
        assert conn is not None, "statements run inside a unit of work"
        return conn.execute(sql.encode(), params)

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self._bound() is None:
            return self._retrying(lambda: self._q(sql, params), UNIT)
        return self._exec(sql, params).fetchall()

    def _x(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write; returns the number of rows it touched."""
        if self._bound() is None:
            return self._retrying(lambda: self._x(sql, params), UNIT)
        return self._exec(sql, params).rowcount

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._bound() is None:
            self._retrying(lambda: self._many(sql, rows), UNIT)
            return
        conn = self._bound()
        assert conn is not None
        with conn.cursor() as cur:
            cur.executemany(sql.encode(), rows)

    # -- runs and cursors ----------------------------------------------------------------------

    def begin_run(self, kind: str) -> int:
        rows = self._q("INSERT INTO runs (kind, started_at) VALUES (%s, %s) RETURNING id", (kind, now_iso()))
        return int(rows[0]["id"])

    def finish_run(self, run_id: int, stats: dict[str, Any]) -> None:
        self._x(
            "UPDATE runs SET finished_at = %s, stats = %s WHERE id = %s", (now_iso(), _dumps(stats), run_id)
        )

    def latest_run(self) -> int:
        return int(self._q("SELECT coalesce(max(id), 0) AS n FROM runs")[0]["n"])

    def last_run(self, kind: str) -> RunRow | None:
        rows = self._q("SELECT * FROM runs WHERE kind = %s ORDER BY id DESC LIMIT 1", (kind,))
        return cast(RunRow, rows[0]) if rows else None

    def prune_runs(self, older_than: str) -> int:
        sql = (
            "DELETE FROM runs WHERE started_at < %s AND id < (SELECT max(id) FROM runs) "
            "AND id NOT IN (SELECT max(id) FROM runs GROUP BY kind)"
        )
        return self._x(sql, (older_than,))

    def get_cursor(self, sync: str, app: str) -> dict[str, Any] | None:
        rows = self._q("SELECT cursor FROM cursors WHERE sync = %s AND app = %s", (sync, app))
        return cast("dict[str, Any] | None", _loads(rows[0]["cursor"])) if rows else None

    def set_cursor(self, sync: str, app: str, cursor: dict[str, Any] | None) -> None:
        self._x(
            "INSERT INTO cursors (sync, app, cursor, updated_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (sync, app) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            (sync, app, _dumps(cursor) if cursor is not None else None, now_iso()),
        )

    def cursors(self) -> list[CursorRow]:
        return [
            cast(CursorRow, {k: r[k] for k in ("sync", "app", "cursor", "updated_at")})
            for r in self._q("SELECT * FROM cursors ORDER BY sync, app")
        ]

    # -- entities ------------------------------------------------------------------------------

    @staticmethod
    def _entity(row: Mapping[str, Any]) -> Entity:
        return Entity(
            id=row["id"],
            sync=row["sync"],
            key=row["key"],
            values=(values := _loads(row["values"])),
            provenance=unpack_provenance(values, _loads(row["provenance"])),
            state=row["state"],
            excluded=_loads(row["excluded"]),
        )

    def entities(self, ids: Iterable[int]) -> dict[int, Entity]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = self._q("SELECT * FROM entities WHERE id = ANY(%s::bigint[]) ORDER BY id", (wanted,))
        return {r["id"]: self._entity(r) for r in rows}

    def entities_by_key(self, sync: str, keys: Iterable[str]) -> dict[str, Entity]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        sql = "SELECT * FROM entities WHERE sync = %s AND key = ANY(%s::text[]) ORDER BY id"
        return {r["key"]: self._entity(r) for r in self._q(sql, (sync, wanted))}

    def new_entity(self, sync: str, key: str | None) -> Entity:
        stamp = now_iso()
        rows = self._q(
            'INSERT INTO entities (sync, key, "values", provenance, created_at, updated_at) '
            "VALUES (%s, %s, '{}', '{}', %s, %s) RETURNING id",
            (sync, key, stamp, stamp),
        )
        return Entity(id=int(rows[0]["id"]), sync=sync, key=key)

    @_atomic()
    def save_entities(self, entities: Iterable[Entity], *, dirty: bool | None = None) -> None:
        stamp = now_iso()
        rows = [
            (
                e.key,
                _dumps(e.values),
                _dumps(pack_provenance(e.values, e.provenance)),
                e.state,
                _dumps(e.excluded),
                stamp,
                e.id,
            )
            for e in entities
        ]
        # Links whose baseline a copied SQLite state stored as '' (this store writes baselines in
        # full: under REPEATABLE READ, a baseline that points at another row could pair with
        # values another daemon changes at the same time).
        self._many(KEEP_BASELINES.format(m="%s"), [(r[-1], r[1]) for r in rows])
        self._many(
            'UPDATE entities SET key = %s, "values" = %s, provenance = %s, state = %s, excluded = %s, '
            "updated_at = %s WHERE id = %s",
            rows,
        )
        if dirty is not None:
            self.mark_dirty([r[-1] for r in rows], dirty)

    def mark_dirty(self, ids: Iterable[int], dirty: bool = True) -> None:
        wanted = sorted(set(ids))
        if not wanted:
            return
        if dirty:
            self._x(
                "UPDATE entities SET dirty = 1, dirty_gen = dirty_gen + 1 WHERE id = ANY(%s::bigint[])",
                (wanted,),
            )
        else:
            self._x(
                "UPDATE entities SET dirty = 0, dirty_claimed_by = NULL, dirty_claim_expires = NULL "
                "WHERE id = ANY(%s::bigint[])",
                (wanted,),
            )

    def dirty_ids(self, sync: str, limit: int, after: int = 0) -> list[int]:
        rows = self._q(
            "SELECT id FROM entities WHERE sync = %s AND dirty = 1 AND id > %s ORDER BY id LIMIT %s",
            (sync, after, limit),
        )
        return [int(r["id"]) for r in rows]

    def find_entity(self, sync: str | None, key: str) -> Entity | None:
        if key.isdigit() and int(key) < 2**63:
            rows = self._q("SELECT * FROM entities WHERE id = %s", (int(key),))
            if rows:
                return self._entity(rows[0])
        sql = (
            "SELECT * FROM entities WHERE key = %s"
            + (" AND sync = %s" if sync else "")
            + " ORDER BY id LIMIT 1"
        )
        rows = self._q(sql, (key, sync) if sync else (key,))
        return self._entity(rows[0]) if rows else None

    def count_entities(self, sync: str) -> dict[str, int]:
        sql = "SELECT state, count(*) AS n FROM entities WHERE sync = %s GROUP BY state"
        return {r["state"]: int(r["n"]) for r in self._q(sql, (sync,))}

    @_atomic(READ_COMMITTED)
    def claim_dirty(
        self, sync: str, limit: int, owner: str, ttl: float, *, now: float | None = None
    ) -> list[tuple[int, int]]:
        """Claim up to ``limit`` dirty entities no live claim of another owner holds (oldest id
        first): ``(entity id, dirty generation)``. Rows another daemon has locked are skipped."""
        at = time.time() if now is None else now
        rows = self._q(
            "WITH picked AS (SELECT id FROM entities WHERE sync = %s AND dirty = 1 AND "
            "(dirty_claim_expires IS NULL OR dirty_claim_expires <= %s OR dirty_claimed_by = %s) "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
            "UPDATE entities e SET dirty_claimed_by = %s, dirty_claim_expires = %s FROM picked "
            "WHERE e.id = picked.id RETURNING e.id, e.dirty_gen",
            (sync, at, owner, limit, owner, at + ttl),
        )
        return sorted((int(r["id"]), int(r["dirty_gen"])) for r in rows)

    @_atomic()
    def ack_dirty(self, items: Iterable[tuple[int, int]]) -> int:
        """Clear the dirty flag of each claimed ``(entity id, generation)`` still at that
        generation; a row re-dirtied since stays dirty (its claim is released). Returns how many
        were cleared."""
        cleared = 0
        for entity_id, gen in items:
            n = self._x(
                "UPDATE entities SET dirty = 0, dirty_claimed_by = NULL, dirty_claim_expires = NULL "
                "WHERE id = %s AND dirty_gen = %s",
                (entity_id, gen),
            )
            if not n:
                self._x(
                    "UPDATE entities SET dirty_claimed_by = NULL, dirty_claim_expires = NULL WHERE id = %s",
                    (entity_id,),
                )
            cleared += n
        return cleared

    # -- links ---------------------------------------------------------------------------------

    @staticmethod
    def _link(row: Mapping[str, Any]) -> Link:
        return Link(
            id=row["id"],
            entity_id=row["entity_id"],
            app=row["app"],
            remote_id=row["remote_id"],
            baseline=_loads(row["known_baseline"]),
            version=row["version"],
            remote_updated_at=row["remote_updated_at"],
            coerced=_loads(row["coerced"]),
            alias=row["alias"],
        )

    def links_by_alias(self, sync: str, app: str, aliases: Iterable[str]) -> dict[str, Link]:
        wanted = sorted(set(aliases))
        if not wanted:
            return {}
        sql = f"SELECT {LINK_COLUMNS} FROM links WHERE sync = %s AND app = %s AND alias = ANY(%s::text[]) ORDER BY id"
        return {r["alias"]: self._link(r) for r in self._q(sql, (sync, app, wanted))}

    def links_by_remote(self, sync: str, app: str, remote_ids: Iterable[str]) -> dict[str, Link]:
        wanted = sorted(set(remote_ids))
        if not wanted:
            return {}
        sql = f"SELECT {LINK_COLUMNS} FROM links WHERE sync = %s AND app = %s AND remote_id = ANY(%s::text[]) ORDER BY id"
        return {r["remote_id"]: self._link(r) for r in self._q(sql, (sync, app, wanted))}

    def links_of(self, entity_ids: Iterable[int]) -> dict[int, dict[str, Link]]:
        wanted = sorted(set(entity_ids))
        out: dict[int, dict[str, Link]] = {}
        if not wanted:
            return out
        for row in self._q(
            f"SELECT {LINK_COLUMNS} FROM links WHERE entity_id = ANY(%s::bigint[]) ORDER BY id", (wanted,)
        ):
            out.setdefault(row["entity_id"], {})[row["app"]] = self._link(row)
        return out

    def app_links(self, entity_ids: Iterable[int], app: str) -> dict[int, Link]:
        wanted = sorted(set(entity_ids))
        if not wanted:
            return {}
        sql = f"SELECT {LINK_COLUMNS} FROM links WHERE app = %s AND entity_id = ANY(%s::bigint[]) ORDER BY id"
        return {r["entity_id"]: self._link(r) for r in self._q(sql, (app, wanted))}

    @_atomic()
    def save_links(self, sync: str, links: Iterable[Link], run_id: int | None = None) -> None:
        for link in links:
            params = (
                _dumps(link.baseline),
                link.version,
                link.remote_updated_at,
                _dumps(link.coerced),
                link.alias,
            )
            if link.id is None:
                rows = self._q(
                    "INSERT INTO links (baseline, version, remote_updated_at, coerced, alias, seen_run, sync, "
                    "app, remote_id, entity_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (*params, run_id, sync, link.app, link.remote_id, link.entity_id),
                )
                link.id = int(rows[0]["id"])
                self._local.new_links.append(link)
            else:
                self._x(
                    "UPDATE links SET baseline = %s, version = %s, remote_updated_at = %s, coerced = %s, "
                    "alias = %s, seen_run = GREATEST(coalesce(seen_run, 0), coalesce(%s::bigint, 0)), "
                    "remote_id = %s, entity_id = %s WHERE id = %s",
                    (*params, run_id, link.remote_id, link.entity_id, link.id),
                )

    def drop_links(self, ids: Iterable[int]) -> None:
        wanted = sorted(set(ids))
        if wanted:
            self._x("DELETE FROM links WHERE id = ANY(%s::bigint[])", (wanted,))

    def mark_seen(self, sync: str, app: str, remote_ids: Sequence[str], run_id: int) -> None:
        if remote_ids:
            self._x(
                "UPDATE links SET seen_run = GREATEST(coalesce(seen_run, 0), %s) "
                "WHERE sync = %s AND app = %s AND remote_id = ANY(%s::text[])",
                (run_id, sync, app, list(remote_ids)),
            )

    def count_links(self, sync: str, app: str) -> int:
        return int(
            self._q("SELECT count(*) AS n FROM links WHERE sync = %s AND app = %s", (sync, app))[0]["n"]
        )

    def count_links_listed(self, sync: str, app: str, remote_ids: Collection[str]) -> int:
        # Each id a probe of the unique index (as mark_seen does), nothing written.
        if not remote_ids:
            return 0
        sql = "SELECT count(*) AS n FROM links WHERE sync = %s AND app = %s AND remote_id = ANY(%s::text[])"
        return int(self._q(sql, (sync, app, list(remote_ids)))[0]["n"])

    def unseen_links(self, sync: str, app: str, run_id: int, limit: int) -> list[Link]:
        rows = self._q(
            f"SELECT {LINK_COLUMNS} FROM links WHERE sync = %s AND app = %s AND (seen_run IS NULL OR seen_run < %s) "
            "ORDER BY id LIMIT %s",
            (sync, app, run_id, limit),
        )
        return [self._link(r) for r in rows]

    def count_unseen(self, sync: str, app: str, run_id: int) -> int:
        sql = "SELECT count(*) AS n FROM links WHERE sync = %s AND app = %s AND (seen_run IS NULL OR seen_run < %s)"
        return int(self._q(sql, (sync, app, run_id))[0]["n"])

    # -- change log ----------------------------------------------------------------------------

    def _fold_anchors(
        self, sync: str, run_id: int | None, entity_ids: Iterable[int]
    ) -> dict[int, tuple[int, list[list[Any]]]]:
        """Entities whose latest change-log row is their ``new_record`` row of ``run_id``."""
        out: dict[int, tuple[int, list[list[Any]]]] = {}
        if run_id is None:
            return out
        ids = sorted(set(entity_ids))
        for start in range(0, len(ids), 500):
            sql = (
                "SELECT id, entity_id, folded FROM changelog WHERE id IN (SELECT max(id) FROM changelog "
                "WHERE entity_id = ANY(%s) GROUP BY entity_id) AND code = 'new_record' AND run_id = %s AND sync = %s"
            )
            for row in self._q(sql, (ids[start : start + 500], run_id, sync)):
                out[row["entity_id"]] = (row["id"], _loads(row["folded"]) or [])
        return out

    @_atomic()
    def log_changes(self, sync: str, changes: Iterable[Change], run_id: int | None) -> int:
        """Append change-log rows, folding as the SQLite store does (``encoding.plan_changelog``).

        New rows take their ids from the change log's sequence; a row folded into moves to a fresh
        value of the same sequence (``seq``). Sequence values are given out at once but committed
        in any order, so the transaction first takes ``CHANGELOG_LOCK`` (shared: writers never
        wait for one another) and keeps it to its end; followers read only up to a position whose
        writers have all ended (``changelog_position``)."""
        stamp = now_iso()
        changes = list(changes)
        if not changes:
            return 0
        self._q("SELECT pg_advisory_xact_lock_shared(%s)", (CHANGELOG_LOCK,))
        foldable = [c.entity_id for c in changes if c.code in FOLDABLE and c.entity_id is not None]
        plan = plan_changelog(changes, run_id, stamp, self._fold_anchors(sync, run_id, foldable))
        rows = plan.insert_rows(stamp, run_id, sync, _dumps)
        self._many(
            "INSERT INTO changelog (at, run_id, sync, entity_id, field, old, new, app, reason, code, detail, folded) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        if plan.updates:
            fresh = self._q(
                f"SELECT nextval({_POSITIONS}) AS seq FROM generate_series(1, %s) ORDER BY 1",
                (len(plan.updates),),
            )
            folds = [
                (_dumps(stamp_folds(plan, row_id, int(r["seq"]))), int(r["seq"]), row_id)
                for row_id, r in zip(sorted(plan.updates), fresh, strict=True)
            ]
            self._many("UPDATE changelog SET folded = %s, seq = %s WHERE id = %s", folds)
        return len(changes)

    def changelog_position(self) -> int:
        with self.pool.connection() as conn:
            return self._horizon(conn)

    def _horizon(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        """The highest position below which every writer has ended (see ``log_changes``).

        Each look notes the sequence's last value and the transactions then holding
        ``CHANGELOG_LOCK`` (any that took a position up to that value is among them, or has
        ended); once none of them holds it any more, everything up to that value is committed
        or rolled back. A look with no holders settles at once. Until a first value is settled
        (a daemon that just started), a look waits for its holders, a few seconds at most."""
        deadline = time.monotonic() + 5.0
        while True:
            top = conn.execute(
                f"SELECT coalesce(pg_sequence_last_value({_POSITIONS}::regclass), 0) AS top"
            ).fetchone()
            holders = {
                str(r["v"])
                for r in conn.execute(
                    "SELECT virtualtransaction AS v FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1 AND pid <> pg_backend_pid()",
                    (CHANGELOG_LOCK >> 32, CHANGELOG_LOCK & 0xFFFFFFFF),
                )
            }
            value = int(top["top"]) if top is not None else 0
            with self._follow_mutex:
                while self._pending and not self._pending[0][1] & holders:
                    self._safe = max(self._safe or 0, self._pending.pop(0)[0])
                if not holders:
                    self._safe = max(self._safe or 0, value)
                    self._pending.clear()
                elif len(self._pending) < _PENDING:
                    self._pending.append((value, holders))
                else:  # one look that waits for the writers of both
                    last_value, last_holders = self._pending[-1]
                    self._pending[-1] = (max(last_value, value), last_holders | holders)
                if self._safe is not None or time.monotonic() > deadline:
                    return self._safe or 0
            time.sleep(0.02)

    def changes_after(self, after: int, limit: int = 200) -> tuple[list[ChangeRow], int]:
        """As the SQLite store, up to the horizon (``_horizon``), on a connection of its own: each
        statement reads what was committed when it ran, after the horizon was taken."""
        with self.pool.connection() as conn:
            horizon = self._horizon(conn)
            if horizon <= after:
                return [], after
            ids = conn.execute(
                "SELECT id FROM changelog WHERE id > %s AND id <= %s ORDER BY id LIMIT %s",
                (after, horizon, limit),
            ).fetchall()
            seqs = conn.execute(
                "SELECT seq FROM changelog WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
                (after, horizon, limit),
            ).fetchall()
            marks = sorted({int(r["id"]) for r in ids} | {int(r["seq"]) for r in seqs})
            upto = marks[limit - 1] if len(marks) >= limit else horizon
            rows = conn.execute(
                "SELECT * FROM changelog WHERE id > %s AND id <= %s "
                "UNION ALL SELECT * FROM changelog WHERE seq > %s AND id <= %s",
                (after, upto, after, after),
            ).fetchall()
        parts = follow_parts((_change_item(r) for r in rows), after, upto)
        return [cast(ChangeRow, r) for r in parts], upto

    def changelog(
        self,
        *,
        entity_id: int | None = None,
        sync: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[ChangeRow]:
        """Change-log rows, newest first; ``limit`` counts stored rows (see the SQLite store)."""
        where, params = _where(("entity_id = %s", entity_id), ("sync = %s", sync), ("id < %s", before))
        out = []
        for row in self._q(f"SELECT * FROM changelog{where} ORDER BY id DESC LIMIT %s", [*params, limit]):
            item = _change_item(row)
            out += [cast(ChangeRow, r) for r in unfold_changes(item, item.pop("folded"))]
        return out

    @_atomic()
    def prune_changelog(self, older_than: str) -> int:
        """Drop change-log rows stamped before ``older_than`` (see the SQLite store: a walk in id
        order that stops at the first row to keep)."""
        first_kept = self._q("SELECT id FROM changelog WHERE at >= %s ORDER BY id LIMIT 1", (older_than,))
        if not first_kept:
            return self._x("DELETE FROM changelog WHERE at < %s", (older_than,))
        sql = "DELETE FROM changelog WHERE id < %s AND at < %s"
        return self._x(sql, (first_kept[0]["id"], older_than))

    def count_drift(self, run_id: int, app: str) -> int:
        sql = (
            "SELECT count(DISTINCT entity_id) AS n FROM changelog WHERE run_id = %s AND app = %s "
            "AND code IN ('changed', 'merged', 'unsubscribed', 'conflict', 'missing')"
        )
        return int(self._q(sql, (run_id, app))[0]["n"])

    # -- conflicts -----------------------------------------------------------------------------

    @_atomic()
    def add_conflicts(self, sync: str, conflicts: Iterable[Conflict]) -> None:
        stamp = now_iso()
        for c in conflicts:
            cands = _dumps([{"app": x.app, "value": x.value, "at": x.at} for x in c.candidates])
            if c.status == "open":
                self._x(
                    "INSERT INTO conflicts (sync, entity_id, field, kind, candidates, policy, status, created_at, "
                    "note) VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s) ON CONFLICT (entity_id, field) "
                    "WHERE status = 'open' DO UPDATE SET candidates = excluded.candidates, "
                    "note = coalesce(excluded.note, conflicts.note)",
                    (sync, c.entity_id, c.field, c.kind, cands, c.policy, stamp, c.note),
                )
            else:
                self._x(
                    "INSERT INTO conflicts (sync, entity_id, field, kind, candidates, policy, status, winner, "
                    "created_at, resolved_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (sync, c.entity_id, c.field, c.kind, cands, c.policy, c.status, c.winner, stamp, stamp),
                )

    def parked_fields(self, entity_ids: Iterable[int]) -> dict[int, set[str]]:
        wanted = sorted(set(entity_ids))
        out: dict[int, set[str]] = {}
        if not wanted:
            return out
        sql = "SELECT entity_id, field FROM conflicts WHERE status = 'open' AND entity_id = ANY(%s::bigint[])"
        for row in self._q(sql, (wanted,)):
            out.setdefault(row["entity_id"], set()).add(row["field"])
        return out

    @_atomic()
    def update_parked(self, entity_id: int, field: str, app: str, value: Any, at: str | None) -> None:
        rows = self._q(
            "SELECT id, candidates FROM conflicts WHERE entity_id = %s AND field = %s AND status = 'open'",
            (entity_id, field),
        )
        for row in rows:
            cands = [c for c in _loads(row["candidates"]) if c["app"] != app]
            cands.append({"app": app, "value": value, "at": at})
            self._x("UPDATE conflicts SET candidates = %s WHERE id = %s", (_dumps(cands), row["id"]))

    @_atomic()
    def add_conflict_candidate(self, entity_id: int, field: str, app: str, value: Any) -> bool:
        rows = self._q(
            "SELECT id, candidates FROM conflicts WHERE entity_id = %s AND field = %s AND status = 'open'",
            (entity_id, field),
        )
        added = False
        for row in rows:
            cands = _loads(row["candidates"])
            if any(c.get("app") == app and c.get("value") == value for c in cands):
                continue
            cands.append({"app": app, "value": value, "at": None})
            self._x("UPDATE conflicts SET candidates = %s WHERE id = %s", (_dumps(cands), row["id"]))
            added = True
        return added

    @staticmethod
    def _conflict(item: dict[str, Any]) -> ConflictRow:
        item["candidates"] = _loads(item["candidates"])
        item["resolution"] = _loads(item["resolution"])
        return cast(ConflictRow, item)

    def conflicts(
        self,
        *,
        status: str | None = "open",
        sync: str | None = None,
        entity_id: int | None = None,
        kind: str | None = None,
        limit: int = 1000,
    ) -> list[ConflictRow]:
        where, params = _where(
            ("c.status = %s", status),
            ("c.sync = %s", sync),
            ("c.entity_id = %s", entity_id),
            ("c.kind = %s", kind),
        )
        sql = (
            "SELECT c.*, e.key AS entity_key FROM conflicts c JOIN entities e ON e.id = c.entity_id"
            f"{where} ORDER BY c.id LIMIT %s"
        )
        return [self._conflict(r) for r in self._q(sql, [*params, limit])]

    def conflict(self, conflict_id: int) -> ConflictRow | None:
        rows = self._q("SELECT * FROM conflicts WHERE id = %s", (conflict_id,))
        return self._conflict(rows[0]) if rows else None

    def close_conflict(self, conflict_id: int, winner: str | None, resolution: Any) -> None:
        self._x(
            "UPDATE conflicts SET status = 'resolved', winner = %s, resolution = %s, resolved_at = %s WHERE id = %s",
            (winner, _dumps(resolution), now_iso(), conflict_id),
        )

    def count_conflicts(self, status: str = "open") -> int:
        return int(self._q("SELECT count(*) AS n FROM conflicts WHERE status = %s", (status,))[0]["n"])

    # -- outbox --------------------------------------------------------------------------------

    @staticmethod
    def _intent(row: Mapping[str, Any]) -> Intent:
        return Intent(
            id=row["id"],
            key=row["key"],
            sync=row["sync"],
            app=row["app"],
            object=row["object"],
            op=row["op"],
            entity_id=row["entity_id"],
            remote_id=row["remote_id"],
            values=_loads(row["values"]),
            payload=_loads(row["payload"]),
            expected_version=row["expected_version"],
            status=row["status"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            error_kind=row["error_kind"],
            created_at=row["created_at"],
            claimed_by=row["claimed_by"],
            claim_epoch=row["claim_epoch"],
            claim_expires=row["claim_expires"],
        )

    @_atomic()
    def enqueue(self, intents: Iterable[NewIntent]) -> int:
        stamp = now_iso()
        n = 0
        for intent in intents:
            key, _, app, _, op, entity_id, *_ = intent
            self._x(
                f"UPDATE outbox SET status = 'superseded', updated_at = %s{_FORGET[True]} "
                "WHERE entity_id = %s AND app = %s AND op = %s AND status = 'pending' AND key != %s",
                (stamp, entity_id, app, op, key),
            )
            n += self._x(
                'INSERT INTO outbox (key, sync, app, object, op, entity_id, remote_id, "values", payload, '
                "expected_version, status, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s) ON CONFLICT (key) DO NOTHING",
                _outbox_row(intent, stamp),
            )
        return n

    @_atomic()
    def quarantine_reads(self, sync: str, app: str, obj: str, items: Iterable[tuple[str, int, str]]) -> int:
        stamp = now_iso()
        new = 0
        for remote_id, entity_id, reason in items:
            if self._x(
                "UPDATE outbox SET last_error = %s, attempts = attempts + 1, updated_at = %s "
                "WHERE sync = %s AND app = %s AND remote_id = %s AND op = 'read' AND status = 'dead'",
                (reason, stamp, sync, app, remote_id),
            ):
                continue
            self._x(
                'INSERT INTO outbox (key, sync, app, object, op, entity_id, remote_id, "values", payload, '
                "status, attempts, last_error, error_kind, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, 'read', %s, %s, '{}', '{}', 'dead', 1, %s, 'unreadable', %s, %s)",
                (
                    f"read:{sync}:{app}:{remote_id}:{stamp}",
                    sync,
                    app,
                    obj,
                    entity_id,
                    remote_id,
                    reason,
                    stamp,
                    stamp,
                ),
            )
            new += 1
        return new

    def release_quarantine(self, sync: str, app: str, remote_ids: Sequence[str]) -> int:
        if not remote_ids:
            return 0
        return self._x(
            "UPDATE outbox SET status = 'done', updated_at = %s WHERE op = 'read' AND status = 'dead' "
            "AND sync = %s AND app = %s AND remote_id = ANY(%s::text[])",
            (now_iso(), sync, app, list(remote_ids)),
        )

    def has_quarantined_reads(self, sync: str, app: str) -> bool:
        sql = "SELECT 1 FROM outbox WHERE op = 'read' AND status = 'dead' AND sync = %s AND app = %s LIMIT 1"
        return bool(self._q(sql, (sync, app)))

    def busy_apps(self, entity_ids: Iterable[int]) -> dict[int, set[str]]:
        wanted = sorted(set(entity_ids))
        out: dict[int, set[str]] = {}
        if not wanted:
            return out
        sql = "SELECT entity_id, app FROM outbox WHERE status = 'inflight' AND entity_id = ANY(%s::bigint[])"
        for row in self._q(sql, (wanted,)):
            out.setdefault(row["entity_id"], set()).add(row["app"])
        return out

    @_atomic(READ_COMMITTED)
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
    ) -> list[Intent]:
        """Mark up to ``limit`` due intents of ``app`` in flight for ``owner`` and return them
        (oldest first). Rows another daemon is claiming right now are skipped (SKIP LOCKED).

        Without an owner, intents left in flight are claimed again (one daemon: they were left by
        a crashed run). With one, an in-flight intent is taken only if its claim has expired,
        has no expiry, or is ``owner``'s own.
        """
        stamp = now or now_iso()
        expires = _after(stamp, ttl) if ttl is not None else None
        conditions = "status IN ('pending', 'inflight') AND app = %s "
        params: list[Any] = [app]
        if op:
            conditions += "AND op = %s "
            params.append(op)
        conditions += "AND (not_before IS NULL OR not_before <= %s) "
        params.append(stamp)
        if owner is not None:
            conditions += (
                "AND (status = 'pending' OR claim_expires IS NULL OR claim_expires <= %s OR claimed_by = %s) "
            )
            params += [stamp, owner]
        rows = self._q(
            f"WITH picked AS (SELECT id FROM outbox WHERE {conditions} ORDER BY id LIMIT %s "
            "FOR UPDATE SKIP LOCKED) "
            "UPDATE outbox o SET status = 'inflight', attempts = o.attempts + 1, updated_at = %s, "
            "claimed_by = %s, claim_epoch = %s, claim_expires = %s FROM picked WHERE o.id = picked.id "
            "RETURNING o.*",
            [*params, limit, stamp, owner, epoch if owner is not None else None, expires],
        )
        return sorted((self._intent(r) for r in rows), key=lambda i: i.id)

    def pending_apps(self) -> list[str]:
        rows = self._q("SELECT DISTINCT app FROM outbox WHERE status IN ('pending', 'inflight') ORDER BY app")
        return [r["app"] for r in rows]

    def settle(
        self,
        intent_id: int,
        status: str,
        error: str | None = None,
        kind: str | None = None,
        *,
        owner: str | None = None,
        epoch: int | None = None,
    ) -> bool:
        """Record an intent's outcome. With ``owner`` (and ``epoch``), only while the claim is
        still theirs: False, and nothing changed, once another daemon took it over."""
        fence, fparams = _fence(owner, epoch, "%s")
        return bool(
            self._x(
                f"UPDATE outbox SET status = %s, last_error = %s, error_kind = %s, updated_at = %s"
                f"{_FORGET[status == 'done']} WHERE id = %s{fence}",
                (status, error, kind, now_iso(), intent_id, *fparams),
            )
        )

    def retry_later(
        self,
        intent_id: int,
        error: str,
        not_before: str,
        *,
        owner: str | None = None,
        epoch: int | None = None,
    ) -> bool:
        fence, fparams = _fence(owner, epoch, "%s")
        return bool(
            self._x(
                "UPDATE outbox SET status = 'pending', last_error = %s, error_kind = 'transient', "
                f"not_before = %s, updated_at = %s WHERE id = %s{fence}",
                (error, not_before, now_iso(), intent_id, *fparams),
            )
        )

    def outbox_depth(self) -> int:
        return int(
            self._q("SELECT count(*) AS n FROM outbox WHERE status IN ('pending', 'inflight')")[0]["n"]
        )

    def next_due(self) -> str | None:
        rows = self._q(
            "SELECT min(not_before) AS t FROM outbox WHERE status = 'pending' AND not_before IS NOT NULL"
        )
        return cast("str | None", rows[0]["t"]) if rows else None

    def dead_letters(self, limit: int = 1000) -> list[Intent]:
        rows = self._q("SELECT * FROM outbox WHERE status = 'dead' ORDER BY id LIMIT %s", (limit,))
        return [self._intent(r) for r in rows]

    def intent(self, intent_id: int) -> Intent | None:
        rows = self._q("SELECT * FROM outbox WHERE id = %s", (intent_id,))
        return self._intent(rows[0]) if rows else None

    def entity_has_open_intent(self, entity_id: int, app: str) -> bool:
        sql = "SELECT 1 FROM outbox WHERE entity_id = %s AND app = %s AND status IN ('pending', 'inflight') LIMIT 1"
        return bool(self._q(sql, (entity_id, app)))

    def sent_creates(self, app: str, entity_ids: Sequence[int]) -> dict[int, Intent]:
        sql = (
            "SELECT * FROM outbox WHERE app = %s AND op = 'create' AND attempts > 0 "
            "AND status IN ('pending', 'inflight') AND entity_id = ANY(%s) ORDER BY id"
        )
        return {row["entity_id"]: self._intent(row) for row in self._q(sql, (app, list(set(entity_ids))))}

    def count_dead_letters(self) -> int:
        return int(self._q("SELECT count(*) AS n FROM outbox WHERE status = 'dead'")[0]["n"])

    # -- health (``syncd status``) ---------------------------------------------------------------

    def record_read(
        self,
        app: str,
        *,
        ok: bool,
        failure: dict[str, Any] | None = None,
        paused: str | None = None,
        complete_run: int | None = None,
    ) -> None:
        stamp = now_iso()
        if ok:
            self._x(
                "INSERT INTO app_health (app, last_ok_at, complete_run, updated_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (app) DO UPDATE SET last_ok_at = excluded.last_ok_at, paused = NULL, "
                "complete_run = coalesce(excluded.complete_run, app_health.complete_run), "
                "updated_at = excluded.updated_at",
                (app, stamp, complete_run, stamp),
            )
        else:
            self._x(
                "INSERT INTO app_health (app, last_failed_at, failure, paused, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (app) DO UPDATE SET "
                "last_failed_at = excluded.last_failed_at, failure = excluded.failure, "
                "paused = excluded.paused, updated_at = excluded.updated_at",
                (app, stamp, _dumps(failure), paused, stamp),
            )

    def app_health(self) -> dict[str, AppHealthRow]:
        rows = self._q("SELECT * FROM app_health ORDER BY app")
        return {r["app"]: cast(AppHealthRow, {**r, "failure": _loads(r["failure"])}) for r in rows}

    def outbox_by_app(self) -> dict[str, dict[str, int]]:
        sql = (
            "SELECT app, count(*) FILTER (WHERE status IN ('pending', 'inflight')) AS pending, "
            "count(*) FILTER (WHERE status = 'dead') AS dead "
            "FROM outbox WHERE status IN ('pending', 'inflight', 'dead') GROUP BY app ORDER BY app"
        )
        return {r["app"]: {"pending": int(r["pending"]), "dead": int(r["dead"])} for r in self._q(sql)}

    def last_webhooks(self) -> dict[str, str]:
        rows = self._q("SELECT app, max(received_at) AS at FROM inbox GROUP BY app ORDER BY app")
        return {r["app"]: str(r["at"]) for r in rows}

    def budget_levels(self, now: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in self._q("SELECT * FROM token_buckets WHERE burst > 0 AND rate > 0 ORDER BY name"):
            tokens, _ = refill(
                float(r["tokens"]), float(r["updated"]), float(r["rate"]), float(r["burst"]), now
            )
            out[r["name"]] = round(min(1.0, max(0.0, 1.0 - tokens / float(r["burst"]))), 4)
        return out

    def live_leases(self, now: float) -> list[LeaseRow]:
        rows = self._q("SELECT * FROM leases WHERE expires_at > %s ORDER BY name", (now,))
        return [cast(LeaseRow, dict(r)) for r in rows]

    # -- webhook inbox -------------------------------------------------------------------------

    @_atomic()
    def inbox_add(self, app: str, events: Iterable[tuple[str, str, str, bool]]) -> int:
        stamp = now_iso()
        added = 0
        for event_id, obj, record_id, deleted in events:
            added += self._x(
                "INSERT INTO inbox (app, event_id, object, record_id, deleted, received_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (app, event_id) DO NOTHING",
                (app, event_id, obj, record_id, int(deleted), stamp),
            )
        return added

    def inbox_pending(
        self, limit: int = 1000, exclude: Sequence[str] = (), *, now: str | None = None
    ) -> list[InboxRow]:
        sql = (
            "SELECT * FROM inbox WHERE processed_at IS NULL AND (not_before IS NULL OR not_before <= %s)"
            + (" AND app <> ALL(%s::text[])" if exclude else "")
            + " ORDER BY id LIMIT %s"
        )
        params: list[Any] = [now or now_iso(), *([list(exclude)] if exclude else []), limit]
        return [cast(InboxRow, r) for r in self._q(sql, params)]

    @_atomic()
    def inbox_retry(
        self, ids: Iterable[int], error: str, not_before: str, max_attempts: int
    ) -> list[InboxRow]:
        stamp = now_iso()
        given_up: list[InboxRow] = []
        for i in ids:
            rows = self._q("SELECT * FROM inbox WHERE id = %s FOR UPDATE", (i,))
            if not rows:
                continue
            row = cast(InboxRow, rows[0])
            attempts = int(row["attempts"] or 0) + 1
            if attempts >= max_attempts:
                self._x(
                    "UPDATE inbox SET attempts = %s, error = %s, processed_at = %s WHERE id = %s",
                    (attempts, f"quarantined after {attempts} attempts: {error}", stamp, i),
                )
                given_up.append(row)
            else:
                self._x(
                    "UPDATE inbox SET attempts = %s, error = %s, not_before = %s WHERE id = %s",
                    (attempts, error, not_before, i),
                )
        return given_up

    def count_inbox_pending(self) -> int:
        return int(self._q("SELECT count(*) AS n FROM inbox WHERE processed_at IS NULL")[0]["n"])

    def inbox_done(self, ids: Iterable[int]) -> None:
        wanted = sorted(set(ids))
        if wanted:
            self._x("UPDATE inbox SET processed_at = %s WHERE id = ANY(%s::bigint[])", (now_iso(), wanted))

    def prune_inbox(self, older_than: str) -> int:
        return self._x("DELETE FROM inbox WHERE processed_at IS NOT NULL AND received_at < %s", (older_than,))

    # -- erasure -------------------------------------------------------------------------------

    @_atomic()
    def key_salt(self) -> str:
        rows = self._q("SELECT value FROM meta WHERE name = 'key_salt'")
        if rows:
            return str(rows[0]["value"])
        self._x(
            "INSERT INTO meta (name, value) VALUES ('key_salt', %s) ON CONFLICT (name) DO NOTHING",
            (secrets.token_hex(16),),
        )
        return str(self._q("SELECT value FROM meta WHERE name = 'key_salt'")[0]["value"])

    def hash_key(self, key: str) -> str:
        salt = self._salt or self.key_salt()
        self._salt = salt
        return hash_with_salt(salt, key)

    def suppressed(self, hashes: Iterable[str]) -> set[str]:
        wanted = sorted(set(hashes))
        if not wanted:
            return set()
        rows = self._q("SELECT key_hash FROM suppressions WHERE key_hash = ANY(%s::text[])", (wanted,))
        return {r["key_hash"] for r in rows}

    def has_suppressions(self) -> bool:
        return bool(self._q("SELECT 1 FROM suppressions LIMIT 1"))

    def suppress(self, key_hash: str, erasure_id: int) -> None:
        self._x(
            "INSERT INTO suppressions (key_hash, erasure_id, created_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (key_hash) DO NOTHING",
            (key_hash, erasure_id, now_iso()),
        )

    def save_erasure(self, erasure_id: int | None, key_hash: str, status: str, apps: dict[str, Any]) -> int:
        stamp = now_iso()
        finished = stamp if status in ("done", "nothing to erase") else None
        if erasure_id is None:
            rows = self._q(
                "INSERT INTO erasures (key_hash, requested_at, finished_at, status, apps) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (key_hash, stamp, finished, status, _dumps(apps)),
            )
            return int(rows[0]["id"])
        self._x(
            "UPDATE erasures SET status = %s, apps = %s, finished_at = %s WHERE id = %s",
            (status, _dumps(apps), finished, erasure_id),
        )
        return erasure_id

    def erasures(self, status: str | None = None, limit: int = 1000) -> list[ErasureRow]:
        where, params = _where(("status = %s", status))
        out = []
        for item in self._q(f"SELECT * FROM erasures{where} ORDER BY id LIMIT %s", [*params, limit]):
            item["apps"] = _loads(item["apps"])
            out.append(cast(ErasureRow, item))
        return out

    # -- deletes held by the mass-delete guard ----------------------------------------------------

    @_atomic()
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
        stamp = now_iso()
        evidence = (linked, missing, _dumps(list(sample)), _dumps(sorted(records)), run_id, stamp)
        rows = self._q(
            "SELECT id FROM held_deletes WHERE sync = %s AND app = %s AND status = 'held' FOR UPDATE",
            (sync, app),
        )
        if rows:
            hold_id = int(rows[0]["id"])
            self._x(
                "UPDATE held_deletes SET linked = %s, missing = %s, sample = %s, records = %s, run_id = %s, "
                "updated_at = %s, trips = trips + 1 WHERE id = %s",
                (*evidence, hold_id),
            )
            return hold_id
        rows = self._q(
            "INSERT INTO held_deletes (linked, missing, sample, records, run_id, updated_at, sync, app, "
            "status, created_at, trips) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'held', %s, 1) RETURNING id",
            (*evidence, sync, app, stamp),
        )
        return int(rows[0]["id"])

    @staticmethod
    def _held(row: Mapping[str, Any]) -> HeldDeleteRow:
        item = {k: row[k] for k in HeldDeleteRow.__annotations__}
        item["sample"] = _loads(row["sample"])
        return cast(HeldDeleteRow, item)

    def held_deletes(
        self,
        *,
        status: str | None = None,
        sync: str | None = None,
        app: str | None = None,
        limit: int = 1000,
    ) -> list[HeldDeleteRow]:
        where, params = _where(("status = %s", status), ("sync = %s", sync), ("app = %s", app))
        rows = self._q(f"SELECT * FROM held_deletes{where} ORDER BY id DESC LIMIT %s", [*params, limit])
        return [self._held(r) for r in rows]

    def held_delete(self, hold_id: int) -> HeldDeleteRow | None:
        rows = self._q("SELECT * FROM held_deletes WHERE id = %s", (hold_id,))
        return self._held(rows[0]) if rows else None

    def held_delete_records(self, hold_id: int) -> list[str]:
        rows = self._q("SELECT records FROM held_deletes WHERE id = %s", (hold_id,))
        return [str(r) for r in _loads(rows[0]["records"])] if rows else []

    def decide_held_delete(self, hold_id: int, status: str, by: str, why: str) -> bool:
        stamp = now_iso()
        n = self._x(
            "UPDATE held_deletes SET status = %s, decided_by = %s, decided_at = %s, why = %s, updated_at = %s "
            "WHERE id = %s AND status = 'held'",
            (status, by, stamp, why, stamp, hold_id),
        )
        return n == 1

    def close_held_delete(self, hold_id: int, status: str) -> None:
        stamp = now_iso()
        self._x(
            "UPDATE held_deletes SET status = %s, applied_at = %s, updated_at = %s WHERE id = %s",
            (status, stamp, stamp, hold_id),
        )

    @_atomic()
    def scrub(self, entity_ids: Sequence[int], records: Mapping[str, Sequence[str]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        ids = list(entity_ids)
        for table, column in (
            ("changelog", "entity_id"),
            ("conflicts", "entity_id"),
            ("outbox", "entity_id"),
            ("links", "entity_id"),
            ("entities", "id"),
        ):
            counts[table] = (
                self._x(f"DELETE FROM {table} WHERE {column} = ANY(%s::bigint[])", (ids,)) if ids else 0
            )
        for app, remote_ids in records.items():
            rids = list(remote_ids)
            if not rids:
                continue
            for table, column in (("outbox", "remote_id"), ("links", "remote_id"), ("inbox", "record_id")):
                counts[table] = counts.get(table, 0) + self._x(
                    f"DELETE FROM {table} WHERE app = %s AND {column} = ANY(%s::text[])", (app, rids)
                )
        return counts

    # -- leases (with a fencing epoch) ---------------------------------------------------------

    @staticmethod
    def _lease(row: Mapping[str, Any]) -> LeaseRow:
        return cast(LeaseRow, {k: row[k] for k in ("name", "holder", "expires_at", "acquired_at", "epoch")})

    @_atomic(READ_COMMITTED)
    def take_lease(self, name: str, holder: str, now: float, ttl: float) -> LeaseRow:
        """Take or renew lease ``name`` if it is free, expired or already ``holder``'s; a change
        of hands raises the epoch. Returns the lease as it stands (the caller holds it if the
        holder is theirs)."""
        self._x(
            "INSERT INTO leases (name, holder, expires_at, acquired_at, epoch) VALUES (%s, %s, %s, %s, 1) "
            "ON CONFLICT (name) DO NOTHING",
            (name, holder, now + ttl, now_iso()),
        )
        row = self._q("SELECT * FROM leases WHERE name = %s FOR UPDATE", (name,))[0]
        if row["holder"] == holder:
            row = self._q("UPDATE leases SET expires_at = %s WHERE name = %s RETURNING *", (now + ttl, name))[
                0
            ]
        elif row["expires_at"] < now:
            row = self._q(
                "UPDATE leases SET holder = %s, expires_at = %s, acquired_at = %s, epoch = epoch + 1 "
                "WHERE name = %s RETURNING *",
                (holder, now + ttl, now_iso(), name),
            )[0]
        return self._lease(row)

    def steal_lease(self, name: str, old_holder: str, holder: str, now: float, ttl: float) -> bool:
        return bool(
            self._x(
                "UPDATE leases SET holder = %s, expires_at = %s, acquired_at = %s, epoch = epoch + 1 "
                "WHERE name = %s AND holder = %s",
                (holder, now + ttl, now_iso(), name, old_holder),
            )
        )

    def renew_lease(
        self, name: str, holder: str, now: float, ttl: float, *, epoch: int | None = None
    ) -> bool:
        fence = " AND epoch = %s" if epoch is not None else ""
        params: list[Any] = [now + ttl, name, holder, *([epoch] if epoch is not None else [])]
        return bool(
            self._x(f"UPDATE leases SET expires_at = %s WHERE name = %s AND holder = %s{fence}", params)
        )

    def release_lease(self, name: str, holder: str, *, epoch: int | None = None) -> None:
        """Give the lease up at once (its row stays, expired, so the epoch keeps growing)."""
        fence = " AND epoch = %s" if epoch is not None else ""
        params: list[Any] = [name, holder, *([epoch] if epoch is not None else [])]
        self._x(f"UPDATE leases SET expires_at = 0 WHERE name = %s AND holder = %s{fence}", params)

    # -- shared rate budgets and the daemon registry -------------------------------------------

    @_atomic(READ_COMMITTED)
    def take_tokens(self, name: str, n: float, rate: float, burst: float, now: float) -> float:
        if n > burst or rate <= 0:
            raise ValueError(f"bucket {name}: {n} tokens can never be taken (burst {burst}, rate {rate}/s)")
        self._x(
            "INSERT INTO token_buckets (name, tokens, updated, rate, burst) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (name) DO NOTHING",
            (name, burst, now, rate, burst),
        )
        row = self._q("SELECT tokens, updated FROM token_buckets WHERE name = %s FOR UPDATE", (name,))[0]
        tokens, updated = refill(float(row["tokens"]), float(row["updated"]), rate, burst, now)
        wait = 0.0 if tokens >= n else (n - tokens) / rate
        if not wait:
            tokens -= n
        self._x(
            "UPDATE token_buckets SET tokens = %s, updated = %s, rate = %s, burst = %s WHERE name = %s",
            (tokens, updated, rate, burst, name),
        )
        return wait

    def heartbeat(self, daemon_id: str, info: dict[str, Any], now: float, ttl: float) -> None:
        self._x(
            "INSERT INTO daemons (daemon_id, info, seen_at, expires_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (daemon_id) DO UPDATE SET info = excluded.info, seen_at = excluded.seen_at, "
            "expires_at = excluded.expires_at",
            (daemon_id, _dumps(info), now, now + ttl),
        )

    def live_daemons(self, now: float) -> list[DaemonRow]:
        rows = self._q("SELECT * FROM daemons WHERE expires_at >= %s ORDER BY daemon_id", (now,))
        return [cast(DaemonRow, {**r, "info": _loads(r["info"])}) for r in rows]

    # -- whole tables (``syncd state migrate``) --------------------------------------------------

    def read_table(self, table: str, after: int | None, limit: int) -> list[dict[str, Any]]:
        key = TABLES[table]
        if key == ("id",):
            return self._q(f"SELECT * FROM {table} WHERE id > %s ORDER BY id LIMIT %s", (after or 0, limit))
        if after is not None:
            return []
        return self._q(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")

    @_atomic()
    def write_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(["%s"] * len(columns))
        self._many(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", [tuple(r[c] for c in columns) for r in rows]
        )
        if TABLES[table] == ("id",):
            # The change log's count also gave the positions folds moved rows to (``seq``).
            top = "greatest(max(id), max(seq))" if table == "changelog" else "max(id)"
            self._q(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce({top}, 0) + 1 FROM {table}), false)"
            )

    def count_rows(self, table: str) -> int:
        TABLES[table]  # only the state's own tables
        return int(self._q(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def clear_tables(self) -> None:
        tables = ", ".join(TABLES)
        self._x(f"TRUNCATE {tables} RESTART IDENTITY")
