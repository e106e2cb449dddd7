"""Counts of one sync cycle, overall and per app (progress displays, metrics, the CLI's summary)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AppStats:
    read: int = 0
    linked: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    errors: int = 0
    writes: int = 0
    #: Complete listings of this app whose delete propagation the mass-delete guard stopped.
    delete_guard: int = 0
    #: Creates refused because the record's natural key was empty.
    refused: int = 0
    #: Records that could not be read or mapped (quarantined as dead letters).
    quarantined: int = 0
    #: Records read with an older stamp than syncd already knew (read before a recorded write).
    stale: int = 0


@dataclass
class RunStats:
    """Counts of one cycle, overall and per app."""

    run_id: int = 0
    entities_new: int = 0
    conflicts: int = 0
    review: int = 0
    changes: int = 0
    #: Fields parked because two apps kept rewriting each other's form of a value.
    oscillations: int = 0
    delete_guard: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    #: Why an app failed this cycle (its last read failure or pause): ``syncd.failures.failure``.
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    apps: dict[str, AppStats] = field(default_factory=lambda: defaultdict(AppStats))
    #: Progress hints, not counts of what happened (so not in ``as_dict``): per app, how many
    #: records its reads of this cycle deliver in all when the app tells (``Page.total``), and
    #: how many writes were planned into the outbox.
    read_totals: dict[str, int] = field(default_factory=dict)
    planned: int = 0

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.apps.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "linked": self.total("linked"),
            "created": self.total("created"),
            "updated": self.total("updated"),
            "deleted": self.total("deleted"),
            "conflicts": self.conflicts,
            "review": self.review,
            "errors": self.total("errors"),
            "writes": self.total("writes"),
            "read": self.total("read"),
            "entities_new": self.entities_new,
            "changes": self.changes,
            "refused": self.total("refused"),
            "quarantined": self.total("quarantined"),
            "oscillations": self.oscillations,
            "delete_guard": self.delete_guard,
            "paused": self.paused,
            "failures": self.failures,
            "apps": {name: vars(s) for name, s in sorted(self.apps.items())},
        }
