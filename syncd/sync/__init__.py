"""The I/O around the pure engine: ingest, plan, dispatch, and the admin operations.

``syncd.runner.Runner`` composes the steps into a cycle; the CLI, the admin API and the demo call
``operations``. Nothing here imports the CLI or the daemon.
"""

from .context import Claim, Claims, SyncContext
from .dispatch import Fenced, OutboxDispatch
from .ingest import Ingester
from .operations import (
    drop_dead_letters,
    entity_view,
    one_writer,
    replay,
    resolve_conflict,
)
from .plan import Planner
from .stats import AppStats, RunStats

__all__ = [
    "AppStats",
    "Claim",
    "Claims",
    "Fenced",
    "Ingester",
    "OutboxDispatch",
    "Planner",
    "RunStats",
    "SyncContext",
    "drop_dead_letters",
    "entity_view",
    "one_writer",
    "replay",
    "resolve_conflict",
]
