"""The one clock of the fake app servers: running or frozen, moved forward by tests.

Every fake takes a ``FakeClock`` and asks it the time in the unit its app speaks: epoch
milliseconds (``now_ms``, HubSpot and Zendesk) or a UTC ``datetime`` (``now``, or calling the
clock, Mailchimp). Tests freeze it for deterministic timestamps and move it with ``advance``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def to_ms(when: datetime) -> int:
    """Epoch milliseconds of ``when`` (a naive datetime is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


class FakeClock:
    """Epoch-millisecond time for a fake app.

    A running clock follows wall time (plus whatever ``advance`` added); a frozen one stands still
    until advanced, which makes timestamps and search-index lag fully deterministic in tests.
    ``tick`` (seconds) moves the clock on after every reading, so that successive changes get
    distinct timestamps without the test managing time. Calling the clock is ``now()``, so it goes
    wherever a fake takes a ``Callable[[], datetime]``.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False, tick: float = 0.0) -> None:
        if tick < 0:
            raise ValueError(f"tick must not be negative, got {tick}")
        self.frozen = frozen
        self.tick = tick
        self._start_ms = to_ms(start) if start is not None else int(time.time() * 1000)
        self._wall_at_start = time.time()
        self._offset_ms = 0

    def now_ms(self) -> int:
        """The current time in epoch milliseconds (then moves on by ``tick``)."""
        now = self._start_ms + self._offset_ms
        if not self.frozen:
            now += int((time.time() - self._wall_at_start) * 1000)
        if self.tick:
            self._offset_ms += round(self.tick * 1000)
        return now

    def now(self) -> datetime:
        """The current time as a UTC datetime (then moves on by ``tick``)."""
        return datetime.fromtimestamp(self.now_ms() / 1000, UTC)

    def __call__(self) -> datetime:
        return self.now()

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or, with a negative value, back) by ``seconds``."""
        self._offset_ms += round(seconds * 1000)
