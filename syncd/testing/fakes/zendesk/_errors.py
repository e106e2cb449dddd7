"""Zendesk's error envelope: ``{"error": label, "description": text, "details": {...}}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ZendeskError(Exception):
    """An API error the fake answers with; ``details`` maps a field to its problems (422)."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str | None = None,
        details: dict[str, list[dict[str, str]]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.description is not None:
            body["description"] = self.description
        if self.details:
            body["details"] = self.details
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def record_invalid(field: str, code: str, description: str) -> ZendeskError:
    return ZendeskError(
        422,
        "RecordInvalid",
        "Record validation errors",
        {field: [{"description": description, "error": code}]},
    )


def not_found() -> ZendeskError:
    return ZendeskError(404, "RecordNotFound", "Not found")


def invalid(description: str) -> ZendeskError:
    return ZendeskError(400, "InvalidValue", description)
