"""What the ingest, plan and dispatch steps of one runner share.

The store, the mappings with their apps' connectors, the options, and the mutable state of the
current cycle: its run id, its counts, the apps paused, and (in a dry run) the writes not sent.
Only the runner's facade changes the mappings or connectors (``replace``); the steps read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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
