"""The daemon behind ``syncd run``: scheduled polls, webhooks, the outbox dispatcher, the admin API.

Modules by role: ``service`` (composition and lifecycle), ``scheduler`` (periodic jobs; the only
APScheduler user), ``dispatcher`` (the outbox loop), ``webhooks`` and ``inbox`` (durable webhook
intake), ``admin`` (the admin HTTP API, described by ``openapi.json``), ``metrics`` (Prometheus),
``lease`` (one writer per state store) and ``stopping`` (cooperative shutdown).
"""

from .lease import Holder, Lease, LeaseHeld
from .service import Daemon, DaemonError

__all__ = ["Daemon", "DaemonError", "Holder", "Lease", "LeaseHeld"]
