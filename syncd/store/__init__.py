"""The state store: entities, links, baselines, change log, conflicts, outbox, cursors.

``StateStore`` (in ``base``) is the interface; ``Store`` is the SQLite backend, the embedded
default; ``postgres.PgStore`` the PostgreSQL one, for several daemons on one state (imported on
demand: psycopg is the optional `postgresql` extra). Code above the store depends on the
interface only; ``connect(location)`` picks the backend.
"""

from .base import (
    AppHealthRow,
    ChangeRow,
    ConflictRow,
    CursorRow,
    DaemonRow,
    ErasureRow,
    InboxRow,
    Intent,
    LeaseRow,
    NewIntent,
    RunRow,
    StateStore,
)
from .db import AsyncStore, Store, connect, now_iso

__all__ = [
    "AppHealthRow",
    "AsyncStore",
    "ChangeRow",
    "ConflictRow",
    "CursorRow",
    "DaemonRow",
    "ErasureRow",
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
