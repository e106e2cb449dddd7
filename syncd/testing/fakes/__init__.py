"""Faithful fake servers of the apps syncd talks to, on loopback ports (tests, benchmarks, ``syncd demo``).

Shared by every fake: ``FakeApp`` (lifecycle, failure injection, webhook delivery), ``FakeClock``
(the fakes' time) and ``FailureKind`` (what can be injected, also by the conformance kit).
"""

from ._clock import FakeClock, to_ms
from ._failures import Failure, FailureKind
from ._server import FakeApp

__all__ = ["Failure", "FailureKind", "FakeApp", "FakeClock", "to_ms"]
