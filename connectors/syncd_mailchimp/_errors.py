"""Mailchimp's error signals mapped to syncd's typed errors (the HTTP client's ``classify`` hook).

* 429 or 403 **without a JSON body** is Mailchimp throttling at high volume: ``RateLimited``.
* 400 problem details are per-record refusals: ``Member Exists`` becomes ``MemberExists`` (the
  create path adopts the existing member), ``Forgotten Email Not Subscribed`` and ``Invalid
  Resource`` become ``PermanentError`` carrying Mailchimp's title, detail and field errors.
* 401/403 with a body are ``AuthError`` (``API Key Invalid``, wrong data centre, missing permission).
* Everything else falls back to the client's defaults (404 not found, 5xx and timeouts retried).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from syncd.connector import AuthError, ConnectorError, PermanentError, RateLimited
from syncd.connector.redact import redact_text, redact_value


class MemberExists(PermanentError):
    """The address is already a member of the audience (a create that must adopt, not duplicate)."""


def describe(body: Mapping[str, Any]) -> str:
    """``Title: detail (field: message; ...)`` from a problem-detail body."""
    text = f"{body.get('title') or 'Error'}: {body.get('detail') or ''}".strip()
    problems = [
        f"{e.get('field') or '?'}: {e.get('message') or ''}"
        for e in body.get("errors") or []
        if isinstance(e, Mapping)
    ]
    if problems:
        text += f" ({'; '.join(problems)})"
    return redact_text(text)


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def classify(response: httpx.Response) -> ConnectorError | None:
    status = response.status_code
    body = _json_body(response)
    if status in (403, 429) and not isinstance(body, Mapping):
        return RateLimited(f"mailchimp: throttled (HTTP {status} without an error body)", status=status)
    if not isinstance(body, Mapping) or status not in (400, 401, 403):
        return None
    message = f"mailchimp: {describe(body)}"
    detail = redact_value(dict(body))
    if status in (401, 403):
        return AuthError(message, status=status, detail=detail)
    if body.get("title") == "Member Exists":
        return MemberExists(message, status=status, detail=detail)
    return PermanentError(message, status=status, detail=detail)
