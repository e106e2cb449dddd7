"""Shared fixtures for the connector SDK tests."""

from __future__ import annotations

import pytest

from tests.connector.fake_clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
