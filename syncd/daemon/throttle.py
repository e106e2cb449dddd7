"""Failed-token throttling for the admin API and the review page's login.

Tokens are long random strings, so guessing one is hopeless; still, a client that keeps
presenting wrong tokens is refused for a while instead of being answered as fast as it asks.
After ``limit`` wrong tokens from one address within ``window`` seconds, that address gets 429
with ``Retry-After`` (the wrong token is not even compared) until the oldest of those failures
is ``window`` seconds old. A right token from that address clears its record. A missing token is
not a failure (a probe or a browser before login); a wrong one is, on both the API and the login
form, counted together.

Behind a reverse proxy every client shares the proxy's address: one client's wrong tokens then
slow the others' logins too, for at most ``window`` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

#: Wrong tokens one address may present per window.
DEFAULT_LIMIT = 20
#: Seconds over which failures are counted.
DEFAULT_WINDOW = 60.0
#: Addresses remembered at most (the least recently failed are forgotten first).
MAX_ADDRESSES = 10_000


class FailedAuthThrottle:
    """Counts wrong tokens per client address (see the module docstring)."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str | None) -> float | None:
        """Seconds before ``address`` may try a token again; None if it may now."""
        failures = self._recent(address or "")
        if failures is None or len(failures) < self.limit:
            return None
        return max(failures[0] + self.window - self.clock(), 0.001)

    def failed(self, address: str | None) -> None:
        key = address or ""
        failures = self._recent(key)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self.limit)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)
        self._failures.move_to_end(key)
        failures.append(self.clock())

    def succeeded(self, address: str | None) -> None:
        self._failures.pop(address or "", None)

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        oldest = self.clock() - self.window
        while failures and failures[0] <= oldest:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures


__all__ = ["DEFAULT_LIMIT", "DEFAULT_WINDOW", "FailedAuthThrottle"]
