"""A fake monotonic clock for the SDK tests: sleeping advances time instantly and is recorded."""

from __future__ import annotations


class FakeClock:
    """Monotonic time that only moves when someone sleeps; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
