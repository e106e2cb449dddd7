"""Faithful fake servers of the apps syncd talks to, on loopback ports (tests, benchmarks, ``syncd demo``)."""

from ._server import Failure, FakeApp

__all__ = ["Failure", "FakeApp"]
