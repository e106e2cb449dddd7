"""Timestamps in the style a table already stores them: parse, step and format without mixing styles.

Incremental reads compare the raw ``updated_at`` column with a bound value (so an index on it
serves the query), and text compares lexically. Every value syncd computes — the overlap bound
of a read, the time stamped on a write — is therefore written in the exact style of the values
already in the column: same separator, same fraction digits, same zone suffix, or the same
epoch unit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

#: A timestamp as a column holds it.
Stamp = str | int | float

#: Epoch numbers at or above this are milliseconds (as seconds it would be the year 5138).
_MILLIS_THRESHOLD = 100_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}(?P<sep>[T ])\d{2}:\d{2}:\d{2}(?:\.(?P<frac>\d{1,9}))?(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)

StyleKind = Literal["iso", "epoch_seconds", "epoch_millis", "epoch_float"]


def parse_timestamp(value: object) -> datetime | None:
    """An aware datetime for a column value: ISO-8601 text (naive means UTC) or epoch seconds/millis."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        # timedelta arithmetic is exact for integers (float division would lose the last millisecond)
        unit = timedelta(milliseconds=1) if abs(value) >= _MILLIS_THRESHOLD else timedelta(seconds=1)
        try:
            return _EPOCH + unit * value
        except OverflowError:
            return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True, slots=True)
class TimestampStyle:
    """How a column writes timestamps; ``zone`` is ``""`` (naive, read as UTC), ``"Z"`` or an offset."""

    kind: StyleKind
    separator: str = "T"
    digits: int = 6
    zone: str = "Z"

    @classmethod
    def of(cls, value: object) -> TimestampStyle | None:
        """The style of one stored value, or None if syncd cannot both parse and reproduce it."""
        if isinstance(value, bool) or parse_timestamp(value) is None:
            return None
        if isinstance(value, int):
            return cls("epoch_millis" if abs(value) >= _MILLIS_THRESHOLD else "epoch_seconds")
        if isinstance(value, float):
            # Fractional epoch milliseconds are not reproduced; integer ones are.
            return cls("epoch_float") if abs(value) < _MILLIS_THRESHOLD else None
        if isinstance(value, str):
            match = _ISO.fullmatch(value)
            if match is None:
                return None
            return cls("iso", match["sep"], len(match["frac"] or ""), match["zone"] or "")
        return None

    @classmethod
    def default_for(cls, affinity: str) -> TimestampStyle:
        """The style for a column holding no timestamp yet, from its declared type."""
        if affinity == "integer":
            return cls("epoch_seconds")
        if affinity == "real":
            return cls("epoch_float")
        return cls("iso")

    def step(self) -> timedelta:
        """The smallest difference this style can express."""
        if self.kind == "epoch_seconds":
            return timedelta(seconds=1)
        if self.kind == "epoch_millis":
            return timedelta(milliseconds=1)
        if self.kind == "epoch_float":
            return timedelta(microseconds=1)
        return timedelta(microseconds=10 ** (6 - min(self.digits, 6)))

    def format(self, moment: datetime) -> Stamp:
        """``moment`` written in this style, truncated (never rounded up) to its precision."""
        elapsed = moment - _EPOCH
        if self.kind == "epoch_seconds":
            return elapsed // timedelta(seconds=1)
        if self.kind == "epoch_millis":
            return elapsed // timedelta(milliseconds=1)
        if self.kind == "epoch_float":
            return elapsed / timedelta(seconds=1)
        local = moment.astimezone(self._tzinfo())
        text = (
            f"{local.year:04d}-{local.month:02d}-{local.day:02d}{self.separator}"
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        )
        if self.digits:
            text += "." + f"{local.microsecond:06d}".ljust(self.digits, "0")[: self.digits]
        return text + self.zone

    def after(self, previous: object, now: datetime) -> Stamp:
        """``now`` in this style, or the next instant after ``previous`` if that is not later.

        A write must change the version even when the clock has not moved past the stored value
        (same second in a seconds-precision column, or a stored time in the future).
        """
        stamp = self.format(now)
        before = parse_timestamp(previous)
        if before is None:
            return stamp
        moment = before
        while (written := parse_timestamp(stamp)) is None or written <= before:
            # One step is enough except for epoch floats far out, whose doubles are coarser than 1 µs.
            moment += self.step()
            stamp = self.format(moment)
        return stamp

    def _tzinfo(self) -> timezone:
        if self.zone in ("", "Z"):
            return UTC
        sign = -1 if self.zone[0] == "-" else 1
        digits = self.zone[1:].replace(":", "")
        return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def capped(value: Stamp, limit: datetime) -> Stamp:
    """``value``, or ``limit`` in its style when ``value`` lies after ``limit`` (a clock in the future)."""
    moment = parse_timestamp(value)
    style = TimestampStyle.of(value)
    if moment is None or style is None or moment <= limit:
        return value
    return style.format(limit)
