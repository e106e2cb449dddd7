"""Logging set-up: structlog, JSON when not on a terminal, pretty on one; secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_SECRET_KEYS = ("authorization", "token", "secret", "password", "api_key", "apikey")
_REDACTED = "***"
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Make ``value`` be masked wherever it appears in a log event."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking keys and any registered secret value."""
    for key, value in list(event_dict.items()):
        if any(part in key.lower() for part in _SECRET_KEYS):
            event_dict[key] = _REDACTED
        elif isinstance(value, str) and _known_secrets:
            for secret in _known_secrets:
                if secret in value:
                    value = value.replace(secret, _REDACTED)
            event_dict[key] = value
    return event_dict


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
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "syncd") -> Any:
    return structlog.get_logger(name)
