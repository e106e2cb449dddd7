"""The state store: entities, links, baselines, change log, conflicts, outbox, cursors.

``StateStore`` (in ``base``) is the interface; ``Store`` is the SQLite backend, the embedded
default. Code above the store depends on the interface only.
"""

from .base import (
    ChangeRow,
    ConflictRow,
    CursorRow,
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
    "AsyncStore",
    "ChangeRow",
    "ConflictRow",
    "CursorRow",
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
