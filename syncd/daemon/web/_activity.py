"""The activity stream: change-log entries as one-line sentences, for the web page and the log.

The lines are the ones ``syncd demo`` prints (``syncd.demo.feed.format_change``). ``ActivityLog``
follows the change log while the daemon runs and logs each new line at info level (event
``change``), so ``syncd run``'s log tells what changed, not only how many records moved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from syncd.demo.feed import entries_after, format_change, latest_id
from syncd.store import AsyncStore, ChangeRow, StateStore

from ._masking import mask_prose, mask_value

log = structlog.get_logger("syncd.daemon")

#: Seconds between two looks at the change log.
INTERVAL = 1.0
#: Most entries one look returns (a burst beyond it is summed up in one line).
MAX_ENTRIES = 500


def recent_entries(
    store: StateStore, after: int | None, limit: int = 200
) -> tuple[list[tuple[ChangeRow, str | None]], int]:
    """Entries written after position ``after`` (oldest first, at most about ``MAX_ENTRIES`` of
    the newest), or the latest ``limit`` when ``after`` is None; each with its customer's key;
    and the position to ask from next (``entries_after``)."""
    latest = latest_id(store)
    if after is None or latest - after > MAX_ENTRIES:
        after = max(latest - (limit if after is None else MAX_ENTRIES), 0)
    return entries_after(store, after)


def entry_view(entry: ChangeRow, key: str | None, *, masked: bool = False) -> dict[str, Any]:
    """One entry for the page: its id, sync, app, field, code and line (personal data masked when
    ``masked``)."""
    shown = entry
    if masked:
        shown = {
            **entry,
            "old": mask_value(entry["old"]),
            "new": mask_value(entry["new"]),
            "reason": mask_prose(entry["reason"]) or "",
        }
        key = mask_value(key)
    return {
        "id": entry["id"],
        "at": entry["at"],
        "sync": entry["sync"],
        "app": entry["app"],
        "field": entry["field"],
        "code": entry["code"],
        "entity_id": entry["entity_id"],
        "line": format_change(shown, key),
    }


class ActivityLog:
    """Logs each new change-log entry at info level until cancelled (see the module docstring).

    One look logs at most ``MAX_ENTRIES`` lines: a bigger burst (a first sync of many records)
    logs its newest entries and one line saying how many ids it skipped, so the log stays
    readable and a look stays cheap. It follows the change log by position, not id: an entry
    folded into a row it logged before (``created in …``) is logged when it is written. ``leads`` (on a state shared by several daemons) says
    whether this daemon is the one that logs; the others only keep up, so a takeover does not
    replay what the previous one logged.
    """

    def __init__(
        self,
        store: AsyncStore,
        interval: float = INTERVAL,
        leads: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        self.interval = interval
        self.leads = leads
        self.after = 0

    async def start_here(self) -> None:
        self.after = await self.store.call(latest_id)

    async def once(self) -> int:
        """Log what was committed since the last look; returns how many lines were logged."""
        latest = await self.store.call(latest_id)
        if latest <= self.after:
            return 0
        if self.leads is not None and not await self.leads():
            self.after = latest
            return 0
        if latest - self.after > MAX_ENTRIES:
            log.info(
                "changes not logged one by one",
                first_id=self.after + 1,  # positions: ids, and the values folds moved rows to
                last_id=latest - MAX_ENTRIES,
                see="the review page's activity, or /api/changelog",
            )
            self.after = latest - MAX_ENTRIES
        found, self.after = await self.store.call(entries_after, self.after)
        for entry, key in found:
            log.info("change", line=format_change(entry, key), sync=entry["sync"], code=entry["code"])
        return len(found)

    async def run(self) -> None:
        await self.start_here()
        while True:
            try:
                await self.once()
            except Exception:  # the next look tries again; the sync itself is not affected
                log.warning("activity: cannot read the change log", exc_info=True)
            await asyncio.sleep(self.interval)
