"""Read cursors: where the next read of the table resumes.

The engine stores a cursor verbatim; three shapes exist:

* ``{"updated_at": W, "pk": P}`` — rows whose ``updated_at`` is at or after ``W`` minus the overlap
  window (with no overlap: strictly after ``(W, P)`` in ``(updated_at, pk)`` order). ``W`` is the
  raw column value, so the bound compares correctly with the column's own style; ``W`` may be
  null when no row had a timestamp yet (then every timestamped row qualifies).
* ``{"updated_at": W, "pk": null, "listing_after": K}`` — a full listing stopped after key ``K``:
  finish it, then read changes since ``W`` (captured when the listing started).
* ``{"relist": true}`` — the table has no ``updated_at`` column: list it all again.

Anything unreadable (a cursor from older settings, a watermark in an unknown style) falls back
to listing everything again: slower, never a skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from syncd.connector import Cursor

from ._timestamps import Stamp, TimestampStyle


@dataclass(frozen=True, slots=True)
class Resume:
    """A parsed incremental cursor."""

    watermark: Stamp | None
    key: Any = None
    #: Set when the cursor comes from an unfinished listing: continue it after this key first.
    listing_after: Any = None

    def lower_bound(self, overlap: timedelta) -> tuple[Stamp | None, Any]:
        """``(updated_at, pk)`` to read after: the watermark minus the overlap (no tie-break then)."""
        if self.watermark is None:
            return None, None
        if not overlap:
            return self.watermark, self.key
        style = TimestampStyle.of(self.watermark)
        shifted = style.shifted(self.watermark, -overlap) if style is not None else None
        return shifted, None


def changes_cursor(watermark: Stamp | None, key: Any) -> Cursor:
    return {"updated_at": watermark, "pk": key}


def listing_cursor(watermark: Stamp | None, after: Any) -> Cursor:
    return {"updated_at": watermark, "pk": None, "listing_after": after}


def relist_cursor() -> Cursor:
    return {"relist": True}


def parse_cursor(cursor: Cursor) -> Resume | None:
    """Where to resume, or None to list the whole table again."""
    if "updated_at" not in cursor:
        return None
    watermark, key = cursor["updated_at"], cursor.get("pk")
    if not (_is_scalar(watermark) and _is_scalar(key)):
        return None
    if watermark is not None and TimestampStyle.of(watermark) is None:
        return None
    if "listing_after" in cursor:
        after = cursor["listing_after"]
        if after is None or not _is_scalar(after):
            return None
        return Resume(watermark, None, after)
    return Resume(watermark, key)


def _is_scalar(value: object) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))
