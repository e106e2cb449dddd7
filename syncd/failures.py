"""What a connector failure means for the person reading a summary.

The runner records each app's failure as ``{"kind", "error"}``; the CLI turns it into a sentence
that names the real cause: the app rejected the credentials (``AuthError``), its settings cannot
work (``ConfigError``), it is unreachable or failing for now (``TransientError``), or it answered
with some other error.
"""

from __future__ import annotations

from collections.abc import Mapping

from syncd.connector import AuthError, ConfigError, TransientError

#: Failure kind -> the cause as said to an admin.
CAUSES: Mapping[str, str] = {
    "auth": "its credentials were rejected",
    "config": "its settings do not work",
    "transient": "it is unreachable or failing for now (tried again next run)",
    "error": "it answered with an error",
}


def failure(exc: BaseException) -> dict[str, str]:
    """The JSON-able record of one app's failure (kept in the run's counts)."""
    if isinstance(exc, AuthError):
        kind = "auth"
    elif isinstance(exc, ConfigError):
        kind = "config"
    elif isinstance(exc, TransientError):
        kind = "transient"
    else:
        kind = "error"
    return {"kind": kind, "error": str(exc)}


def cause(record: Mapping[str, str]) -> str:
    """``its settings do not work: <error>`` for a recorded failure."""
    return f"{CAUSES.get(record.get('kind', ''), CAUSES['error'])}: {record.get('error', '')}"
