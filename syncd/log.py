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

import importlib
import logging
import sys
from typing import Any, Literal

__all__ = ["configure", "get_logger", "load_libraries", "register_secret"]

#: Libraries whose per-request info lines are noise in a daemon's log.
_QUIET = ("httpx", "httpcore")

#: What httpx and structlog load, when it is installed, for features a JSON log never uses.
_TERMINAL_ONLY = ("rich", "pygments")


def _import_without_terminal_libraries(*names: str) -> None:
    """Import ``names`` (httpx, structlog) with rich and pygments kept out.

    Both libraries import rich and pygments whenever they are installed (and syncd installs rich
    for its terminal output): httpx for its command-line client, structlog for pretty console
    tracebacks. A process that logs JSON (a service, a pipe, a benchmark) uses neither, and the
    two cost a sync about 16 MiB of memory and a tenth of a second at start-up. Each library
    imports them inside ``try/except ImportError``, so an entry of None in ``sys.modules`` for the
    time of the import makes it go without; rich can still be imported afterwards by code that
    draws on a terminal. Nothing is done once rich or one of ``names`` is loaded.
    """
    loaded = set(sys.modules)
    if any(name in loaded for name in (*_TERMINAL_ONLY, *names)):
        return
    for name in _TERMINAL_ONLY:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        for name in names:
            importlib.import_module(name)
    finally:
        for name in _TERMINAL_ONLY:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


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
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    if as_json:
        _import_without_terminal_libraries("structlog", "httpx")
    structlog = _structlog()

    from syncd.connector.redact import redact_secrets

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


def load_libraries() -> None:
    """Import structlog and httpx now, without rich and pygments when stderr is not a terminal.

    The command line calls this before any command runs: syncd's modules import structlog (for
    their loggers) and httpx as they load, so this is the one point that comes before them all.
    """
    _structlog()


def _structlog() -> Any:
    """structlog; imported without rich when stderr, where the log goes, is not a terminal
    (modules ask for their logger when imported, often before ``configure`` runs)."""
    if "structlog" not in sys.modules and not _is_terminal(sys.stderr):
        _import_without_terminal_libraries("structlog", "httpx")
    import structlog

    return structlog


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def get_logger(name: str = "syncd") -> Any:
    return _structlog().get_logger(name)


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log event (see ``syncd.connector.redact``)."""
    from syncd.connector.redact import register_secret as register

    register(value)
