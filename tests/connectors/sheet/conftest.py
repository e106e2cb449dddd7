"""Fixtures for the sheet connector tests: a file per test and a connector factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syncd_sheet import SheetConnector, SheetSettings

ConnectorFactory = Callable[..., SheetConnector]


@pytest.fixture
def connect() -> ConnectorFactory:
    """Builds a connector for a file; keyword arguments are settings."""

    def factory(path: Path, **settings: Any) -> SheetConnector:
        return SheetConnector(SheetSettings.model_validate({"path": str(path), **settings}))

    return factory
