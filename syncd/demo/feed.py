"""The live change feed: each new change-log entry, printed as the daemon commits it.

This is how the demo lets you "watch it propagate": an edit made through a fake's API shows up
as ``changed in crm`` when the daemon has re-read it, then ``written to email`` once Mailchimp
accepted the write. The feed reads the state store's change log (what ``syncd show`` and the
admin API's ``/api/changelog`` read), a few times a second.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from syncd.store import AsyncStore, ChangeRow, StateStore

#: Seconds between two looks at the change log.
INTERVAL = 0.25
#: Change-log fields that are bookkeeping, not customer data.
_PSEUDO = {"*", "@key", "@identity"}


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def format_change(entry: ChangeRow, key: str | None) -> str:
    """One change-log entry as a line: time, customer, field, old → new, reason."""
    at = str(entry["at"])[11:19]
    who = key or f"entity {entry['entity_id']}"
    if entry["field"] == "*" and isinstance(entry["new"], dict) and entry["new"]:
        # A new record's one row carries all its values: show them, as per-field rows did.
        values = ", ".join(f"{k}: {_value(v)}" for k, v in sorted(entry["new"].items()))
        return f"{at}  {who}  {entry['reason']}: {values}"
    if entry["field"] in _PSEUDO:
        return f"{at}  {who}  {entry['reason']}"
    change = f"{_value(entry['old'])} → {_value(entry['new'])}"
    return f"{at}  {who}  {entry['field']}: {change}  ({entry['reason']})"


def latest_id(store: StateStore) -> int:
    """Where a follower that skips what happened so far starts: the change log's position now
    (``StateStore.changelog_position``; not an id: a row folded into later moves past it)."""
    return store.changelog_position()


def entries_after(
    store: StateStore, after: int, page: int = 200
) -> tuple[list[tuple[ChangeRow, str | None]], int]:
    """Change-log entries written after position ``after``, oldest first, each with its entity's
    key, and the position to follow from next. An entry folded into a row the follower already
    saw (``created in …`` after ``new record in …``) comes now; what it saw then does not come
    again."""
    rows: list[ChangeRow] = []
    while True:
        batch, upto = store.changes_after(after, page)
        rows += batch
        done = upto == after or len(batch) < page  # a page cut short holds at least ``page`` entries
        after = upto
        if done:
            break
    entities = store.entities({r["entity_id"] for r in rows if r["entity_id"] is not None})
    return [(r, entities[r["entity_id"]].key if r["entity_id"] in entities else None) for r in rows], after


class ChangeFeed:
    """Prints new change-log entries until cancelled."""

    def __init__(self, store: AsyncStore, console: Console) -> None:
        self.store = store
        self.console = console
        self.after = 0
        self.printed: list[str] = []

    async def start_here(self) -> None:
        """Skip what happened so far (the first sync's entries)."""
        self.after = await self.store.call(latest_id)

    async def once(self) -> Sequence[str]:
        """Print the entries committed since the last look."""
        found, self.after = await self.store.call(entries_after, self.after)
        lines = []
        for entry, key in found:
            line = format_change(entry, key)
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
            lines.append(line)
        self.printed += lines
        return lines

    async def run(self) -> None:
        while True:
            await self.once()
            await asyncio.sleep(INTERVAL)
