"""Skip-free walks over an audience's members, ordered by ``last_changed``.

Mailchimp pages members by offset. Offsets over a list that changes while we page can skip a
member: when a member already read is modified it moves to the end (we sort by ``last_changed``
ascending), everything after it moves up one place, and the member that was first on the next
page slides into the page already read. So every page after the first also re-reads the last
member of the previous page; if that member is no longer where we left it, the listing shifted,
and the walk restarts from its ``last_changed`` (minus a second: the filter has second precision
and may be exclusive), dropping the members it already delivered.

``consistent`` tells whether the walk saw a stable list: no restart, the same ``total_items`` on
every page, and exactly that many members delivered. Only such a full listing may say
``complete`` (syncd infers deletes from complete listings).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from syncd.connector import ConnectorError, TransientError
from syncd.connector.pagination import offset_pages

from ._members import format_time, parse_time

#: Mailchimp's largest ``count``.
MAX_COUNT = 1000
#: How often one walk may restart before giving up (the list is changing faster than we read).
MAX_RESTARTS = 20
_SECOND = timedelta(seconds=1)

Member = Mapping[str, Any]
Fetch = Callable[[dict[str, str | int]], Awaitable[Mapping[str, Any]]]


class _Shifted(Exception):
    """The previous page's last member is not where it was: members moved while we paged."""


def _key(member: Member) -> tuple[str, str]:
    return str(member.get("id")), str(member.get("last_changed"))


class MemberWalk:
    """One pass over the members changed after ``since`` (all when None), optionally of one status."""

    def __init__(self, fetch: Fetch, *, since: datetime | None, status: str | None, page_size: int) -> None:
        self._fetch = fetch
        self._since = since
        self._status = status
        # One slot of every request after the first re-reads the previous page's last member.
        self.page_size = max(1, min(page_size, MAX_COUNT - 1))
        #: The latest ``last_changed`` delivered so far.
        self.high: datetime | None = None
        self.restarts = 0
        self.delivered = 0
        self._totals: set[int] = set()
        self._last_total: int | None = None
        #: The ``since_last_changed`` of the current pass (moves back to the anchor on a restart).
        self._bound = since
        self._anchor: tuple[str, str] | None = None
        self._anchor_time: datetime | None = None

    @property
    def total(self) -> int | None:
        """The list's latest ``total_items`` for this walk (a progress hint; None before a page)."""
        return self._last_total

    @property
    def consistent(self) -> bool:
        return self.restarts == 0 and len(self._totals) == 1 and self.delivered == next(iter(self._totals))

    async def pages(self) -> AsyncIterator[list[Member]]:
        """Yield each page's members not yet delivered by this walk (at least one, maybe empty, page)."""
        seen: dict[tuple[str, str], datetime] = {}
        self._bound = self._since
        while True:
            self._anchor = None
            try:
                async for raw, _next in offset_pages(self._page, page_size=self.page_size):
                    yield self._fresh(raw, seen)
                return
            except _Shifted:
                self.restarts += 1
                if self.restarts > MAX_RESTARTS:
                    raise TransientError(
                        f"mailchimp: the member list kept changing while it was paged ({MAX_RESTARTS} restarts); "
                        "try again later"
                    ) from None
                assert self._anchor_time is not None
                self._bound = self._anchor_time - _SECOND

    def _fresh(self, raw: list[Member], seen: dict[tuple[str, str], datetime]) -> list[Member]:
        fresh: list[Member] = []
        for member in raw:
            key = _key(member)
            if key in seen:
                continue
            try:
                changed = parse_time(key[1])
            except ValueError as exc:
                raise ConnectorError(f"mailchimp: member {key[0]} has a bad last_changed {key[1]!r}") from exc
            seen[key] = changed
            fresh.append(member)
            self.delivered += 1
            self.high = changed if self.high is None else max(self.high, changed)
        if raw:
            self._anchor = _key(raw[-1])
            self._anchor_time = parse_time(self._anchor[1])
            # A restart re-reads from a second before the anchor: older keys cannot come back.
            floor = self._anchor_time - _SECOND
            for key in [k for k, t in seen.items() if t < floor]:
                del seen[key]
        return fresh

    async def _page(self, offset: int, count: int) -> tuple[list[Member], int | None]:
        overlap = 1 if offset > 0 and self._anchor is not None else 0
        params: dict[str, str | int] = {
            "count": count + overlap,
            "offset": offset - overlap,
            "sort_field": "last_changed",
            "sort_dir": "ASC",
        }
        if self._bound is not None:
            params["since_last_changed"] = format_time(self._bound)
        if self._status is not None:
            params["status"] = self._status
        body = await self._fetch(params)
        members = body.get("members")
        total = body.get("total_items")
        if not isinstance(members, list) or not isinstance(total, int):
            raise ConnectorError("mailchimp: member listing without 'members' and 'total_items'")
        if overlap:
            if not members or _key(members[0]) != self._anchor:
                raise _Shifted
            members = members[1:]
        self._totals.add(total)
        self._last_total = total
        return members, total
