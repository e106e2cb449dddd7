"""The state store (SQLite): entities, links, baselines, change log, conflicts, outbox, cursors."""

from .db import AsyncStore, Intent, Store, now_iso

__all__ = ["AsyncStore", "Intent", "Store", "now_iso"]
