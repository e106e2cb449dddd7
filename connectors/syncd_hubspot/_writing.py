"""Writes through HubSpot's batch endpoints, one ``WriteResult`` per item.

* Inputs go in chunks of 100 (HubSpot's cap), each tagged with an ``objectWriteTraceId`` that
  HubSpot echoes in results and in the ``context`` of 207 errors, so every outcome finds its item.
* A chunk HubSpot rejects as a whole (a 400 naming one bad property) is split in halves until
  the bad items stand alone, so one invalid record never fails its neighbours.
* Creating a record type with a unique key (contacts: ``email``) is a ``batch/upsert`` by that
  key: a create whose response was lost, or one for an address someone else added meanwhile,
  updates the contact holding the address instead of adding a second one, and costs no lookup
  first. HubSpot says which inputs it created (``new``). A chunk never holds one address twice.
* Other creates use ``batch/create``. One that collides with an existing record (409 ``Contact
  already exists. Existing ID``, which fails the whole batch) adopts the existing record instead
  of duplicating it: the chunk's unique values are looked up with ``batch/read`` (free of search
  index lag), matching items get the existing record, the rest are sent again.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.connector import (
    ConnectorError,
    NotFound,
    PermanentError,
    PreconditionFailed,
    RemoteRecord,
    TransientError,
    WriteItem,
    WriteResult,
)

from ._client import BATCH_LIMIT, HubSpotApi, JsonObject
from ._config import CrmObject
from ._records import read_names, to_record, wire_properties

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")

#: Sends one chunk whose items are all well-formed; returns a result per item, in order.
ChunkWriter = Callable[[Sequence["_Prepared"]], Awaitable[list[WriteResult]]]


@dataclass(frozen=True, slots=True)
class _Prepared:
    item: WriteItem
    properties: dict[str, str]


def chunks(items: Sequence[Any], size: int = BATCH_LIMIT) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _error_from(entry: JsonObject, app: str) -> ConnectorError:
    category = str(entry.get("category", ""))
    message = f"{app}: {entry.get('message') or category or 'rejected'}"
    if category == "OBJECT_NOT_FOUND":
        return NotFound(message, status=404, detail=entry)
    status = 409 if category == "CONFLICT" else 400
    return PermanentError(message, status=status, detail=entry)


class Writer:
    """Creates, updates and deletes records of one account."""

    def __init__(self, api: HubSpotApi, app: str, properties: Callable[[str], list[str]]) -> None:
        self.api = api
        self.app = app
        self.properties = properties

    # -- shared machinery ----------------------------------------------------------------------

    def _prepare(self, items: Sequence[WriteItem]) -> tuple[list[_Prepared], dict[str, WriteResult]]:
        ready: list[_Prepared] = []
        failed: dict[str, WriteResult] = {}
        for item in items:
            try:
                ready.append(_Prepared(item, wire_properties(item, self.app)))
            except PermanentError as exc:
                failed[item.key] = WriteResult(item.key, error=exc)
        return ready, failed

    async def _run(self, items: Sequence[WriteItem], send: ChunkWriter, check_ids: bool) -> list[WriteResult]:
        ready, done = self._prepare(items)
        if check_ids:
            for prepared in list(ready):
                if not prepared.item.id:
                    done[prepared.item.key] = WriteResult(
                        prepared.item.key, error=PermanentError(f"{self.app}: an update needs the record id")
                    )
                    ready.remove(prepared)
        for chunk in chunks(ready):
            for result in await self._isolating(chunk, send):
                done[result.key] = result
        return [done[item.key] for item in items]

    async def _isolating(self, chunk: Sequence[_Prepared], send: ChunkWriter) -> list[WriteResult]:
        """Send ``chunk``; if HubSpot refuses it as a whole, split it until the culprits stand alone."""
        try:
            return await send(chunk)
        except PermanentError as exc:
            if len(chunk) == 1:
                return [WriteResult(chunk[0].item.key, error=exc)]
        half = len(chunk) // 2
        return [*await self._isolating(chunk[:half], send), *await self._isolating(chunk[half:], send)]

    def _outcomes(
        self, crm: CrmObject, chunk: Sequence[_Prepared], body: JsonObject, by_id: bool = False
    ) -> list[WriteResult]:
        """Pair a batch response's results and 207 errors with the chunk's items.

        Results are matched by the echoed ``objectWriteTraceId``, else by record id (updates) or
        by the unique key written (contact email); by position only when the chunk has one item,
        since HubSpot does not promise to keep the input order.
        """
        names = self.properties(crm.name)
        results: dict[int, WriteResult] = {}
        index_of_id = {p.item.id: i for i, p in enumerate(chunk)} if by_id else {}
        index_of_key = _unique_key_index(crm, chunk)
        for obj_json in body.get("results") or []:
            index = _trace_index(obj_json.get("objectWriteTraceId"), len(chunk))
            if index is None and by_id:
                index = index_of_id.get(str(obj_json.get("id")))
            if index is None and crm.unique_key is not None:
                value = (obj_json.get("properties") or {}).get(crm.unique_key)
                index = index_of_key.get(str(value or "").strip().lower())
            if index is None and len(chunk) == 1:
                index = 0
            if index is not None:
                item = chunk[index].item
                record = to_record(obj_json, _written(names, chunk[index]), present_only=True)
                results[index] = WriteResult(item.key, record=record)
        for entry in body.get("errors") or []:
            context = entry.get("context") or {}
            targets = [_trace_index(t, len(chunk)) for t in context.get("objectWriteTraceId") or []]
            if not any(t is not None for t in targets) and by_id:
                targets = [index_of_id.get(str(i)) for i in context.get("ids") or []]
            if not any(t is not None for t in targets):
                # An upsert names its inputs by the unique value they were keyed by.
                targets = [index_of_key.get(str(i).strip().lower()) for i in context.get("ids") or []]
            for index in targets:
                if index is not None and index not in results:
                    results[index] = WriteResult(chunk[index].item.key, error=_error_from(entry, self.app))
        return [
            results.get(i)
            or WriteResult(
                p.item.key,
                error=TransientError(f"{self.app}: HubSpot's batch response said nothing about this item"),
            )
            for i, p in enumerate(chunk)
        ]

    # -- create --------------------------------------------------------------------------------

    async def create(self, crm: CrmObject, items: Sequence[WriteItem]) -> list[WriteResult]:
        async def send(chunk: Sequence[_Prepared]) -> list[WriteResult]:
            return await self._create_chunk(crm, chunk)

        key = crm.unique_key
        if key is None:
            return await self._run(items, send, check_ids=False)

        async def upsert(chunk: Sequence[_Prepared]) -> list[WriteResult]:
            return await self._upsert_chunk(crm, key, chunk)

        ready, done = self._prepare(items)
        keyed = [p for p in ready if _key_value(p, key)]
        for chunk in _distinct_chunks(keyed, key):
            for result in await self._isolating(chunk, upsert):
                done[result.key] = result
        for unkeyed in chunks([p for p in ready if not _key_value(p, key)]):
            for result in await self._isolating(unkeyed, send):
                done[result.key] = result
        return [done[item.key] for item in items]

    async def _upsert_chunk(self, crm: CrmObject, key: str, chunk: Sequence[_Prepared]) -> list[WriteResult]:
        inputs = [
            {
                "idProperty": key,
                "id": p.properties[key].strip(),
                "properties": p.properties,
                "objectWriteTraceId": str(i),
            }
            for i, p in enumerate(chunk)
        ]
        body = await self.api.batch(crm.name, "upsert", inputs)
        return self._outcomes(crm, chunk, body)

    async def _create_chunk(self, crm: CrmObject, chunk: Sequence[_Prepared]) -> list[WriteResult]:
        inputs = [
            {"properties": p.properties, "associations": [], "objectWriteTraceId": str(i)}
            for i, p in enumerate(chunk)
        ]
        try:
            body = await self.api.batch(crm.name, "create", inputs)
        except PermanentError as exc:
            if exc.status != 409:
                raise
            return await self._adopt(crm, chunk, exc)
        return self._outcomes(crm, chunk, body)

    async def _adopt(
        self, crm: CrmObject, chunk: Sequence[_Prepared], conflict: PermanentError
    ) -> list[WriteResult]:
        """After a 409: link items to the records that already hold their unique value, create the rest."""
        names = self.properties(crm.name)
        adopted: dict[int, RemoteRecord] = {}
        key = crm.unique_key
        if key is not None:
            wanted = {p.properties.get(key, "").strip().lower() for p in chunk} - {""}
            found = (
                await self.api.batch_read(crm.name, sorted(wanted), read_names(names), id_property=key)
                if wanted
                else []
            )
            holders = {str((f.get("properties") or {}).get(key) or "").lower(): f for f in found}
            for i, p in enumerate(chunk):
                holder = holders.get(p.properties.get(key, "").strip().lower())
                if holder is not None:
                    adopted[i] = to_record(holder, names)
        if not adopted:
            match = _EXISTING_ID.search(conflict.message)
            if len(chunk) == 1 and match:
                existing = await self.api.batch_read(crm.name, [match.group(1)], read_names(names))
                if existing:
                    return [WriteResult(chunk[0].item.key, record=to_record(existing[0], names))]
            if len(chunk) == 1:
                return [WriteResult(chunk[0].item.key, error=conflict)]
            half = len(chunk) // 2
            return [
                *await self._create_chunk(crm, chunk[:half]),
                *await self._create_chunk(crm, chunk[half:]),
            ]
        rest = [p for i, p in enumerate(chunk) if i not in adopted]
        created = iter(await self._create_chunk(crm, rest) if rest else [])
        return [
            WriteResult(p.item.key, record=adopted[i]) if i in adopted else next(created)
            for i, p in enumerate(chunk)
        ]

    # -- update --------------------------------------------------------------------------------

    async def update(self, crm: CrmObject, items: Sequence[WriteItem]) -> list[WriteResult]:
        async def send(chunk: Sequence[_Prepared]) -> list[WriteResult]:
            return await self._update_chunk(crm, chunk)

        return await self._run(items, send, check_ids=True)

    async def _update_chunk(self, crm: CrmObject, chunk: Sequence[_Prepared]) -> list[WriteResult]:
        refused = await self._stale(crm, chunk)
        todo = [(i, p) for i, p in enumerate(chunk) if i not in refused]
        outcomes: dict[int, WriteResult] = dict(refused)
        if todo:
            inputs = [
                {"id": p.item.id, "properties": p.properties, "objectWriteTraceId": str(n)}
                for n, (_, p) in enumerate(todo)
            ]
            body = await self.api.batch(crm.name, "update", inputs)
            sent = [p for _, p in todo]
            for (i, _), result in zip(todo, self._outcomes(crm, sent, body, by_id=True), strict=True):
                outcomes[i] = result
        return [outcomes[i] for i in range(len(chunk))]

    async def _stale(self, crm: CrmObject, chunk: Sequence[_Prepared]) -> dict[int, WriteResult]:
        """Items whose ``expected_version`` no longer matches (a best-effort check: HubSpot has no If-Match)."""
        checked = {i: p for i, p in enumerate(chunk) if p.item.expected_version is not None}
        if not checked:
            return {}
        current = await self.api.batch_read(
            crm.name, [str(p.item.id) for p in checked.values()], [crm.last_modified]
        )
        versions = {str(obj["id"]): obj.get("updatedAt") for obj in current}
        refused: dict[int, WriteResult] = {}
        for i, p in checked.items():
            item = p.item
            if item.id not in versions:
                refused[i] = WriteResult(
                    item.key, error=NotFound(f"{self.app}: {crm.name} {item.id} does not exist", status=404)
                )
            elif versions[item.id] != item.expected_version:
                refused[i] = WriteResult(
                    item.key,
                    error=PreconditionFailed(
                        f"{self.app}: {crm.name} {item.id} changed since it was read "
                        f"(now {versions[item.id]}, expected {item.expected_version})",
                        status=412,
                    ),
                )
        return refused

    # -- delete --------------------------------------------------------------------------------

    async def delete(self, crm: CrmObject, items: Sequence[WriteItem], *, gdpr: bool) -> list[WriteResult]:
        names = self.properties(crm.name)
        done: dict[str, WriteResult] = {}
        with_ids = [i for i in items if i.id]
        for item in items:
            if not item.id:
                done[item.key] = WriteResult(
                    item.key, error=PermanentError(f"{self.app}: a delete needs the record id")
                )
        for chunk in chunks(with_ids):
            live = {
                str(o["id"]): o
                for o in await self.api.batch_read(crm.name, [str(i.id) for i in chunk], read_names(names))
            }
            present = [i for i in chunk if i.id in live]
            for item in chunk:
                if item.id not in live:
                    done[item.key] = WriteResult(
                        item.key,
                        error=NotFound(f"{self.app}: {crm.name} {item.id} does not exist", status=404),
                    )
            if gdpr:
                for item in present:
                    done[item.key] = await self._gdpr_one(crm, item, live[str(item.id)], names)
            elif present:
                await self.api.batch(crm.name, "archive", [{"id": i.id} for i in present])
                for item in present:
                    done[item.key] = WriteResult(item.key, record=_tombstone(live[str(item.id)], names))
        return [done[item.key] for item in items]

    async def _gdpr_one(
        self, crm: CrmObject, item: WriteItem, current: JsonObject, names: list[str]
    ) -> WriteResult:
        try:
            await self.api.gdpr_delete(crm.name, str(item.id))
        except PermanentError as exc:  # NotFound included: deleted meanwhile
            return WriteResult(item.key, error=exc)
        return WriteResult(item.key, record=_tombstone(current, names))


def _unique_key_index(crm: CrmObject, chunk: Sequence[_Prepared]) -> dict[str, int]:
    """Position of each item by the (normalised) unique key value it writes, if that is unambiguous."""
    if crm.unique_key is None:
        return {}
    positions: dict[str, list[int]] = {}
    for i, p in enumerate(chunk):
        value = p.properties.get(crm.unique_key, "").strip().lower()
        if value:
            positions.setdefault(value, []).append(i)
    return {value: found[0] for value, found in positions.items() if len(found) == 1}


def _key_value(prepared: _Prepared, key: str) -> str:
    return prepared.properties.get(key, "").strip().lower()


def _distinct_chunks(items: Sequence[_Prepared], key: str) -> list[list[_Prepared]]:
    """Chunks of at most ``BATCH_LIMIT`` in which no unique value appears twice (order kept)."""
    out: list[tuple[set[str], list[_Prepared]]] = []
    for prepared in items:
        value = _key_value(prepared, key)
        for values, chunk in out:
            if value not in values and len(chunk) < BATCH_LIMIT:
                break
        else:
            values, chunk = set(), []
            out.append((values, chunk))
        values.add(value)
        chunk.append(prepared)
    return [chunk for _, chunk in out]


def _trace_index(trace: Any, size: int) -> int | None:
    try:
        index = int(str(trace))
    except (TypeError, ValueError):
        return None
    return index if 0 <= index < size else None


def _written(names: list[str], prepared: _Prepared) -> list[str]:
    """Properties to report for a written record: what the connector reads plus what was written."""
    return list(dict.fromkeys([*names, *prepared.properties]))


def _tombstone(obj: JsonObject, names: list[str]) -> RemoteRecord:
    record = to_record(obj, names)
    return RemoteRecord(record.id, record.fields, record.version, record.updated_at, deleted=True)
