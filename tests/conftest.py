"""Suite-wide hooks: say where the browser tests left their screenshots."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    fresh = (
        [p for p in SCREENSHOTS.glob("*.png") if p.stat().st_mtime >= _STARTED]
        if SCREENSHOTS.is_dir()
        else []
    )
    if fresh:
        terminalreporter.write_line(f"review page screenshots ({len(fresh)}): {SCREENSHOTS}")
