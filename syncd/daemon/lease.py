"""One writer per state store: a lease row with a heartbeat, taken over only after it expires.

``syncd run`` takes the lease before touching anything and renews it every third of its
time-to-live; a second instance on the same state finds it held and refuses to start
(``LeaseHeld``, naming the holder's pid and host). If the holder dies, its lease expires after
``ttl`` seconds and the next instance takes over. A holder that finds its lease gone (it stalled
past the ttl and was replaced) must stop writing at once. Times are wall-clock seconds, since
the instances are separate processes, possibly on separate hosts sharing the file.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from syncd.store import AsyncStore

log = structlog.get_logger("syncd.daemon")

LEASE_NAME = "syncd-run"


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a unique instance id plus what a person needs to find it."""

    id: str
    pid: int
    host: str

    @classmethod
    def this_process(cls) -> Holder:
        return cls(uuid.uuid4().hex, os.getpid(), socket.gethostname())

    def encode(self) -> str:
        return json.dumps({"id": self.id, "pid": self.pid, "host": self.host}, sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> Holder:
        try:
            data: Any = json.loads(text)
            return cls(str(data["id"]), int(data["pid"]), str(data["host"]))
        except (ValueError, TypeError, KeyError):
            return cls(text, 0, "unknown")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _gone(holder: Holder) -> bool:
    """True only if ``holder`` ran on this host and its process no longer exists."""
    if holder.host != socket.gethostname() or holder.pid <= 0 or holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False


class LeaseHeld(Exception):
    """Another live instance holds the state's lease."""

    def __init__(self, holder: Holder, until: float, state: str) -> None:
        self.holder = holder
        self.until = until
        super().__init__(
            f"another syncd (pid {holder.pid} on host {holder.host}) holds the state {state} "
            f"until {_iso(until)} unless it renews its lease; stop it first, or wait for the lease to expire"
        )


class Lease:
    """The lease of one state store, held by this process (see the module docstring)."""

    def __init__(
        self,
        store: AsyncStore,
        *,
        ttl: float,
        state: str = "",
        name: str = LEASE_NAME,
        clock: Callable[[], float] | None = None,
        holder: Holder | None = None,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.state = state
        self.name = name
        self.clock = clock or time.time
        self.holder = holder or Holder.this_process()
        self.held = False

    async def acquire(self) -> None:
        """Take the lease, or raise ``LeaseHeld`` if another live instance has it."""
        row = await self.store.call(
            lambda s: s.take_lease(self.name, self.holder.encode(), self.clock(), self.ttl)
        )
        if row["holder"] != self.holder.encode():
            other = Holder.decode(row["holder"])
            if not _gone(other):
                raise LeaseHeld(other, float(row["expires_at"]), self.state)
            # Its holder died on this very host (kill -9, power cut of a container): no need to
            # wait for the lease to expire. Swapped only if that dead holder still has it.
            taken = await self.store.call(
                lambda s: s.steal_lease(
                    self.name, row["holder"], self.holder.encode(), self.clock(), self.ttl
                )
            )
            if not taken:
                raise LeaseHeld(other, float(row["expires_at"]), self.state)
            log.warning(
                "lease taken over from a process that no longer exists", dead_pid=other.pid, host=other.host
            )
        self.held = True
        log.info("lease taken", pid=self.holder.pid, host=self.holder.host, ttl=self.ttl, state=self.state)

    async def renew(self) -> bool:
        """Extend the lease; False (and ``held`` cleared) if another instance took it over."""
        ok = await self.store.call(
            lambda s: s.renew_lease(self.name, self.holder.encode(), self.clock(), self.ttl)
        )
        self.held = ok
        return ok

    async def release(self) -> None:
        if self.held:
            await self.store.call(lambda s: s.release_lease(self.name, self.holder.encode()))
            self.held = False

    async def heartbeat(self, on_lost: Callable[[], None]) -> None:
        """Renew every ``ttl / 3`` seconds until cancelled; call ``on_lost`` once if the lease is lost."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                ok = await self.renew()
            except Exception:  # a locked or unreadable store: try again next beat, the ttl has slack
                log.warning("lease renewal failed; retrying", exc_info=True)
                continue
            if not ok:
                log.error("lease lost: another syncd took over the state; stopping", state=self.state)
                on_lost()
                return
