"""The members this connector read or wrote in the last moments, by member id.

Batch subscribe addresses a member by its email address, but an update names only the member
id (a hash of the address). The engine re-reads the members it is about to update right before
it updates them (Mailchimp has no conditional write), so the connector keeps what it just read:
an update then knows each member's address, status, merge fields and tags without a second GET,
and sends only what changes. An entry older than ``max_age`` seconds is not used (the member is
read again), so a write is never computed against a stale copy.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from syncd.connector import RemoteRecord

#: Members kept (the engine updates at most one batch of 500 right after re-reading it).
DEFAULT_SIZE = 10_000
#: Seconds a copy stays usable.
DEFAULT_MAX_AGE = 30.0


class RecentMembers:
    """A bounded, time-limited map of member id -> the member as last read or written."""

    def __init__(
        self,
        *,
        size: int = DEFAULT_SIZE,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self._members: OrderedDict[str, tuple[float, RemoteRecord]] = OrderedDict()

    def keep(self, records: Iterable[RemoteRecord]) -> None:
        now = self._clock()
        for record in records:
            if record.error is not None:
                continue
            self._members[record.id] = (now, record)
            self._members.move_to_end(record.id)
        while len(self._members) > self._size:
            self._members.popitem(last=False)

    def forget(self, member_id: str) -> None:
        self._members.pop(member_id, None)

    def get(self, member_id: str) -> RemoteRecord | None:
        """The member as last seen, if seen within ``max_age`` seconds."""
        found = self._members.get(member_id)
        if found is None or self._clock() - found[0] > self._max_age:
            return None
        return found[1]


__all__ = ["DEFAULT_MAX_AGE", "DEFAULT_SIZE", "RecentMembers"]
