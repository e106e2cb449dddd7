"""An in-memory connector with switchable misbehaviours, for engine tests and the state machine.

The app's data lives in a ``MemoryApp`` (the "server"); ``MemoryConnector`` is the client. Tests
keep the ``MemoryApp`` across engine restarts and reach behind the connector's back through its
backdoor (``seed``/``edit``/``remove``) to play the part of a human editing the app.

Misbehaviours (all off by default):

* ``fail_writes``: a predicate ``(op, item) -> ConnectorError | None`` rejecting individual items;
* ``version_churn``: every read bumps versions and ``updated_at`` without changing content;
* ``normalise``: a function applied by the "server" to written fields (e.g. lowercasing emails);
* ``listing_limit``: full listings stop after N records yet still claim to be complete (a
  pagination bug) — the engine's mass-delete guard must catch it;
* ``fail_listing_after``: full listings raise TransientError after N records;
* ``after_call``: a hook run after each remote operation took effect (raise in it to simulate a
  crash between the remote call and syncd's commit);
* ``rewrite``: the app's automation, run on the whole stored record after each create or update
  through the API (e.g. promoting lifecycle ``lead`` to ``mql``); the write returns the record as
  the automation left it;
* ``hard_deletes``: deletes (the backdoor's and the API's) remove the record outright: no
  tombstone in the change feed, only its absence from listings and lookups tells;
* ``id_listing``: the connector declares the ``id_listing`` capability and serves ``list_ids``
  (every live id, no fields), so hard deletes can be found without a full listing.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from syncd.connector import (
    Capabilities,
    Connector,
    ConnectorConfig,
    ConnectorError,
    Cursor,
    NotFound,
    ObjectType,
    Page,
    PreconditionFailed,
    RemoteRecord,
    TransientError,
    WriteItem,
    WriteResult,
)
from syncd.mapping.paths import get_path


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif isinstance(value, Mapping):
            target[key] = {}
            _merge(target[key], value)
        else:
            target[key] = value


def _copy(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: _copy(v) if isinstance(v, Mapping) else (list(v) if isinstance(v, list) else v)
        for k, v in fields.items()
    }


@dataclass
class _Row:
    fields: dict[str, Any]
    version: int
    updated_at: datetime
    seq: int
    deleted: bool = False


@dataclass
class MemoryApp:
    """The state of one in-memory app: records per object type, with a change sequence."""

    name: str = "memory"
    rows: dict[str, dict[str, _Row]] = field(default_factory=dict)
    clock: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    fail_writes: Callable[[str, WriteItem], ConnectorError | None] | None = None
    version_churn: bool = False
    normalise: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    listing_limit: int | None = None
    fail_listing_after: int | None = None
    after_call: Callable[[str], None] | None = None
    #: Deletes archive (restorable) rather than remove: the ``archive`` delete policy reaches it.
    archives: bool = False
    rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    hard_deletes: bool = False
    id_listing: bool = False
    #: Every remote operation, as (op, object, ids), for assertions on writes.
    calls: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def tick(self) -> datetime:
        self.clock += timedelta(milliseconds=1)
        return self.clock

    def table(self, obj: str) -> dict[str, _Row]:
        return self.rows.setdefault(obj, {})

    def live(self, obj: str) -> dict[str, dict[str, Any]]:
        """Live records of ``obj`` as id -> fields (a copy)."""
        return {rid: _copy(r.fields) for rid, r in self.table(obj).items() if not r.deleted}

    def record(self, obj: str, rid: str) -> RemoteRecord:
        row = self.table(obj)[rid]
        return RemoteRecord(
            id=rid,
            fields=_copy(row.fields),
            version=str(row.version),
            updated_at=row.updated_at,
            deleted=row.deleted,
        )

    # -- backdoor: a human editing the app -------------------------------------------------------

    def seed(self, obj: str, fields: Mapping[str, Any], rid: str | None = None) -> str:
        rid = rid or f"{self.name}-{next(self._ids)}"
        self.table(obj)[rid] = _Row(_copy(fields), 1, self.tick(), next(self._seq))
        return rid

    def edit(self, obj: str, rid: str, fields: Mapping[str, Any]) -> None:
        row = self.table(obj)[rid]
        _merge(row.fields, fields)
        self._touch(row)

    def remove(self, obj: str, rid: str) -> None:
        if self.hard_deletes:
            del self.table(obj)[rid]
            return
        row = self.table(obj)[rid]
        row.deleted = True
        self._touch(row)

    def _automate(self, obj: str, rid: str) -> None:
        """Run the app's automation on a record syncd just wrote (a change of its own if any)."""
        if self.rewrite is None:
            return
        row = self.table(obj)[rid]
        rewritten = self.rewrite(_copy(row.fields))
        if rewritten != row.fields:
            row.fields = rewritten
            self._touch(row)

    def _touch(self, row: _Row) -> None:
        row.version += 1
        row.updated_at = self.tick()
        row.seq = next(self._seq)

    def _called(self, op: str, obj: str, ids: Sequence[str]) -> None:
        self.calls.append((op, obj, tuple(ids)))
        if self.after_call is not None:
            self.after_call(op)


