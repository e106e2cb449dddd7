"""Records known from ``propertyChange`` webhooks, so that an event does not cost a re-read.

A ``propertyChange`` event carries the property's new value and when it changed
(``occurredAt``). Given the record as last read in full (every property the connector reads)
and the property changes that arrived since, the connector knows the record's current values of
those properties without asking HubSpot. Deliveries come late, twice and out of order, so each
property keeps the value of its newest change only, and a change older than the read copy is
ignored: the result does not depend on the order events arrive in.

A record is composed only when that is safe: it was read in full before (and the copy is still
kept), and every event about it since is a property change. A creation, deletion, restore or
merge event, or a record never read, is re-read as before. A composed record has no version:
HubSpot may have changed properties it sends no events for, so the record must not claim the
version a full read would carry (the next read compares its values instead of trusting it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from syncd.connector import RemoteRecord

from ._records import epoch_ms

#: Records kept as read (an event about a record not kept is re-read: correct, only slower).
DEFAULT_SIZE = 50_000

Key = tuple[str, str]


class KnownRecords:
    """Full reads and the property changes since, per (object type, record id)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._read: OrderedDict[Key, RemoteRecord] = OrderedDict()
        self._changes: dict[Key, dict[str, tuple[int, Any]]] = {}
        self._reread: set[Key] = set()

    def keep(self, obj: str, records: Iterable[RemoteRecord]) -> None:
        """Records read in full (every property the connector reads); tombstones are dropped."""
        for record in records:
            key = (obj, record.id)
            self._reread.discard(key)
            if record.deleted or record.error is not None:
                self._read.pop(key, None)
                self._changes.pop(key, None)
                continue
            self._read[key] = record
            self._read.move_to_end(key)
        while len(self._read) > self._size:
            old, _ = self._read.popitem(last=False)
            self._changes.pop(old, None)

    def observe(self, events: Iterable[Mapping[str, Any]], read: Mapping[str, Sequence[str]]) -> None:
        """Note what a verified delivery's events say (``read``: object type -> properties read)."""
        for event in events:
            obj, action, record_id = event["object"], event["action"], event["record_id"]
            key = (obj, record_id)
            name = event.get("property")
            if action != "propertyChange" or not isinstance(name, str):
                self._reread.add(key)
                continue
            if name not in read.get(obj, ()):
                continue  # a property syncd does not read changes nothing it holds
            when, value = int(event["occurred_ms"]), event.get("value")
            changes = self._changes.setdefault(key, {})
            known = changes.get(name)
            if known is None or when >= known[0]:
                changes[name] = (when, None if value == "" else value)

    def compose(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        """The records among ``ids`` whose current values the events tell (see the docstring)."""
        out: list[RemoteRecord] = []
        for record_id in ids:
            key = (obj, record_id)
            base = self._read.get(key)
            if key in self._reread or base is None or key not in self._changes:
                continue
            since = epoch_ms(base.updated_at) if base.updated_at is not None else 0
            values = dict(base.fields.get("properties") or {})
            latest = since
            for name, (when, value) in self._changes.pop(key).items():
                if when >= since:
                    values[name] = value
                    latest = max(latest, when)
            record = RemoteRecord(
                id=record_id,
                fields={**base.fields, "properties": values},
                version=None,
                updated_at=datetime.fromtimestamp(latest / 1000, UTC),
            )
            self._read[key] = record
            out.append(record)
        return out


__all__ = ["DEFAULT_SIZE", "KnownRecords"]
