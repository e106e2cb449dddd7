"""Logging set-up: structlog, JSON when not on a terminal, pretty on one; secrets redacted."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

from syncd.connector.redact import redact_secrets, register_secret

__all__ = ["configure", "get_logger", "register_secret"]


def configure(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info", stream: Any = None
) -> None:
    """Configure structlog for the process."""
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "syncd") -> Any:
    return structlog.get_logger(name)
