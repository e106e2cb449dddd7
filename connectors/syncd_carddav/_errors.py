"""CardDAV's way of saying what went wrong, mapped onto syncd's error tree.

WebDAV servers answer a refused precondition with 403 or 409 and a ``<DAV:error>`` body naming
it. Such a 403 is about the request, not the credentials, so it must not pause the app the way
a plain 403 (no permission) does.
"""

from __future__ import annotations

import httpx

from syncd.connector import ConnectorError, PermanentError
from syncd.connector.http import error_text

from ._dav import DAV, error_conditions, tag

VALID_SYNC_TOKEN = tag(DAV, "valid-sync-token")


class InvalidSyncToken(PermanentError):
    """The server no longer accepts the cursor's sync token: a full listing must start over."""


class ReportNotSupported(PermanentError):
    """The server does not offer a REPORT the connector asked for (a fallback exists)."""


def classify(response: httpx.Response) -> ConnectorError | None:
    """Typed errors for WebDAV precondition failures; None lets the SDK's defaults apply."""
    status = response.status_code
    request = response.request
    where = f"{request.method} {request.url.path}"
    if status in (403, 409):
        conditions = error_conditions(response.content)
        if VALID_SYNC_TOKEN in conditions:
            return InvalidSyncToken(
                f"carddav: {where} -> {status}: sync token no longer valid", status=status
            )
        if tag(DAV, "supported-report") in conditions:
            return ReportNotSupported(f"carddav: {where} -> {status}: report not supported", status=status)
        if conditions:
            names = ", ".join(sorted(c.rsplit("}", 1)[-1] for c in conditions))
            return PermanentError(f"carddav: {where} -> {status}: precondition {names}", status=status)
    if status in (501, 405) and request.method == "REPORT":
        return ReportNotSupported(f"carddav: {where} -> {status}: {error_text(response)}", status=status)
    if status == 507:
        # Storage quota exceeded: retrying the same write will not help.
        return PermanentError(f"carddav: {where} -> 507: {error_text(response)}", status=status)
    return None


__all__ = ["InvalidSyncToken", "ReportNotSupported", "classify"]
