"""Several daemons on one state: membership, the leases of single-daemon work, shared budgets.

On a SQLite state there is one daemon (the state's single-writer lease, ``lease.py``, keeps a
second one out) and it does everything: ``Cluster(shared=False)`` says yes to every ``lead``.

On a PostgreSQL state any number of identical daemons run, and the work is divided so:

- **Each app's traffic runs on one daemon at a time**: the holder of the lease ``app:<name>``
  polls the app, runs its full reconciliations and id scans, re-reads what its webhooks name and
  sends it every write. An app's API budget (requests per second, open connections) is the bound
  on its throughput and is per app, so one sender per app keeps the connection cap and the
  ordering of writes to one record; different apps are served by different daemons.
- **Merging and planning are shared**: dirty entities are claimed in batches by any daemon
  (``claim_dirty``: ``FOR UPDATE SKIP LOCKED``) and cleared only if no event re-dirtied them
  (``ack_dirty``); every unit of work runs on a snapshot and is replayed when it loses a race
  (see ``syncd.store.postgres``), so two daemons never decide on one entity from two pasts.
- **Webhooks are accepted by every daemon**: verified and stored in the inbox, which the app's
  lease holder works off.
- **Housekeeping** (pruning, erasure retries) runs under the lease ``housekeeping``.

A lease has a holder and an **epoch** (its fencing token, raised each time it changes hands). A
daemon renews its leases every ``ttl / 3``; one that dies (or stalls past ``ttl``) loses them to the
next daemon that asks, whose epoch is higher. The intents a daemon claims carry its id and the
app lease's epoch, and their outcome is recorded only while that claim is still the daemon's own
(``settle`` is fenced): a stalled daemon that wakes up cannot commit over its successor. Before each
batch of writes the daemon checks that it still holds the app's lease, so after losing it, it
sends nothing more; a write it sent just before dying is found by the successor's pre-write
re-read (creates are looked up by key, updates compared with what the app holds), not sent again.

**Budgets**: each app's request rate is also taken from a token bucket in the state
(``take_tokens``), so whichever daemons talk to an app — its lease holder, and during a hand-over
the one before — stay together within the app's limit.

Each daemon publishes a heartbeat (``heartbeat``) with its host, pid, URL and the leases it holds;
``/api/status`` lists every live daemon from it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from syncd.store import AsyncStore, DaemonRow, StateStore
from syncd.sync import Claim

from .lease import Holder

log = structlog.get_logger("syncd.daemon")

HOUSEKEEPING = "housekeeping"


def _take_token(store: StateStore, name: str, rate: float, burst: float, now: float) -> float:
    return store.take_tokens(name, 1.0, rate, burst, now)


def app_lease(app: str) -> str:
    return f"app:{app}"


class Cluster:
    """This daemon among the daemons sharing its state (see the module docstring)."""

    def __init__(
        self,
        store: AsyncStore,
        holder: Holder,
        *,
        ttl: float,
        shared: bool,
        info: Callable[[], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.shared = shared
        self.info = info or dict
        self.clock = clock
        #: lease name -> the epoch under which this daemon holds it.
        self.held: dict[str, int] = {}
        #: The apps to serve between the live daemons (their leases are divided at each beat).
        self.apps: list[str] = []
        #: Called with an app's name when this daemon starts serving it (to poll it at once).
        self.on_acquired: Callable[[str], None] = lambda app: None
        self._name = holder.encode()
        self._beats = 0

    @property
    def daemon_id(self) -> str:
        return self.holder.id

    # -- leases ----------------------------------------------------------------------------------

    async def lead(self, name: str) -> int | None:
        """Hold lease ``name`` (taking it if it is free or expired): its epoch, or None if another
        live daemon holds it. Without a shared state this daemon leads everything (epoch 0)."""
        if not self.shared:
            return 0
        if name in self.held:
            return self.held[name]
        now, me = self.clock(), self._name
        row = await self.store.call(lambda s: s.take_lease(name, me, now, self.ttl))
        if row["holder"] != me:
            return None
        self.held[name] = int(row["epoch"])
        log.info("lease taken", lease=name, epoch=row["epoch"])
        return self.held[name]

    def epoch(self, name: str) -> int | None:
        """The epoch under which this daemon holds ``name`` right now, or None."""
        if not self.shared:
            return 0
        return self.held.get(name)

    def leads(self, name: str) -> bool:
        return self.epoch(name) is not None

    async def still_leads(self, name: str) -> int | None:
        """Renew ``name`` now (before a batch of writes): its epoch if still held, else None."""
        if not self.shared:
            return 0
        epoch = self.held.get(name)
        if epoch is None:
            return None
        now, me = self.clock(), self._name
        ok = await self.store.call(lambda s: s.renew_lease(name, me, now, self.ttl, epoch=epoch))
        if not ok:
            self._lost(name)
            return None
        return epoch

    def want(self, apps: Iterable[str]) -> None:
        """The apps of the current mappings; leases of apps no longer synced are given up at the
        next beat."""
        self.apps = sorted(set(apps))

    # -- ``syncd.sync.Claims``: which apps this daemon serves ---------------------------------------

    def serves(self, app: str) -> bool:
        return self.leads(app_lease(app))

    async def claim_for(self, app: str) -> Claim | None:
        epoch = await self.still_leads(app_lease(app))
        if epoch is None:
            return None
        return Claim(self.daemon_id, epoch, self.ttl)

    def _lost(self, name: str) -> None:
        if self.held.pop(name, None) is not None:
            log.warning("lease lost: another daemon took over", lease=name)

    async def beat(self) -> None:
        """One heartbeat: publish this daemon, renew its leases, and divide the apps' leases
        between the live daemons (each takes free ones up to its fair share and gives back what
        is above it, so a joining daemon gets work and a dead one's apps are taken over)."""
        if not self.shared:
            return
        now, me = self.clock(), self._name
        held = dict(self.held)
        info = {**self.info(), "host": self.holder.host, "pid": self.holder.pid, "leases": sorted(held)}

        def unit(store: StateStore) -> tuple[list[str], int]:
            store.heartbeat(self.daemon_id, info, now, self.ttl)
            lost = [n for n, e in held.items() if not store.renew_lease(n, me, now, self.ttl, epoch=e)]
            return lost, len(store.live_daemons(now))

        lost, live = await self.store.call(unit)
        for name in lost:
            self._lost(name)
        self._beats += 1
        if self._beats == 1:
            return  # the first beat only registers: daemons starting together divide the apps next
        wanted = [app_lease(a) for a in self.apps]
        fair = math.ceil(len(wanted) / max(live, 1))
        mine = [n for n in self.held if n.startswith("app:")]
        for name in [n for n in mine if n not in wanted] + mine[fair:]:
            await self.release(name)
        mine = [n for n in self.held if n.startswith("app:")]
        for name in wanted:
            if len(mine) >= fair:
                break
            if name not in self.held and await self.lead(name) is not None:
                mine.append(name)
                self.on_acquired(name.removeprefix("app:"))

    async def release(self, name: str) -> None:
        """Give lease ``name`` up now (another daemon may take it at its next beat)."""
        epoch = self.held.pop(name, None)
        if epoch is None or not self.shared:
            return
        me = self._name
        await self.store.call(lambda s: s.release_lease(name, me, epoch=epoch))
        log.info("lease given up", lease=name, epoch=epoch)

    async def run(self) -> None:
        """Heartbeat every ``ttl / 3`` until cancelled (a failed beat is retried at the next one);
        the second beat comes within a second, so the apps are divided soon after start-up."""
        while True:
            try:
                await self.beat()
            except Exception:  # the state is unreachable for a moment: the ttl has slack
                log.warning("heartbeat failed; retrying", exc_info=True)
            await asyncio.sleep(min(self.ttl / 3, 1.0) if self._beats == 1 else self.ttl / 3)

    async def leave(self) -> None:
        """Give every lease up at once (a clean stop hands the work over without waiting)."""
        if not self.shared:
            return
        me, held = self._name, dict(self.held)
        self.held.clear()

        def unit(store: StateStore) -> None:
            for name, epoch in held.items():
                store.release_lease(name, me, epoch=epoch)
            store.heartbeat(self.daemon_id, {**self.info(), "stopping": True}, self.clock(), 0.0)

        await self.store.call(unit)

    # -- membership and budgets --------------------------------------------------------------------

    async def members(self) -> list[dict[str, Any]]:
        """The live daemons on this state (this one included), as ``/api/status`` shows them."""
        if not self.shared:
            return [{"id": self.daemon_id, "self": True, "host": self.holder.host, "pid": self.holder.pid}]
        now = self.clock()
        rows: list[DaemonRow] = await self.store.call(lambda s: s.live_daemons(now))
        return [
            {
                "id": r["daemon_id"],
                "self": r["daemon_id"] == self.daemon_id,
                **r["info"],
                "last_seen_seconds": round(now - float(r["seen_at"]), 3),
            }
            for r in rows
        ]

    def budget(self, app: str) -> Callable[[float, int], Any]:
        """A shared request budget for ``app`` (see ``syncd.connector.http.share_budget``)."""
        name = f"budget:{app}"

        async def take(rate: float, burst: int) -> None:
            while True:
                wait = await self.store.call(_take_token, name, rate, float(burst), self.clock())
                if wait <= 0:
                    return
                await asyncio.sleep(wait)

        return take
