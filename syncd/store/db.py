"""The SQLite state store: entities, links and baselines, change log, conflicts, outbox, cursors.

One ``Store`` owns one connection and is used from one thread at a time; ``AsyncStore`` runs
every call on a single worker thread so the event loop never blocks on SQLite and there is
exactly one writer. Reads and writes are batched per page (``IN (...)`` lookups, executemany).
Every method that changes several tables runs inside the caller's ``transaction()`` so the
effects of a decision are committed together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import orjson
from sqlite_utils import Database

from syncd.engine.model import Change, Conflict, Entity, Link

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
from .encoding import (
    FOLDABLE,
    follow_parts,
    pack_provenance,
    plan_changelog,
    stamp_folds,
    unfold_changes,
    unpack_provenance,
)
from .location import is_postgres_url
from .migrations import migrations

P = ParamSpec("P")
T = TypeVar("T")
_CHUNK = 500


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _dumps(value: Any) -> str:
    """JSON text of a stored value (keys sorted, so equal values store equal text)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        # What orjson refuses (integers past 64 bits, say) the standard library still writes.
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _outbox_row(intent: NewIntent, stamp: str) -> tuple[Any, ...]:
    """The ``outbox`` row of a new intent, as ``_ENQUEUE`` (and the PostgreSQL backend) insert it."""
    key, sync, app, obj, op, entity_id, remote_id, values, payload, expected = intent
    return (
        key,
        sync,
        app,
        obj,
        op,
        entity_id,
        remote_id,
        _dumps(values),
        _dumps(payload),
        expected,
        stamp,
        stamp,
    )


#: A run of 19+ digits: maybe an integer past 64 bits, which orjson would read back as a float.
#: Found by mapping every ASCII digit to "0" and everything else to " " (bytes.translate, in C):
#: a regex search over every stored JSON text cost more than parsing it.
_DIGIT_RUNS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    if len(text) == 2:
        # Most exclusions, coerced values and many baselines are empty: no parser needed.
        if text == "{}":
            return {}
        if text == "[]":
            return []
    if _LONG_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGIT_RUNS):
        return json.loads(text)  # exact integers of any size
    return orjson.loads(text)


#: What settling an intent as done (or superseding it) also clears: the values and payload it
#: carried. Nothing reads them once it is over (crash recovery reads pending and in-flight
#: intents, ``syncd deadletters`` dead ones; the change log holds what was written); the key
#: stays, so enqueueing the same intent again is still a no-op.
_FORGET = {False: "", True: ", \"values\" = '{}', payload = '{}'"}

#: Supersede an app's pending intents of one op for an entity (a newer intent replaces them).
_SUPERSEDE = (
    f"UPDATE outbox SET status = 'superseded', updated_at = ?{_FORGET[True]} "
    "WHERE entity_id = ? AND app = ? AND op = ? AND status = 'pending' AND key != ?"
)
_ENQUEUE = (
    'INSERT INTO outbox (key, sync, app, object, op, entity_id, remote_id, "values", payload, '
    "expected_version, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) "
    "ON CONFLICT (key) DO NOTHING"
)


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`` WHERE a = ? AND b = ?`` and its parameters, for the conditions whose value is not None."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in used), [v for _, v in used]


#: The state's tables in an order that respects their references, each with its key columns.
TABLES: dict[str, tuple[str, ...]] = {
    "runs": ("id",),
    "entities": ("id",),
    "links": ("id",),
    "changelog": ("id",),
    "conflicts": ("id",),
    "outbox": ("id",),
    "cursors": ("sync", "app"),
    "inbox": ("id",),
    "leases": ("name",),
    "meta": ("name",),
    "erasures": ("id",),
    "suppressions": ("key_hash",),
    "token_buckets": ("name",),
    "daemons": ("daemon_id",),
    "app_health": ("app",),
    "held_deletes": ("id",),
}