#: Apps by name, so that a connector built from settings (``space = "crm"``) finds its data.
SPACES: dict[str, MemoryApp] = {}


class MemoryConfig(ConnectorConfig):
    space: str = "default"
    page_size: int = 100
    conditional_writes: bool = True


class MemoryConnector(Connector[MemoryConfig]):
    """Connector over a ``MemoryApp``; serves any object type name."""

    name: ClassVar[str] = "memory"
    version: ClassVar[str] = "1.0.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        incremental=True, full_listing=True, conditional_writes=True, tombstones=True, batch_size=50
    )
    objects: ClassVar[tuple[ObjectType, ...]] = (ObjectType("contacts", natural_keys=("email",)),)

    def __init__(
        self, config: MemoryConfig, *, app: str | None = None, backend: MemoryApp | None = None
    ) -> None:
        super().__init__(config, app=app)
        self.backend = (
            backend if backend is not None else SPACES.setdefault(config.space, MemoryApp(config.space))
        )
        if (
            self.backend.hard_deletes
            or self.backend.id_listing
            or self.backend.archives
            or not config.conditional_writes
        ):
            # What this app can do, as the SQL connector declares it per table. An app without
            # conditional writes must say so, or syncd would skip its re-read before writing.
            self._shadow_class_vars(
                capabilities=dataclasses.replace(
                    type(self).capabilities,
                    tombstones=not self.backend.hard_deletes,
                    id_listing=self.backend.id_listing,
                    archives=self.backend.archives,
                    conditional_writes=config.conditional_writes,
                )
            )

    @property
    def settings(self) -> MemoryConfig:
        """The settings, as ``config``: kept for tests that read them by their earlier name."""
        return self.config

    @classmethod
    def over(
        cls, backend: MemoryApp, *, page_size: int = 100, conditional_writes: bool = True
    ) -> MemoryConnector:
        cfg = MemoryConfig(space=backend.name, page_size=page_size, conditional_writes=conditional_writes)
        return cls(cfg, app=backend.name, backend=backend)

    def object_type(self, name: str) -> ObjectType:
        return ObjectType(name, natural_keys=("email",))

    # -- reading -------------------------------------------------------------------------------

    def _churn(self, obj: str, rids: Sequence[str]) -> None:
        if self.backend.version_churn:
            for rid in rids:
                row = self.backend.table(obj)[rid]
                row.version += 1
                row.updated_at = self.backend.tick()

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        table = self.backend.table(obj)
        size = self.config.page_size
        if cursor is None:
            high = max((r.seq for r in table.values()), default=0)
            ids = [rid for rid, r in sorted(table.items(), key=lambda kv: kv[1].seq) if not r.deleted]
            if self.backend.listing_limit is not None:
                ids = ids[: self.backend.listing_limit]
            for start in range(0, max(len(ids), 1), size):
                chunk = ids[start : start + size]
                if (
                    self.backend.fail_listing_after is not None
                    and start + len(chunk) > self.backend.fail_listing_after
                ):
                    raise TransientError(
                        f"{self.app}: listing failed at record {self.backend.fail_listing_after}"
                    )
                self._churn(obj, chunk)
                last = start + size >= len(ids)
                records = [self.backend.record(obj, rid) for rid in chunk]
                self.backend.calls.append(("list", obj, tuple(chunk)))
                yield Page(records, {"seq": high} if last else None, complete=last)
            return
        after = int(cursor.get("seq", 0))
        changed = sorted((r.seq, rid) for rid, r in table.items() if r.seq > after)
        if not changed:
            yield Page([], {"seq": after})
            return
        for start in range(0, len(changed), size):
            batch = changed[start : start + size]
            self._churn(obj, [rid for _, rid in batch])
            records = [self.backend.record(obj, rid) for _, rid in batch]
            self.backend.calls.append(("changes", obj, tuple(rid for _, rid in batch)))
            yield Page(records, {"seq": batch[-1][0]})

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        table = self.backend.table(obj)
        found = [rid for rid in ids if rid in table and not table[rid].deleted]
        self._churn(obj, found)
        self.backend.calls.append(("get", obj, tuple(ids)))
        return [self.backend.record(obj, rid) for rid in found]

    async def list_ids(self, obj: str) -> list[str]:
        if not self.backend.id_listing:
            raise NotImplementedError(f"{self.app} has no id listing")
        self.backend.calls.append(("list_ids", obj, ()))
        return sorted(rid for rid, row in self.backend.table(obj).items() if not row.deleted)

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        wanted = {v.strip().lower() for v in values}
        out = []
        for rid, row in self.backend.table(obj).items():
            _, value = get_path(row.fields, path)
            if not row.deleted and isinstance(value, str) and value.strip().lower() in wanted:
                out.append(self.backend.record(obj, rid))
        self.backend.calls.append(("find", obj, tuple(values)))
        return out

    # -- writing -------------------------------------------------------------------------------

    def _rejected(self, op: str, item: WriteItem) -> ConnectorError | None:
        return self.backend.fail_writes(op, item) if self.backend.fail_writes else None

    def _stored(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        copy = _copy(fields)
        return self.backend.normalise(copy) if self.backend.normalise else copy

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        results = []
        for item in items:
            error = self._rejected("create", item)
            if error is not None:
                results.append(WriteResult(item.key, error=error))
                continue
            rid = self.backend.seed(obj, self._stored(item.fields))
            self.backend._automate(obj, rid)
            results.append(WriteResult(item.key, record=self.backend.record(obj, rid)))
        self.backend._called("create", obj, [r.record.id for r in results if r.record])
        return results

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        table = self.backend.table(obj)
        results = []
        for item in items:
            error = self._rejected("update", item)
            row = table.get(item.id or "")
            if error is None and (row is None or row.deleted):
                error = NotFound(f"{self.app}: no {obj} record {item.id}", status=404)
            elif (
                error is None
                and row is not None
                and self.config.conditional_writes
                and item.expected_version is not None
                and item.expected_version != str(row.version)
            ):
                error = PreconditionFailed(
                    f"{self.app}: {obj} {item.id} changed since it was read", status=412
                )
            if error is not None:
                results.append(WriteResult(item.key, error=error))
                continue
            assert item.id is not None
            self.backend.edit(obj, item.id, self._stored(item.fields))
            self.backend._automate(obj, item.id)
            results.append(WriteResult(item.key, record=self.backend.record(obj, item.id)))
        self.backend._called("update", obj, [i.id or "" for i in items])
        return results

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        table = self.backend.table(obj)
        results = []
        for item in items:
            error = self._rejected("delete", item)
            row = table.get(item.id or "")
            if error is None and (row is None or row.deleted):
                error = NotFound(f"{self.app}: no {obj} record {item.id}", status=404)
            if (
                error is None
                and row is not None
                and self.config.conditional_writes
                and item.expected_version is not None
                and item.expected_version != str(row.version)
            ):
                error = PreconditionFailed(
                    f"{self.app}: {obj} {item.id} changed since it was read", status=412
                )
            if error is not None:
                results.append(WriteResult(item.key, error=error))
                continue
            assert item.id is not None
            gone = self.backend.record(obj, item.id)
            self.backend.remove(obj, item.id)
            results.append(
                WriteResult(
                    item.key,
                    record=self.backend.record(obj, item.id)
                    if item.id in table
                    else dataclasses.replace(gone, deleted=True),
                )
            )
        self.backend._called("delete", obj, [i.id or "" for i in items])
        return results
