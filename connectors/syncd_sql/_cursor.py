"""Read cursors: where the next read of the table resumes.

The engine stores a cursor verbatim; three shapes exist:

* ``{"updated_at": W, "pk": P, "read_at": R}`` — rows after ``(W, P)`` in ``(updated_at, pk)``
  order, and the rows a writer may still commit with an older stamp: those stamped at or after
  ``R`` minus the overlap window, ``R`` being when the read that saw ``W`` began (a row committed
  after that read is stamped at most the overlap before its commit). So a read started more than
  the overlap after ``W`` leaves nothing to repeat, and a table quiet since a bulk write is not
  read again and again. Without ``R`` (cursors of older versions, a resumed listing) the window
  counts back from ``W``. ``W`` and ``R`` are raw column values, so the bound compares correctly
  with the column's own style; ``W`` may be null when no row had a timestamp yet (then every
  timestamped row qualifies).
* ``{"updated_at": W, "pk": null, "listing_after": K}`` — a full listing stopped after key ``K``:
  finish it, then read changes since ``W`` (captured when the listing started).
* ``{"relist": true}`` — the table has no ``updated_at`` column: list it all again.

Anything unreadable (a cursor from older settings, a watermark in an unknown style) falls back
to listing everything again: slower, never a skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from syncd.connector import Cursor

from ._timestamps import Stamp, TimestampStyle, parse_timestamp


@dataclass(frozen=True, slots=True)
class Resume:
    """A parsed incremental cursor."""

    watermark: Stamp | None
    key: Any = None
    #: Set when the cursor comes from an unfinished listing: continue it after this key first.
    listing_after: Any = None
    #: When the read that saw ``watermark`` began, in the column's style (None: not known).
    read_at: Stamp | None = None

    def lower_bound(self, overlap: timedelta) -> tuple[Stamp | None, Any]:
        """``(updated_at, pk)`` to read after: the watermark itself once the read that saw it
        began more than ``overlap`` after it, else that read's start (or, not known, the
        watermark) minus the overlap (no tie-break then)."""
        if self.watermark is None:
            return None, None
        if not overlap:
            return self.watermark, self.key
        style = TimestampStyle.of(self.watermark)
        moment = parse_timestamp(self.watermark)
        if style is None or moment is None:
            return None, None
        read = parse_timestamp(self.read_at) if self.read_at is not None else None
        if read is None:
            return style.format(moment - overlap), None
        if moment <= read - overlap:
            return self.watermark, self.key
        return style.format(max(moment, read) - overlap), None


def changes_cursor(watermark: Stamp | None, key: Any, read_at: datetime | None = None) -> Cursor:
    """A cursor after ``(watermark, key)``; ``read_at`` (when the read began) is kept in the
    watermark's style."""
    cursor: Cursor = {"updated_at": watermark, "pk": key}
    style = TimestampStyle.of(watermark) if read_at is not None else None
    if read_at is not None and style is not None:
        cursor["read_at"] = style.format(read_at)
    return cursor


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
    read_at = cursor.get("read_at")
    if not (_is_scalar(read_at) and parse_timestamp(read_at) is not None):
        read_at = None  # unreadable: count the window back from the watermark, as without it
    return Resume(watermark, key, read_at=read_at)


def _is_scalar(value: object) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))