def hash_with_salt(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()


def refill(tokens: float, updated: float, rate: float, burst: float, now: float) -> tuple[float, float]:
    """A bucket's tokens at ``now`` (a clock that went back adds nothing) and its new stamp."""
    if now <= updated:
        return tokens, updated
    return min(burst, tokens + (now - updated) * rate), now


def _fence(owner: str | None, epoch: int | None, mark: str = "?") -> tuple[str, list[Any]]:
    """The extra condition that lets only the claim's holder (at its epoch) change an intent."""
    if owner is None:
        return "", []
    if epoch is None:
        return f" AND claimed_by = {mark}", [owner]
    return f" AND claimed_by = {mark} AND claim_epoch = {mark}", [owner, epoch]


def _after(now_text: str, seconds: float) -> str:
    """The ISO timestamp ``seconds`` after ``now_text`` (same format as ``now_iso``)."""
    at = datetime.fromisoformat(now_text.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


#: A link's baseline as read: stored in full, or ``''`` when it was the same JSON text as its
#: entity's values (the usual case once a record is in sync), then read from the entity. The
#: SQLite store writes ``''`` only in one statement that compares with the entity's values, and
#: puts the text back in full before it changes those values (``save_entities``).
LINK_COLUMNS = (
    "links.*, CASE WHEN links.baseline = '' THEN (SELECT e.\"values\" FROM entities e WHERE e.id = links.entity_id) "
    "ELSE links.baseline END AS known_baseline"
)

#: Before an entity's values change: each of its links whose baseline is stored as ``''`` gets
#: the values it stands for (the entity's values before the change), in full. (Plain ``!=``:
#: neither side is ever NULL, and ``IS DISTINCT FROM`` needs SQLite 3.39.)
KEEP_BASELINES = (
    'UPDATE links SET baseline = (SELECT e."values" FROM entities e WHERE e.id = links.entity_id) '
    "WHERE entity_id = {m} AND baseline = '' AND (SELECT e.\"values\" FROM entities e WHERE e.id = links.entity_id) "
    "!= {m}"
)

#: A baseline to store: ``''`` when it is the JSON text of the entity's values (parameters: the
#: baseline's text, the entity id, the text again).
_SAME_AS_ENTITY = "CASE WHEN ? = (SELECT e.\"values\" FROM entities e WHERE e.id = ?) THEN '' ELSE ? END"


def _change_item(row: Any) -> dict[str, Any]:
    """A stored change-log row with its JSON columns decoded (``folded`` included)."""
    item = dict(row)
    for k in ("old", "new", "detail", "folded"):
        item[k] = _loads(item[k])
    return item


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def create_private(path: Path) -> None:
    """Create the state's folder (0700) and its empty database file (0600) if they do not exist.

    The state holds customer data. SQLite gives the ``-wal`` and ``-shm`` files it creates the
    database file's permissions, so those are owner-only too. Existing files are left as they are.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class Store:
    """Synchronous store API over one SQLite file (call it from one thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            create_private(self.path)
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.db = Database(self.conn)
        migrations.apply(self.db)
        self._depth = 0
        self._salt: str | None = None

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested calls join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    def run(self, fn: Callable[Concatenate[StateStore, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the unit of work ``fn(store, ...)`` (SQLite has one writer: it is never replayed)."""
        return fn(self, *args, **kwargs)

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    # -- runs and cursors ----------------------------------------------------------------------

    def begin_run(self, kind: str) -> int:
        cur = self.conn.execute("INSERT INTO runs (kind, started_at) VALUES (?, ?)", (kind, now_iso()))
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, stats: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE runs SET finished_at = ?, stats = ? WHERE id = ?", (now_iso(), _dumps(stats), run_id)
        )

    def latest_run(self) -> int:
        """The newest run id: links made now count as seen by every listing already under way."""
        return int(self._q("SELECT coalesce(max(id), 0) n FROM runs")[0]["n"])

    def get_cursor(self, sync: str, app: str) -> dict[str, Any] | None:
        rows = self._q("SELECT cursor FROM cursors WHERE sync = ? AND app = ?", (sync, app))
        return _loads(rows[0]["cursor"]) if rows else None

    def set_cursor(self, sync: str, app: str, cursor: dict[str, Any] | None) -> None:
        self.conn.execute(
            "INSERT INTO cursors (sync, app, cursor, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sync, app) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            (sync, app, _dumps(cursor) if cursor is not None else None, now_iso()),
        )

    def cursors(self) -> list[CursorRow]:
        return [cast(CursorRow, dict(r)) for r in self._q("SELECT * FROM cursors ORDER BY sync, app")]

    # -- entities ------------------------------------------------------------------------------

    @staticmethod
    def _entity(row: sqlite3.Row) -> Entity:
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
        out: dict[int, Entity] = {}
        for chunk in _chunks(sorted(set(ids))):
            marks = ",".join("?" * len(chunk))
            for row in self._q(f"SELECT * FROM entities WHERE id IN ({marks})", chunk):
                out[row["id"]] = self._entity(row)
        return out

    def entities_by_key(self, sync: str, keys: Iterable[str]) -> dict[str, Entity]:
        out: dict[str, Entity] = {}
        for chunk in _chunks(sorted(set(keys))):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM entities WHERE sync = ? AND key IN ({marks})"
            for row in self._q(sql, [sync, *chunk]):
                out[row["key"]] = self._entity(row)
        return out

    def new_entity(self, sync: str, key: str | None) -> Entity:
        stamp = now_iso()
        cur = self.conn.execute(
            'INSERT INTO entities (sync, key, "values", provenance, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
            (sync, key, "{}", "{}", stamp, stamp),
        )
        return Entity(id=int(cur.lastrowid or 0), sync=sync, key=key)

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
        with self.transaction():
            self.conn.executemany(KEEP_BASELINES.format(m="?"), [(r[-1], r[1]) for r in rows])
            self.conn.executemany(
                'UPDATE entities SET key = ?, "values" = ?, provenance = ?, state = ?, excluded = ?, updated_at = ? '
                "WHERE id = ?",
                rows,
            )
            if dirty is not None:
                self.mark_dirty([r[-1] for r in rows], dirty)

    def mark_dirty(self, ids: Iterable[int], dirty: bool = True) -> None:
        """Flag entities for planning (each flagging bumps the dirty generation), or clear the flag."""
        if dirty:
            sql = "UPDATE entities SET dirty = 1, dirty_gen = dirty_gen + 1 WHERE id = ?"
        else:
            sql = "UPDATE entities SET dirty = 0, dirty_claimed_by = NULL, dirty_claim_expires = NULL WHERE id = ?"
        self.conn.executemany(sql, [(i,) for i in ids])

    def claim_dirty(
        self, sync: str, limit: int, owner: str, ttl: float, *, now: float | None = None
    ) -> list[tuple[int, int]]:
        """Claim up to ``limit`` dirty entities no live claim of another owner holds (oldest id
        first): ``(entity id, dirty generation)``."""
        at = time.time() if now is None else now
        with self.transaction():
            rows = self._q(
                "SELECT id, dirty_gen FROM entities WHERE sync = ? AND dirty = 1 AND "
                "(dirty_claim_expires IS NULL OR dirty_claim_expires <= ? OR dirty_claimed_by = ?) "
                "ORDER BY id LIMIT ?",
                (sync, at, owner, limit),
            )
            self.conn.executemany(
                "UPDATE entities SET dirty_claimed_by = ?, dirty_claim_expires = ? WHERE id = ?",
                [(owner, at + ttl, r["id"]) for r in rows],
            )
        return [(int(r["id"]), int(r["dirty_gen"])) for r in rows]

    def ack_dirty(self, items: Iterable[tuple[int, int]]) -> int:
        """Clear the dirty flag of each claimed ``(entity id, generation)`` still at that
        generation; a row re-dirtied since stays dirty (its claim is released). Returns how many
        were cleared."""
        cleared = 0
        with self.transaction():
            for entity_id, gen in items:
                n = self.conn.execute(
                    "UPDATE entities SET dirty = 0, dirty_claimed_by = NULL, dirty_claim_expires = NULL "
                    "WHERE id = ? AND dirty_gen = ?",
                    (entity_id, gen),
                ).rowcount
                if not n:
                    self.conn.execute(
                        "UPDATE entities SET dirty_claimed_by = NULL, dirty_claim_expires = NULL WHERE id = ?",
                        (entity_id,),
                    )
                cleared += n
        return cleared

    def dirty_ids(self, sync: str, limit: int, after: int = 0) -> list[int]:
        rows = self._q(
            "SELECT id FROM entities WHERE sync = ? AND dirty = 1 AND id > ? ORDER BY id LIMIT ?",
            (sync, after, limit),
        )
        return [r["id"] for r in rows]

    def find_entity(self, sync: str | None, key: str) -> Entity | None:
        if key.isdigit():
            rows = self._q("SELECT * FROM entities WHERE id = ?", (int(key),))
            if rows:
                return self._entity(rows[0])
        sql = (
            "SELECT * FROM entities WHERE key = ?"
            + (" AND sync = ?" if sync else "")
            + " ORDER BY id LIMIT 1"
        )
        rows = self._q(sql, (key, sync) if sync else (key,))
        return self._entity(rows[0]) if rows else None

    def count_entities(self, sync: str) -> dict[str, int]:
        return {
            r["state"]: r["n"]
            for r in self._q("SELECT state, count(*) n FROM entities WHERE sync = ? GROUP BY state", (sync,))
        }

    # -- links ---------------------------------------------------------------------------------

    @staticmethod
    def _link(row: sqlite3.Row) -> Link:
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
        out: dict[str, Link] = {}
        for chunk in _chunks(sorted(set(aliases))):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {LINK_COLUMNS} FROM links WHERE sync = ? AND app = ? AND alias IN ({marks})"
            for row in self._q(sql, [sync, app, *chunk]):
                out[row["alias"]] = self._link(row)
        return out

    def links_by_remote(self, sync: str, app: str, remote_ids: Iterable[str]) -> dict[str, Link]:
        out: dict[str, Link] = {}
        for chunk in _chunks(sorted(set(remote_ids))):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {LINK_COLUMNS} FROM links WHERE sync = ? AND app = ? AND remote_id IN ({marks})"
            for row in self._q(sql, [sync, app, *chunk]):
                out[row["remote_id"]] = self._link(row)
        return out

    def links_of(self, entity_ids: Iterable[int]) -> dict[int, dict[str, Link]]:
        out: dict[int, dict[str, Link]] = {}
        for chunk in _chunks(sorted(set(entity_ids))):
            marks = ",".join("?" * len(chunk))
            for row in self._q(f"SELECT {LINK_COLUMNS} FROM links WHERE entity_id IN ({marks})", chunk):
                out.setdefault(row["entity_id"], {})[row["app"]] = self._link(row)
        return out

    def app_links(self, entity_ids: Iterable[int], app: str) -> dict[int, Link]:
        """The link each given entity has in ``app`` (entities without one are absent)."""
        out: dict[int, Link] = {}
        for chunk in _chunks(sorted(set(entity_ids))):
            marks = ",".join("?" * len(chunk))
            for row in self._q(
                f"SELECT {LINK_COLUMNS} FROM links WHERE app = ? AND entity_id IN ({marks})", [app, *chunk]
            ):
                out[row["entity_id"]] = self._link(row)
        return out

    def save_links(self, sync: str, links: Iterable[Link], run_id: int | None = None) -> None:
        """Insert or update links (by ``(sync, app, remote_id)``); sets ``link.id`` on new ones."""
        for link in links:
            baseline = _dumps(link.baseline)
            params = (
                baseline,
                link.entity_id,
                baseline,
                link.version,
                link.remote_updated_at,
                _dumps(link.coerced),
                link.alias,
                run_id,
            )
            if link.id is None:
                cur = self.conn.execute(
                    "INSERT INTO links (baseline, version, remote_updated_at, coerced, alias, seen_run, sync, "
                    f"app, remote_id, entity_id) VALUES ({_SAME_AS_ENTITY}, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*params, sync, link.app, link.remote_id, link.entity_id),
                )
                link.id = int(cur.lastrowid or 0)
            else:
                self.conn.execute(
                    f"UPDATE links SET baseline = {_SAME_AS_ENTITY}, version = ?, remote_updated_at = ?, coerced = ?, "
                    "alias = ?, seen_run = max(coalesce(seen_run, 0), coalesce(?, 0)), remote_id = ?, entity_id = ? "
                    "WHERE id = ?",
                    (*params, link.remote_id, link.entity_id, link.id),
                )

    def drop_links(self, ids: Iterable[int]) -> None:
        self.conn.executemany("DELETE FROM links WHERE id = ?", [(i,) for i in ids])

    def mark_seen(self, sync: str, app: str, remote_ids: Sequence[str], run_id: int) -> None:
        self.conn.executemany(
            "UPDATE links SET seen_run = max(coalesce(seen_run, 0), ?) WHERE sync = ? AND app = ? AND remote_id = ?",
            [(run_id, sync, app, rid) for rid in remote_ids],
        )

    def count_links(self, sync: str, app: str) -> int:
        return int(self._q("SELECT count(*) n FROM links WHERE sync = ? AND app = ?", (sync, app))[0]["n"])

    def count_links_listed(self, sync: str, app: str, remote_ids: Collection[str]) -> int:
        # One pass over the app's remote ids (served by the unique index), checked in memory:
        # no statement per id, and nothing written.
        listed = remote_ids if isinstance(remote_ids, set | frozenset) else set(remote_ids)
        rows = self.conn.execute("SELECT remote_id FROM links WHERE sync = ? AND app = ?", (sync, app))
        return sum(1 for (remote_id,) in rows if remote_id in listed)

    def unseen_links(self, sync: str, app: str, run_id: int, limit: int) -> list[Link]:
        rows = self._q(
            f"SELECT {LINK_COLUMNS} FROM links WHERE sync = ? AND app = ? AND (seen_run IS NULL OR seen_run < ?) "
            "ORDER BY id LIMIT ?",
            (sync, app, run_id, limit),
        )
        return [self._link(r) for r in rows]

    def count_unseen(self, sync: str, app: str, run_id: int) -> int:
        sql = "SELECT count(*) n FROM links WHERE sync = ? AND app = ? AND (seen_run IS NULL OR seen_run < ?)"
        return int(self._q(sql, (sync, app, run_id))[0]["n"])

    # -- change log ----------------------------------------------------------------------------

    def _fold_anchors(
        self, sync: str, run_id: int | None, entity_ids: Iterable[int]
    ) -> dict[int, tuple[int, list[list[Any]]]]:
        """Entities whose latest change-log row is their ``new_record`` row of ``run_id``."""
        out: dict[int, tuple[int, list[list[Any]]]] = {}
        if run_id is None:
            return out
        for chunk in _chunks(sorted(set(entity_ids))):
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT id, entity_id, folded FROM changelog WHERE id IN (SELECT max(id) FROM changelog "
                f"WHERE entity_id IN ({marks}) GROUP BY entity_id) AND code = 'new_record' AND run_id = ? AND sync = ?"
            )
            for row in self._q(sql, [*chunk, run_id, sync]):
                out[row["entity_id"]] = (row["id"], _loads(row["folded"]) or [])
        return out

    def log_changes(self, sync: str, changes: Iterable[Change], run_id: int | None) -> int:
        """Append change-log rows (rows that go with a new entity's first read are stored in
        that read's row: ``encoding.plan_changelog``). Returns how many changes were logged.

        Positions: a new row's is its id; a row folded into moves to a fresh position (``seq``)
        drawn from the same count, so a follower sees it again (``changes_after``). Ids are
        given here, above every position so far, in the write transaction: SQLite has one writer
        at a time, so positions are committed in the order they are given."""
        stamp = now_iso()
        changes = list(changes)
        with self.transaction():
            foldable = [c.entity_id for c in changes if c.code in FOLDABLE and c.entity_id is not None]
            plan = plan_changelog(changes, run_id, stamp, self._fold_anchors(sync, run_id, foldable))
            top = self.changelog_position()
            rows = [
                (top + n, *row)
                for n, row in enumerate(plan.insert_rows(stamp, run_id, sync, _dumps), start=1)
            ]
            self.conn.executemany(
                "INSERT INTO changelog (id, at, run_id, sync, entity_id, field, old, new, app, reason, code, detail, "
                "folded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            top += len(rows)
            folds = [
                (_dumps(stamp_folds(plan, row_id, seq)), seq, row_id)
                for seq, row_id in enumerate(sorted(plan.updates), start=top + 1)
            ]
            self.conn.executemany("UPDATE changelog SET folded = ?, seq = ? WHERE id = ?", folds)
        return len(changes)

    def changelog_position(self) -> int:
        """The highest position given so far (one writer at a time: all of them are visible),
        pruned rows' included."""
        row = self._q(
            "SELECT max(id) AS top, (SELECT max(seq) FROM changelog WHERE seq IS NOT NULL) AS folded, "
            "(SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'changelog_top') AS pruned FROM changelog"
        )[0]
        return max(row["top"] or 0, row["folded"] or 0, row["pruned"] or 0)

    def changes_after(self, after: int, limit: int = 200) -> tuple[list[ChangeRow], int]:
        horizon = self.changelog_position()
        if horizon <= after:
            return [], after
        ids = self._q("SELECT id FROM changelog WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
        seqs = self._q("SELECT seq FROM changelog WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        marks = sorted({r[0] for r in ids} | {r[0] for r in seqs})
        upto = marks[limit - 1] if len(marks) >= limit else horizon
        # Every part written in (after, upto] is in a row with an id up to ``upto`` and a position
        # above ``after``: a row added since (by id), or an older row folded into since (by seq).
        rows = self._q(
            "SELECT * FROM changelog WHERE id > ? AND id <= ? UNION ALL SELECT * FROM changelog WHERE seq > ? AND id <= ?",
            (after, upto, after, after),
        )
        return [cast(ChangeRow, r) for r in follow_parts((_change_item(r) for r in rows), after, upto)], upto

    def changelog(
        self,
        *,
        entity_id: int | None = None,
        sync: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[ChangeRow]:
        """Change-log rows, newest first. ``limit`` counts stored rows: a row that tells others
        (``encoding.plan_changelog``) comes with all of them, so paging by id loses none."""
        where, params = _where(("entity_id = ?", entity_id), ("sync = ?", sync), ("id < ?", before))
        sql = f"SELECT * FROM changelog{where} ORDER BY id DESC LIMIT ?"
        out = []
        for row in self._q(sql, [*params, limit]):
            item = _change_item(row)
            out += [cast(ChangeRow, r) for r in unfold_changes(item, item.pop("folded"))]
        return out

    def prune_changelog(self, older_than: str) -> int:
        """Drop change-log rows stamped before ``older_than``, oldest first.

        Rows are stamped as they are added, so their ids follow their times: the walk in id order
        stops at the first row to keep (no index on the time needed). A row stamped out of order
        (by a daemon whose clock lags) goes in a later prune, once the rows before it have gone.
        The highest position so far is kept aside (``meta.changelog_top``) when rows go, so
        positions never go back for followers, even once every row is pruned.
        """
        with self.transaction():
            top = self.changelog_position()
            first_kept = self._q("SELECT id FROM changelog WHERE at >= ? ORDER BY id LIMIT 1", (older_than,))
            if not first_kept:
                n = self.conn.execute("DELETE FROM changelog WHERE at < ?", (older_than,)).rowcount
            else:
                sql = "DELETE FROM changelog WHERE id < ? AND at < ?"
                n = self.conn.execute(sql, (first_kept[0]["id"], older_than)).rowcount
            if n:
                self.conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('changelog_top', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (str(top),),
                )
        return n

    # -- conflicts -----------------------------------------------------------------------------

    def add_conflicts(self, sync: str, conflicts: Iterable[Conflict]) -> None:
        stamp = now_iso()
        for c in conflicts:
            cands = _dumps([{"app": x.app, "value": x.value, "at": x.at} for x in c.candidates])
            if c.status == "open":
                self.conn.execute(
                    "INSERT INTO conflicts (sync, entity_id, field, kind, candidates, policy, status, created_at, "
                    "note) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?) ON CONFLICT (entity_id, field) "
                    "WHERE status = 'open' DO UPDATE SET candidates = excluded.candidates, "
                    "note = coalesce(excluded.note, note)",
                    (sync, c.entity_id, c.field, c.kind, cands, c.policy, stamp, c.note),
                )
            else:
                self.conn.execute(
                    "INSERT INTO conflicts (sync, entity_id, field, kind, candidates, policy, status, winner, "
                    "created_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sync, c.entity_id, c.field, c.kind, cands, c.policy, c.status, c.winner, stamp, stamp),
                )

    def parked_fields(self, entity_ids: Iterable[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for chunk in _chunks(sorted(set(entity_ids))):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT entity_id, field FROM conflicts WHERE status = 'open' AND entity_id IN ({marks})"
            for row in self._q(sql, chunk):
                out.setdefault(row["entity_id"], set()).add(row["field"])
        return out

    def update_parked(self, entity_id: int, field: str, app: str, value: Any, at: str | None) -> None:
        rows = self._q(
            "SELECT id, candidates FROM conflicts WHERE entity_id = ? AND field = ? AND status = 'open'",
            (entity_id, field),
        )
        for row in rows:
            cands = [c for c in _loads(row["candidates"]) if c["app"] != app]
            cands.append({"app": app, "value": value, "at": at})
            self.conn.execute("UPDATE conflicts SET candidates = ? WHERE id = ?", (_dumps(cands), row["id"]))

    def add_conflict_candidate(self, entity_id: int, field: str, app: str, value: Any) -> bool:
        """Name one more side in an open conflict (a third record with one key); True if added."""
        rows = self._q(
            "SELECT id, candidates FROM conflicts WHERE entity_id = ? AND field = ? AND status = 'open'",
            (entity_id, field),
        )
        added = False
        for row in rows:
            cands = _loads(row["candidates"])
            if any(c.get("app") == app and c.get("value") == value for c in cands):
                continue
            cands.append({"app": app, "value": value, "at": None})
            self.conn.execute("UPDATE conflicts SET candidates = ? WHERE id = ?", (_dumps(cands), row["id"]))
            added = True
        return added

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
            ("c.status = ?", status),
            ("c.sync = ?", sync),
            ("c.entity_id = ?", entity_id),
            ("c.kind = ?", kind),
        )
        sql = (
            "SELECT c.*, e.key AS entity_key FROM conflicts c JOIN entities e ON e.id = c.entity_id"
            f"{where} ORDER BY c.id LIMIT ?"
        )
        out = []
        for row in self._q(sql, [*params, limit]):
            item = dict(row)
            item["candidates"] = _loads(item["candidates"])
            item["resolution"] = _loads(item["resolution"])
            out.append(cast(ConflictRow, item))
        return out

    def conflict(self, conflict_id: int) -> ConflictRow | None:
        rows = self._q("SELECT * FROM conflicts WHERE id = ?", (conflict_id,))
        if not rows:
            return None
        item = dict(rows[0])
        item["candidates"] = _loads(item["candidates"])
        item["resolution"] = _loads(item["resolution"])
        return cast(ConflictRow, item)

    def close_conflict(self, conflict_id: int, winner: str | None, resolution: Any) -> None:
        self.conn.execute(
            "UPDATE conflicts SET status = 'resolved', winner = ?, resolution = ?, resolved_at = ? WHERE id = ?",
            (winner, _dumps(resolution), now_iso(), conflict_id),
        )

    def count_conflicts(self, status: str = "open") -> int:
        return int(self._q("SELECT count(*) n FROM conflicts WHERE status = ?", (status,))[0]["n"])

    # -- outbox --------------------------------------------------------------------------------

    @staticmethod
    def _intent(row: sqlite3.Row) -> Intent:
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

    def enqueue(self, intents: Iterable[NewIntent]) -> int:
        """Insert intents ``(key, sync, app, object, op, entity_id, remote_id, values, payload, expected_version)``.

        A pending intent for the same entity, app and op is superseded (the new one carries the
        current plan); an intent whose key already exists is left as it is (idempotent).
        """
        stamp = now_iso()
        items = list(intents)
        supersede = [(stamp, entity_id, app, op, key) for key, _, app, _, op, entity_id, *_ in items]
        rows = [_outbox_row(intent, stamp) for intent in items]
        if len({(entity_id, app, op) for _, entity_id, app, op, _ in supersede}) == len(items):
            # Each intent is for another entity, app and op (a plan's batch): no intent of the
            # call supersedes another, so all supersedes then all inserts is the same as the
            # pairs in turn, in two statements prepared once (a plan batch is hundreds).
            self.conn.executemany(_SUPERSEDE, supersede)
            return int(self.conn.executemany(_ENQUEUE, rows).rowcount)
        n = 0
        for pending, row in zip(supersede, rows, strict=True):
            self.conn.execute(_SUPERSEDE, pending)
            n += self.conn.execute(_ENQUEUE, row).rowcount
        return n

    def quarantine_reads(self, sync: str, app: str, obj: str, items: Iterable[tuple[str, int, str]]) -> int:
        """Record records of ``app`` that could not be read or mapped, as ``(remote_id, entity_id,
        reason)``: dead letters with op ``read`` (replaying one reads the record again). A record
        already quarantined gets the new reason and one more attempt. Returns how many are new."""
        stamp = now_iso()
        new = 0
        for remote_id, entity_id, reason in items:
            cur = self.conn.execute(
                "UPDATE outbox SET last_error = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE sync = ? AND app = ? AND remote_id = ? AND op = 'read' AND status = 'dead'",
                (reason, stamp, sync, app, remote_id),
            )
            if cur.rowcount:
                continue
            self.conn.execute(
                'INSERT INTO outbox (key, sync, app, object, op, entity_id, remote_id, "values", payload, '
                "status, attempts, last_error, error_kind, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'read', ?, ?, '{}', '{}', 'dead', 1, ?, 'unreadable', ?, ?)",
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
        """Quarantined reads of records that have now been read fine are over."""
        n = 0
        for chunk in _chunks(list(remote_ids)):
            marks = ",".join("?" * len(chunk))
            n += self.conn.execute(
                f"UPDATE outbox SET status = 'done', updated_at = ? WHERE op = 'read' AND status = 'dead' "
                f"AND sync = ? AND app = ? AND remote_id IN ({marks})",
                [now_iso(), sync, app, *chunk],
            ).rowcount
        return n

    def has_quarantined_reads(self, sync: str, app: str) -> bool:
        sql = "SELECT 1 FROM outbox WHERE op = 'read' AND status = 'dead' AND sync = ? AND app = ? LIMIT 1"
        return bool(self._q(sql, (sync, app)))

    def busy_apps(self, entity_ids: Iterable[int]) -> dict[int, set[str]]:
        """Apps with an intent in flight per entity (planned again only after it settles)."""
        out: dict[int, set[str]] = {}
        for chunk in _chunks(sorted(set(entity_ids))):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT entity_id, app FROM outbox WHERE status = 'inflight' AND entity_id IN ({marks})"
            for row in self._q(sql, chunk):
                out.setdefault(row["entity_id"], set()).add(row["app"])
        return out

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
        """Mark up to ``limit`` due intents of ``app`` in flight and return them (oldest first).

        Without an ``owner``, intents left in flight by a crashed run are claimed again (their
        effects are checked before anything is sent twice). With one, the claim records the
        owner, its lease ``epoch`` and an expiry ``ttl`` seconds on; an in-flight intent is then
        taken only if its claim has expired, has no expiry, or is ``owner``'s own.
        """
        stamp = now or now_iso()
        expires = _after(stamp, ttl) if ttl is not None else None
        sql = (
            "SELECT * FROM outbox WHERE status IN ('pending', 'inflight') AND app = ? "
            + ("AND op = ? " if op else "")
            + "AND (not_before IS NULL OR not_before <= ?) "
            + (
                "AND (status = 'pending' OR claim_expires IS NULL OR claim_expires <= ? OR claimed_by = ?) "
                if owner is not None
                else ""
            )
            + "ORDER BY id LIMIT ?"
        )
        params: list[Any] = [
            app,
            *([op] if op else []),
            stamp,
            *([stamp, owner] if owner is not None else []),
            limit,
        ]
        mark = (owner, epoch if owner is not None else None, expires)
        with self.transaction():
            intents = [self._intent(r) for r in self._q(sql, params)]
            self.conn.executemany(
                "UPDATE outbox SET status = 'inflight', attempts = attempts + 1, updated_at = ?, "
                "claimed_by = ?, claim_epoch = ?, claim_expires = ? WHERE id = ?",
                [(stamp, *mark, i.id) for i in intents],
            )
        for i in intents:
            i.attempts += 1
            i.status = "inflight"
            i.claimed_by, i.claim_epoch, i.claim_expires = mark
        return intents

    def pending_apps(self) -> list[str]:
        rows = self._q("SELECT DISTINCT app FROM outbox WHERE status IN ('pending', 'inflight')")
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
        fence, fparams = _fence(owner, epoch)
        cur = self.conn.execute(
            f"UPDATE outbox SET status = ?, last_error = ?, error_kind = ?, updated_at = ?{_FORGET[status == 'done']} "
            f"WHERE id = ?{fence}",
            (status, error, kind, now_iso(), intent_id, *fparams),
        )
        return cur.rowcount == 1

    def retry_later(
        self,
        intent_id: int,
        error: str,
        not_before: str,
        *,
        owner: str | None = None,
        epoch: int | None = None,
    ) -> bool:
        fence, fparams = _fence(owner, epoch)
        cur = self.conn.execute(
            "UPDATE outbox SET status = 'pending', last_error = ?, error_kind = 'transient', not_before = ?, "
            f"updated_at = ? WHERE id = ?{fence}",
            (error, not_before, now_iso(), intent_id, *fparams),
        )
        return cur.rowcount == 1

    def outbox_depth(self) -> int:
        sql = "SELECT count(*) n FROM outbox WHERE status IN ('pending', 'inflight')"
        return int(self._q(sql)[0]["n"])

    def next_due(self) -> str | None:
        rows = self._q(
            "SELECT min(not_before) t FROM outbox WHERE status = 'pending' AND not_before IS NOT NULL"
        )
        return rows[0]["t"] if rows else None

    def dead_letters(self, limit: int = 1000) -> list[Intent]:
        return [
            self._intent(r)
            for r in self._q("SELECT * FROM outbox WHERE status = 'dead' ORDER BY id LIMIT ?", (limit,))
        ]

    def intent(self, intent_id: int) -> Intent | None:
        rows = self._q("SELECT * FROM outbox WHERE id = ?", (intent_id,))
        return self._intent(rows[0]) if rows else None

    def entity_has_open_intent(self, entity_id: int, app: str) -> bool:
        sql = "SELECT 1 FROM outbox WHERE entity_id = ? AND app = ? AND status IN ('pending', 'inflight') LIMIT 1"
        return bool(self._q(sql, (entity_id, app)))

    def sent_creates(self, app: str, entity_ids: Sequence[int]) -> dict[int, Intent]:
        out: dict[int, Intent] = {}
        for chunk in _chunks(sorted(set(entity_ids))):
            marks = ",".join("?" * len(chunk))
            sql = (
                "SELECT * FROM outbox WHERE app = ? AND op = 'create' AND attempts > 0 "
                f"AND status IN ('pending', 'inflight') AND entity_id IN ({marks}) ORDER BY id"
            )
            for row in self._q(sql, [app, *chunk]):
                out[row["entity_id"]] = self._intent(row)
        return out

    # -- daemon: webhook inbox -----------------------------------------------------------------

    def inbox_add(self, app: str, events: Iterable[tuple[str, str, str, bool]]) -> int:
        """Store webhook hints ``(event_id, object, record_id, deleted)``; returns how many were new.

        An event id already in the inbox (a redelivery) is ignored, so each event is acted on once.
        """
        stamp = now_iso()
        added = 0
        with self.transaction():
            for event_id, obj, record_id, deleted in events:
                cur = self.conn.execute(
                    "INSERT INTO inbox (app, event_id, object, record_id, deleted, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app, event_id) DO NOTHING",
                    (app, event_id, obj, record_id, int(deleted), stamp),
                )
                added += cur.rowcount
        return added

    def inbox_pending(
        self, limit: int = 1000, exclude: Sequence[str] = (), *, now: str | None = None
    ) -> list[InboxRow]:
        """Unprocessed inbox rows that are due, oldest first, leaving out the apps in ``exclude``.

        Rows waiting out a retry back-off are not due, so they never hold up the others."""
        marks = ",".join("?" * len(exclude))
        sql = (
            "SELECT * FROM inbox WHERE processed_at IS NULL AND (not_before IS NULL OR not_before <= ?)"
            + (f" AND app NOT IN ({marks})" if exclude else "")
            + " ORDER BY id LIMIT ?"
        )
        return [cast(InboxRow, dict(r)) for r in self._q(sql, [now or now_iso(), *exclude, limit])]

    def inbox_retry(
        self, ids: Iterable[int], error: str, not_before: str, max_attempts: int
    ) -> list[InboxRow]:
        """Events whose re-read failed: try again after ``not_before``; an event that failed
        ``max_attempts`` times is set aside (processed, with its error). Returns those set aside."""
        stamp = now_iso()
        given_up: list[InboxRow] = []
        with self.transaction():
            for i in ids:
                rows = self._q("SELECT * FROM inbox WHERE id = ?", (i,))
                if not rows:
                    continue
                row = cast(InboxRow, dict(rows[0]))
                attempts = int(row["attempts"] or 0) + 1
                if attempts >= max_attempts:
                    self.conn.execute(
                        "UPDATE inbox SET attempts = ?, error = ?, processed_at = ? WHERE id = ?",
                        (attempts, f"quarantined after {attempts} attempts: {error}", stamp, i),
                    )
                    given_up.append(row)
                else:
                    self.conn.execute(
                        "UPDATE inbox SET attempts = ?, error = ?, not_before = ? WHERE id = ?",
                        (attempts, error, not_before, i),
                    )
        return given_up

    def count_inbox_pending(self) -> int:
        return int(self._q("SELECT count(*) n FROM inbox WHERE processed_at IS NULL")[0]["n"])

    def inbox_done(self, ids: Iterable[int]) -> None:
        stamp = now_iso()
        with self.transaction():
            self.conn.executemany("UPDATE inbox SET processed_at = ? WHERE id = ?", [(stamp, i) for i in ids])

    def prune_inbox(self, older_than: str) -> int:
        """Forget processed events received before ``older_than`` (their redeliveries are long over)."""
        sql = "DELETE FROM inbox WHERE processed_at IS NOT NULL AND received_at < ?"
        return self.conn.execute(sql, (older_than,)).rowcount

    # -- erasure (right to be forgotten) ---------------------------------------------------------

    def key_salt(self) -> str:
        """This state's secret salt for hashing natural keys in receipts and the suppression list."""
        rows = self._q("SELECT value FROM meta WHERE name = 'key_salt'")
        if rows:
            return str(rows[0]["value"])
        salt = secrets.token_hex(16)
        self.conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('key_salt', ?)", (salt,))
        return str(self._q("SELECT value FROM meta WHERE name = 'key_salt'")[0]["value"])

    def hash_key(self, key: str) -> str:
        """The salted hash that stands for a natural key in erasure receipts and suppressions."""
        salt = self._salt or self.key_salt()
        self._salt = salt
        return hash_with_salt(salt, key)

    def suppressed(self, hashes: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for chunk in _chunks(sorted(set(hashes))):
            marks = ",".join("?" * len(chunk))
            out |= {
                r["key_hash"]
                for r in self._q(f"SELECT key_hash FROM suppressions WHERE key_hash IN ({marks})", chunk)
            }
        return out

    def has_suppressions(self) -> bool:
        return bool(self._q("SELECT 1 FROM suppressions LIMIT 1"))

    def suppress(self, key_hash: str, erasure_id: int) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO suppressions (key_hash, erasure_id, created_at) VALUES (?, ?, ?)",
            (key_hash, erasure_id, now_iso()),
        )

    def save_erasure(self, erasure_id: int | None, key_hash: str, status: str, apps: dict[str, Any]) -> int:
        stamp = now_iso()
        finished = stamp if status in ("done", "nothing to erase") else None
        if erasure_id is None:
            cur = self.conn.execute(
                "INSERT INTO erasures (key_hash, requested_at, finished_at, status, apps) VALUES (?, ?, ?, ?, ?)",
                (key_hash, stamp, finished, status, _dumps(apps)),
            )
            return int(cur.lastrowid or 0)
        self.conn.execute(
            "UPDATE erasures SET status = ?, apps = ?, finished_at = ? WHERE id = ?",
            (status, _dumps(apps), finished, erasure_id),
        )
        return erasure_id

    def erasures(self, status: str | None = None, limit: int = 1000) -> list[ErasureRow]:
        where, params = _where(("status = ?", status))
        rows = self._q(f"SELECT * FROM erasures{where} ORDER BY id LIMIT ?", [*params, limit])
        out = []
        for row in rows:
            item = dict(row)
            item["apps"] = _loads(item["apps"])
            out.append(cast(ErasureRow, item))
        return out

    def scrub(self, entity_ids: Sequence[int], records: Mapping[str, Sequence[str]]) -> dict[str, int]:
        """Remove every trace of entities and of these app records: values, links, change log,
        conflicts, outbox (including dead letters) and webhook inbox rows. Counts per table."""
        counts: dict[str, int] = {}
        ids = list(entity_ids)
        for table, column in (
            ("changelog", "entity_id"),
            ("conflicts", "entity_id"),
            ("outbox", "entity_id"),
            ("links", "entity_id"),
            ("entities", "id"),
        ):
            n = 0
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                n += self.conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk).rowcount
            counts[table] = n
        for app, remote_ids in records.items():
            for part in _chunks(list(remote_ids)):
                marks = ",".join("?" * len(part))
                counts["outbox"] = (
                    counts.get("outbox", 0)
                    + self.conn.execute(
                        f"DELETE FROM outbox WHERE app = ? AND remote_id IN ({marks})", [app, *part]
                    ).rowcount
                )
                counts["links"] = (
                    counts.get("links", 0)
                    + self.conn.execute(
                        f"DELETE FROM links WHERE app = ? AND remote_id IN ({marks})", [app, *part]
                    ).rowcount
                )
                counts["inbox"] = (
                    counts.get("inbox", 0)
                    + self.conn.execute(
                        f"DELETE FROM inbox WHERE app = ? AND record_id IN ({marks})", [app, *part]
                    ).rowcount
                )
        return counts

    # -- deletes held by the mass-delete guard ----------------------------------------------------

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
        with self.transaction():
            rows = self._q(
                "SELECT id FROM held_deletes WHERE sync = ? AND app = ? AND status = 'held'", (sync, app)
            )
            if rows:
                hold_id = int(rows[0]["id"])
                self.conn.execute(
                    "UPDATE held_deletes SET linked = ?, missing = ?, sample = ?, records = ?, run_id = ?, "
                    "updated_at = ?, trips = trips + 1 WHERE id = ?",
                    (*evidence, hold_id),
                )
                return hold_id
            cur = self.conn.execute(
                "INSERT INTO held_deletes (linked, missing, sample, records, run_id, updated_at, sync, app, "
                "status, created_at, trips) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'held', ?, 1)",
                (*evidence, sync, app, stamp),
            )
            return int(cur.lastrowid or 0)

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
        where, params = _where(("status = ?", status), ("sync = ?", sync), ("app = ?", app))
        rows = self._q(f"SELECT * FROM held_deletes{where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return [self._held(dict(r)) for r in rows]

    def held_delete(self, hold_id: int) -> HeldDeleteRow | None:
        rows = self._q("SELECT * FROM held_deletes WHERE id = ?", (hold_id,))
        return self._held(dict(rows[0])) if rows else None

    def held_delete_records(self, hold_id: int) -> list[str]:
        rows = self._q("SELECT records FROM held_deletes WHERE id = ?", (hold_id,))
        return [str(r) for r in _loads(rows[0]["records"])] if rows else []

    def decide_held_delete(self, hold_id: int, status: str, by: str, why: str) -> bool:
        cur = self.conn.execute(
            "UPDATE held_deletes SET status = ?, decided_by = ?, decided_at = ?, why = ?, updated_at = ? "
            "WHERE id = ? AND status = 'held'",
            (status, by, now_iso(), why, now_iso(), hold_id),
        )
        return cur.rowcount == 1

    def close_held_delete(self, hold_id: int, status: str) -> None:
        stamp = now_iso()
        self.conn.execute(
            "UPDATE held_deletes SET status = ?, applied_at = ?, updated_at = ? WHERE id = ?",
            (status, stamp, stamp, hold_id),
        )

    # -- daemon: the single-writer lease -------------------------------------------------------

    @staticmethod
    def _lease(row: sqlite3.Row) -> LeaseRow:
        return cast(LeaseRow, {k: row[k] for k in ("name", "holder", "expires_at", "acquired_at", "epoch")})

    def take_lease(self, name: str, holder: str, now: float, ttl: float) -> LeaseRow:
        """Take or renew lease ``name`` if it is free, expired or already ``holder``'s; a change
        of hands raises the epoch (the fencing token).

        Returns the lease row as it stands afterwards: the caller holds it if ``holder`` matches.
        """
        with self.transaction():
            rows = self._q("SELECT * FROM leases WHERE name = ?", (name,))
            if not rows:
                self.conn.execute(
                    "INSERT INTO leases (name, holder, expires_at, acquired_at, epoch) VALUES (?, ?, ?, ?, 1)",
                    (name, holder, now + ttl, now_iso()),
                )
            elif rows[0]["holder"] == holder:
                self.conn.execute("UPDATE leases SET expires_at = ? WHERE name = ?", (now + ttl, name))
            elif rows[0]["expires_at"] < now:
                self.conn.execute(
                    "UPDATE leases SET holder = ?, expires_at = ?, acquired_at = ?, epoch = epoch + 1 WHERE name = ?",
                    (holder, now + ttl, now_iso(), name),
                )
            return self._lease(self._q("SELECT * FROM leases WHERE name = ?", (name,))[0])

    def steal_lease(self, name: str, old_holder: str, holder: str, now: float, ttl: float) -> bool:
        """Hand lease ``name`` from ``old_holder`` to ``holder``, only if ``old_holder`` still has it."""
        cur = self.conn.execute(
            "UPDATE leases SET holder = ?, expires_at = ?, acquired_at = ?, epoch = epoch + 1 "
            "WHERE name = ? AND holder = ?",
            (holder, now + ttl, now_iso(), name, old_holder),
        )
        return cur.rowcount == 1

    def renew_lease(
        self, name: str, holder: str, now: float, ttl: float, *, epoch: int | None = None
    ) -> bool:
        """Extend ``holder``'s lease (at ``epoch``, if given); False if it is no longer theirs."""
        fence = " AND epoch = ?" if epoch is not None else ""
        params: list[Any] = [now + ttl, name, holder, *([epoch] if epoch is not None else [])]
        cur = self.conn.execute(
            f"UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?{fence}", params
        )
        return cur.rowcount == 1

    def release_lease(self, name: str, holder: str, *, epoch: int | None = None) -> None:
        """Give the lease up at once (its row stays, expired, so the epoch keeps growing)."""
        fence = " AND epoch = ?" if epoch is not None else ""
        params: list[Any] = [name, holder, *([epoch] if epoch is not None else [])]
        self.conn.execute(f"UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?{fence}", params)

    # -- shared rate budgets and the daemon registry -------------------------------------------

    def take_tokens(self, name: str, n: float, rate: float, burst: float, now: float) -> float:
        """Take ``n`` tokens from bucket ``name`` (refilled at ``rate`` per second up to ``burst``):
        0.0 if they were there, else the seconds until they will be (nothing is taken then)."""
        if n > burst or rate <= 0:
            raise ValueError(f"bucket {name}: {n} tokens can never be taken (burst {burst}, rate {rate}/s)")
        with self.transaction():
            rows = self._q("SELECT tokens, updated FROM token_buckets WHERE name = ?", (name,))
            tokens, updated = (
                refill(float(rows[0]["tokens"]), float(rows[0]["updated"]), rate, burst, now)
                if rows
                else (burst, now)
            )
            wait = 0.0 if tokens >= n else (n - tokens) / rate
            if not wait:
                tokens -= n
            self.conn.execute(
                "INSERT INTO token_buckets (name, tokens, updated, rate, burst) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated, "
                "rate = excluded.rate, burst = excluded.burst",
                (name, tokens, updated, rate, burst),
            )
        return wait

    def heartbeat(self, daemon_id: str, info: dict[str, Any], now: float, ttl: float) -> None:
        """Record that daemon ``daemon_id`` is alive until ``now + ttl``, publishing ``info``."""
        self.conn.execute(
            "INSERT INTO daemons (daemon_id, info, seen_at, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (daemon_id) DO UPDATE SET info = excluded.info, seen_at = excluded.seen_at, "
            "expires_at = excluded.expires_at",
            (daemon_id, _dumps(info), now, now + ttl),
        )

    def live_daemons(self, now: float) -> list[DaemonRow]:
        rows = self._q("SELECT * FROM daemons WHERE expires_at >= ? ORDER BY daemon_id", (now,))
        return [cast(DaemonRow, {**dict(r), "info": _loads(r["info"])}) for r in rows]

    # -- whole tables (``syncd state migrate``) --------------------------------------------------

    def read_table(self, table: str, after: int | None, limit: int) -> list[dict[str, Any]]:
        key = TABLES[table]
        if key == ("id",):
            sql = f"SELECT * FROM {table} WHERE id > ? ORDER BY id LIMIT ?"
            return [dict(r) for r in self._q(sql, (after or 0, limit))]
        if after is not None:
            return []
        return [dict(r) for r in self._q(f"SELECT * FROM {table} ORDER BY {', '.join(key)}")]

    def write_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        TABLES[table]  # only the state's own tables
        columns = list(rows[0])
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        with self.transaction():
            self.conn.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",
                [tuple(r[c] for c in columns) for r in rows],
            )

    def count_rows(self, table: str) -> int:
        TABLES[table]  # only the state's own tables
        return int(self._q(f"SELECT count(*) n FROM {table}")[0]["n"])

    def clear_tables(self) -> None:
        with self.transaction():
            for table in reversed(TABLES):
                self.conn.execute(f"DELETE FROM {table}")

    # -- daemon: housekeeping and reports ------------------------------------------------------

    def last_run(self, kind: str) -> RunRow | None:
        """The newest run of ``kind`` (e.g. ``full:crm``), finished or not."""
        rows = self._q("SELECT * FROM runs WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,))
        return cast(RunRow, dict(rows[0])) if rows else None

    def prune_runs(self, older_than: str) -> int:
        """Drop run rows started before ``older_than``, keeping the newest run and each kind's latest.

        The newest id must stay: run ids are compared with ``links.seen_run``.
        """
        sql = (
            "DELETE FROM runs WHERE started_at < ? AND id < (SELECT max(id) FROM runs) "
            "AND id NOT IN (SELECT max(id) FROM runs GROUP BY kind)"
        )
        return self.conn.execute(sql, (older_than,)).rowcount

    def count_drift(self, run_id: int, app: str) -> int:
        """Entities whose ``app`` record a read of run ``run_id`` found changed, merged or gone."""
        sql = (
            "SELECT count(DISTINCT entity_id) n FROM changelog WHERE run_id = ? AND app = ? "
            "AND code IN ('changed', 'merged', 'unsubscribed', 'conflict', 'missing')"
        )
        return int(self._q(sql, (run_id, app))[0]["n"])

    def count_dead_letters(self) -> int:
        return int(self._q("SELECT count(*) n FROM outbox WHERE status = 'dead'")[0]["n"])

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
        with self.transaction():
            self.conn.execute(
                "INSERT INTO app_health (app, updated_at) VALUES (?, ?) ON CONFLICT (app) DO NOTHING",
                (app, stamp),
            )
            if ok:
                self.conn.execute(
                    "UPDATE app_health SET last_ok_at = ?, paused = NULL, "
                    "complete_run = coalesce(?, complete_run), updated_at = ? WHERE app = ?",
                    (stamp, complete_run, stamp, app),
                )
            else:
                self.conn.execute(
                    "UPDATE app_health SET last_failed_at = ?, failure = ?, paused = ?, updated_at = ? "
                    "WHERE app = ?",
                    (stamp, _dumps(failure), paused, stamp, app),
                )

    def app_health(self) -> dict[str, AppHealthRow]:
        rows = self._q("SELECT * FROM app_health ORDER BY app")
        return {r["app"]: cast(AppHealthRow, {**dict(r), "failure": _loads(r["failure"])}) for r in rows}

    def outbox_by_app(self) -> dict[str, dict[str, int]]:
        sql = (
            "SELECT app, sum(status IN ('pending', 'inflight')) pending, sum(status = 'dead') dead "
            "FROM outbox WHERE status IN ('pending', 'inflight', 'dead') GROUP BY app ORDER BY app"
        )
        return {r["app"]: {"pending": int(r["pending"]), "dead": int(r["dead"])} for r in self._q(sql)}

    def last_webhooks(self) -> dict[str, str]:
        rows = self._q("SELECT app, max(received_at) at FROM inbox GROUP BY app ORDER BY app")
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
        rows = self._q("SELECT * FROM leases WHERE expires_at > ? ORDER BY name", (now,))
        return [cast(LeaseRow, dict(r)) for r in rows]


def connect(location: str | Path, *, password: str | None = None) -> StateStore:
    """Open the state store at ``location``: a ``postgresql://`` (or ``postgres://``) URL, else a
    SQLite file path (or ``:memory:``). The PostgreSQL password is ``password``, else the one a
    ``StateUrl`` carries (never part of the URL itself)."""
    if is_postgres_url(location):
        from .postgres import PgStore  # psycopg is an optional dependency (the `postgresql` extra)

        return PgStore(str(location), password=password or getattr(location, "password", None))
    return Store(location)


class AsyncStore:
    """Runs units of work off the event loop.

    SQLite: on one dedicated thread (one writer). PostgreSQL: on a few threads, each unit on its
    own pooled connection and in its own transaction (see ``postgres``).
    """

    def __init__(
        self, location: str | Path, *, password: str | None = None, workers: int | None = None
    ) -> None:
        self._location = location
        self._password = password
        self._workers = workers
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-store")
        self.store: StateStore | None = None

    async def open(self) -> AsyncStore:
        store = await self._submit(lambda: connect(self._location, password=self._password))
        self.store = store
        workers = self._workers or int(getattr(store, "max_size", 1))
        if workers > 1:
            self._executor.shutdown(wait=True)
            self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="syncd-store")
        return self

    async def _submit(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def call(self, fn: Callable[Concatenate[StateStore, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the unit of work ``fn(store, *args, **kwargs)`` on a store thread."""
        store = self.store
        assert store is not None, "AsyncStore.open() first"
        return await self._submit(lambda: store.run(fn, *args, **kwargs))

    async def close(self) -> None:
        if self.store is not None:
            await self._submit(self.store.close)
            self.store = None
        self._executor.shutdown(wait=True)
