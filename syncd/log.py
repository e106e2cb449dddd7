"""Logging set-up: structlog, JSON when not on a terminal, pretty on one; secrets redacted.

Libraries log through the standard library (aiohttp's server, asyncio, APScheduler, httpx):
their records go through the same processors as syncd's own events — one format (one JSON
object per line for services, a traceback inside it as a string), the same redaction — by a
root handler with structlog's ``ProcessorFormatter``. A client's malformed request is the
client's problem: aiohttp's "Error handling request" for it becomes an info line naming the
reason, without a traceback. httpx's line per request is kept below warning (syncd's HTTP
client logs its own, without credentials).

Importing this module is cheap (the CLI imports it for every command, ``--version`` included):
structlog and the redaction processor are imported when logging is configured or a logger is
asked for, and aiohttp never by this module (a record can only carry an aiohttp error once
aiohttp is loaded).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

__all__ = ["configure", "get_logger", "register_secret"]

#: Libraries whose per-request info lines are noise in a daemon's log.
_QUIET = ("httpx", "httpcore")


class _SyncdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler ``configure`` installs (told apart from handlers others installed)."""


class ClientErrorFilter(logging.Filter):
    """aiohttp's report of a request it could not parse (the client's fault): info, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        aiohttp_errors = sys.modules.get("aiohttp.http_exceptions")
        if aiohttp_errors is not None and isinstance(exc, aiohttp_errors.HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "malformed request refused: %s"
            record.args = (f"{type(exc).__name__}: {exc.message}"[:200],)
            record.exc_info = None
            record.exc_text = None
        return True


def _foreign_event(logger: Any, method: str, event_dict: Any) -> Any:
    """Name the library a stdlib record came from (``logger``) and drop the record itself."""
    record = event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    if record is not None and "logger" not in event_dict:
        event_dict["logger"] = record.name
    return event_dict


def configure(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info", stream: Any = None
) -> None:
    """Configure structlog, and the standard library's logging, for the process."""
    import structlog

    from syncd.connector.redact import redact_secrets

    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            _foreign_event,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = _SyncdHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(ClientErrorFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SyncdHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def get_logger(name: str = "syncd") -> Any:
    import structlog

    return structlog.get_logger(name)


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log event (see ``syncd.connector.redact``)."""
    from syncd.connector.redact import register_secret as register

    register(value)
