"""Cooperative shutdown: long runner work stops at its next committed page or batch.

The runner calls ``on_progress`` right after each committed page of a read and each settled
dispatch batch. Once shutdown begins, ``StopSwitch.checkpoint`` (installed as that hook) raises
``Stopping`` there, so a poll or a drain ends with everything it did committed and nothing half
sent; the daemon catches it as a normal end of work.
"""

from __future__ import annotations

from typing import Any


class Stopping(Exception):
    """Shutdown reached a safe point of a poll or a drain."""


class StopSwitch:
    """Shared flag: ``request()`` once; ``checkpoint`` raises ``Stopping`` from then on."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True

    def checkpoint(self, _stats: Any = None) -> None:
        if self.requested:
            raise Stopping()
