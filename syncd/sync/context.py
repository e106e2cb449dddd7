"""What the ingest, plan and dispatch steps of one runner share.

The store, the mappings with their apps' connectors, the options, and the mutable state of the
current cycle: its run id, its counts, the apps paused, and (in a dry run) the writes not sent.
Only the runner's facade changes the mappings or connectors (``replace``); the steps read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import structlog

from syncd.connector import Connector
from syncd.failures import failure
from syncd.mapping import Mapping as SyncMapping
from syncd.store import AsyncStore

from .stats import RunStats

log = structlog.get_logger("syncd.runner")


def iso(value: datetime | None) -> str | None:
    """A remote timestamp as the store keeps it (UTC, milliseconds, ``Z``)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class Claim:
    """Who claims an app's intents on a shared state: a daemon id, the epoch of its lease on
    the app, and how long a claim lasts unless settled."""

    owner: str
    epoch: int
    ttl: float


class Claims(Protocol):
    """Which apps this daemon serves when several daemons share the state (``daemon.cluster``)."""

    @property
    def daemon_id(self) -> str:
        """This daemon's id: the owner of its claims."""
        ...

    @property
    def ttl(self) -> float:
        """Seconds an unsettled claim lasts before another daemon may take it over."""
        ...

    def serves(self, app: str) -> bool:
        """Whether this daemon reads from and writes to ``app`` now (it holds the app's lease)."""
        ...

    async def claim_for(self, app: str) -> Claim | None:
        """The claim to send ``app``'s next batch under, after checking the lease is still held;
        None once it is not."""
        ...


class SyncContext:
    """The shared state of one runner (one syncd instance's engine)."""

    def __init__(
        self,
        store: AsyncStore,
        mappings: Sequence[SyncMapping],
        connectors: Mapping[str, Connector],
        *,
        batch_size: int = 500,
        max_attempts: int = 8,
        retry_base: float = 1.0,
        allow_mass_delete: bool = False,
        dry_run: bool = False,
        id_scan_interval: Mapping[str, float] | None = None,
    ) -> None:
        self.store = store
        self.mappings = list(mappings)
        self.by_name = {m.name: m for m in self.mappings}
        self.connectors = dict(connectors)
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.allow_mass_delete = allow_mass_delete
        self.dry_run = dry_run
        #: Seconds between id-only listings per app (0 or absent: at every incremental read).
        self.id_scan_interval: dict[str, float] = dict(id_scan_interval or {})
        #: In a dry run: the writes that would have been sent.
        self.planned: list[dict[str, Any]] = []
        self.paused: set[str] = set()
        self.stats = RunStats()
        self.run_id = 0
        #: Called after every committed page / dispatch batch (progress displays, metrics).
        self.on_progress: Callable[[RunStats], None] | None = None
        #: On a state shared by several daemons: which apps this one serves (None: all of them).
        self.claims: Claims | None = None
        #: ``(sync, app)`` pairs read by a complete listing in the current cycle, with no record
        #: quarantined and no scope filter on the app: every record the app held with a key was
        #: matched to its entity then, so
        #: a first attempt at a create for that app needs no lookup by key (a retried one still
        #: does: its earlier attempt may have created the record). Cleared at each cycle's start.
        self.listed: set[tuple[str, str]] = set()

    def serves(self, app: str) -> bool:
        return self.claims is None or self.claims.serves(app)

    async def claim_for(self, app: str) -> Claim | Literal[False] | None:
        """None: claim without an owner (one daemon); False: another daemon serves ``app``."""
        if self.claims is None:
            return None
        claim = await self.claims.claim_for(app)
        return False if claim is None else claim

    def replace(self, mappings: Sequence[SyncMapping], connectors: Mapping[str, Connector]) -> None:
        """New mappings (a reload); ``connectors`` adds or replaces apps' connectors."""
        self.connectors.update(connectors)
        self.mappings = list(mappings)
        self.by_name = {m.name: m for m in self.mappings}

    def pause(self, app: str, exc: Exception, why: str = "credentials rejected") -> None:
        """A read or write of ``app`` failed in a way retries cannot fix: stop using the app
        (``pause_app``) and count the failure in this cycle's stats."""
        self.pause_app(app, exc, why)
        self.stats.apps[app].errors += 1
        self.stats.failures[app] = failure(exc)

    def pause_app(self, app: str, exc: Exception, why: str) -> None:
        """Stop reading from and writing to ``app`` until it is resumed (logged once)."""
        if app not in self.paused:
            log.error(f"app paused: {why}", app=app, error=str(exc))
        self.paused.add(app)

    def progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)
