"""Stripe's HTTP conventions over the SDK's ``HttpClient``.

* Request bodies are forms with bracketed keys (``metadata[plan]=pro``, ``address[city]=Oslo``);
  responses are JSON. ``form`` flattens a nested dict into that shape; ``None`` becomes ``""``,
  which is how Stripe clears a field (or removes one metadata key).
* Errors are ``{"error": {"type", "code", "message", "param"}}``. ``classify`` maps Stripe's
  signals onto syncd's typed errors: 429 (and the historic 400 ``rate_limit``) is
  ``RateLimited``; 409 (the same idempotency key still in flight, or a lock) is transient; an
  explicit ``Stripe-Should-Retry`` header is obeyed; an ``idempotency_error`` (a key reused with
  other parameters) is permanent.
* Lists are ``{"object": "list", "data": [...], "has_more": bool}``, paged with ``starting_after``
  = the last id of the previous page (Stripe returns newest first; nothing here depends on it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from syncd.connector import (
    AuthError,
    ConnectorError,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
)
from syncd.connector.http import HttpClient, parse_retry_after
from syncd.connector.pagination import cursor_pages
from syncd.connector.redact import redact_text, redact_value

JsonObject = dict[str, Any]

#: Stripe caps ``limit`` at 100.
MAX_PAGE = 100


class IdempotencyError(PermanentError):
    """An Idempotency-Key was reused with different parameters (Stripe ``idempotency_error``)."""


def form(fields: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"metadata": {"a": "b"}}`` → ``{"metadata[a]": "b"}``; lists are indexed, None is ``""``."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            if value:
                out.update(form(value, name))
            else:
                out[name] = ""
        elif isinstance(value, list | tuple):
            if not value:
                out[name] = ""
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    out.update(form(item, f"{name}[{i}]"))
                else:
                    out[f"{name}[{i}]"] = _scalar(item)
        else:
            out[name] = _scalar(value)
    return out


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error_body(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def describe(response: httpx.Response) -> str:
    """``HTTP 400 invalid_request_error/resource_missing: No such customer`` (free of secrets)."""
    error = _error_body(response)
    kind = "/".join(str(error[k]) for k in ("type", "code") if error.get(k))
    message = str(error.get("message") or response.reason_phrase or "").strip()
    param = f" (param {error['param']})" if error.get("param") else ""
    text = (
        f"HTTP {response.status_code} {kind}: {message}{param}"
        if kind
        else f"HTTP {response.status_code}: {message}"
    )
    return redact_text(text)[:500]


def classify(response: httpx.Response) -> ConnectorError | None:
    """Stripe's meaning of a failed response; None leaves it to the SDK's defaults."""
    status = response.status_code
    error = _error_body(response)
    message = f"stripe: {describe(response)}"
    detail = redact_value(dict(error)) if error else None
    should_retry = response.headers.get("Stripe-Should-Retry", "").strip().lower()
    if status == 429 or (status == 400 and error.get("code") == "rate_limit"):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(message, retry_after=retry_after, status=status, detail=detail)
    if status in (401, 403):
        return AuthError(message, status=status, detail=detail)
    if status == 404:
        return NotFound(message, status=status, detail=detail)
    if should_retry == "true" or status == 409:
        return TransientError(message, status=status, detail=detail)
    if should_retry == "false" or error.get("type") == "idempotency_error":
        cls = IdempotencyError if error.get("type") == "idempotency_error" else PermanentError
        return cls(message, status=status, detail=detail)
    if status == 408 or status >= 500:
        return TransientError(message, status=status, detail=detail)
    return PermanentError(message, status=status, detail=detail)


def server_time(response: httpx.Response) -> float | None:
    """The server's clock (Unix seconds) from the ``Date`` header, if it sent one."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class StripeApi:
    """The Stripe calls the connector makes."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        #: Server time of the first response since ``start_read`` (a read's start watermark).
        self.read_started: float | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    def start_read(self) -> None:
        """Forget the last read's start: the next response's ``Date`` marks this read's."""
        self.read_started = None

    def _note_time(self, response: httpx.Response) -> None:
        if self.read_started is None:
            self.read_started = server_time(response)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> JsonObject:
        response = await self.http.get(path, params=params)
        self._note_time(response)
        body: JsonObject = response.json()
        return body

    async def post_form(
        self, path: str, fields: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> JsonObject:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = await self.http.post(path, data=form(fields), headers=headers)
        body: JsonObject = response.json()
        return body

    async def delete(self, path: str) -> JsonObject:
        response = await self.http.delete(path)
        body: JsonObject = response.json()
        return body

    async def list_page(
        self, path: str, params: Mapping[str, Any], starting_after: str | None
    ) -> tuple[list[JsonObject], str | None]:
        """One page of a list endpoint and the ``starting_after`` of the next one (None: last page)."""
        query = dict(params)
        if starting_after is not None:
            query["starting_after"] = starting_after
        body = await self.get_json(path, query)
        data = [o for o in body.get("data") or [] if isinstance(o, dict)]
        if body.get("has_more") and data:
            return data, str(data[-1]["id"])
        return data, None

    async def pages(
        self, path: str, params: Mapping[str, Any], start: str | None = None
    ) -> AsyncIterator[tuple[list[JsonObject], str | None]]:
        """Every page of a list endpoint, from ``start`` (a ``starting_after`` id) on."""

        async def fetch(token: str | None) -> tuple[list[JsonObject], str | None]:
            return await self.list_page(path, params, token)

        async for page in cursor_pages(fetch, start):
            yield page

    async def list_all(self, path: str, params: Mapping[str, Any]) -> list[JsonObject]:
        found: list[JsonObject] = []
        async for items, _ in self.pages(path, params):
            found.extend(items)
        return found
