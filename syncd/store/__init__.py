"""The state store: entities, links, baselines, change log, conflicts, outbox, cursors.

``StateStore`` (in ``base``) is the interface; ``Store`` is the SQLite backend, the embedded
default; ``postgres.PgStore`` the PostgreSQL one, for several daemons on one state (imported on
demand: psycopg is the optional `postgresql` extra). Code above the store depends on the
interface only; ``connect(location)`` picks the backend.

The names below are imported on first use (PEP 562): a command that never opens the state
(``syncd --version``, the settings' check of a state URL in ``location``) does not load the
backends and their SQL helpers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import (
        AppHealthRow,
        ChangeRow,
        ConflictRow,
        CursorRow,
        DaemonRow,
        ErasureRow,
        HeldDeleteRow,
        InboxRow,
        Intent,
        LeaseRow,
        NewIntent,
        RunRow,
        StateStore,
    )
    from .db import AsyncStore, Store, connect, now_iso

#: Where each exported name is defined.
_HOME = {
    "AppHealthRow": ".base",
    "AsyncStore": ".db",
    "ChangeRow": ".base",
    "ConflictRow": ".base",
    "CursorRow": ".base",
    "DaemonRow": ".base",
    "ErasureRow": ".base",
    "HeldDeleteRow": ".base",
    "InboxRow": ".base",
    "Intent": ".base",
    "LeaseRow": ".base",
    "NewIntent": ".base",
    "RunRow": ".base",
    "StateStore": ".base",
    "Store": ".db",
    "connect": ".db",
    "now_iso": ".db",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AppHealthRow",
    "AsyncStore",
    "ChangeRow",
    "ConflictRow",
    "CursorRow",
    "DaemonRow",
    "ErasureRow",
    "HeldDeleteRow",
    "InboxRow",
    "Intent",
    "LeaseRow",
    "NewIntent",
    "RunRow",
    "StateStore",
    "Store",
    "connect",
    "now_iso",
]
