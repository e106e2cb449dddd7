"""The daemon behind ``syncd run``: scheduled polls, webhooks, the outbox dispatcher, the admin API.

Modules by role: ``service`` (composition and lifecycle), ``scheduler`` (periodic jobs; the only
APScheduler user), ``dispatcher`` (the outbox loop), ``webhooks`` and ``inbox`` (durable webhook
intake), ``admin`` (the admin HTTP API, described by ``openapi.json``), ``metrics`` (Prometheus),
``lease`` (one writer per state store) and ``stopping`` (cooperative shutdown).

``Daemon`` and ``DaemonError`` are imported on first use (PEP 562): a one-off command that only
needs the state's lease (``syncd sync --once``) does not load the web server, the scheduler and
the metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .lease import Holder, Lease, LeaseHeld

if TYPE_CHECKING:
    from .service import Daemon, DaemonError


def __getattr__(name: str) -> Any:
    if name in ("Daemon", "DaemonError"):
        from . import service

        value = getattr(service, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Daemon", "DaemonError", "Holder", "Lease", "LeaseHeld"]
