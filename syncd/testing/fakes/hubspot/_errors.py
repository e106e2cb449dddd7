"""HubSpot's error bodies, as the fake answers them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class HubSpotError(Exception):
    """An error answered with HubSpot's error body."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        sub_category: str | None = None,
        context: Mapping[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.sub_category = sub_category
        self.context = dict(context or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        return body


@dataclass(frozen=True)
class PropertyProblem:
    """One rejected property value, in the shape HubSpot lists inside validation messages."""

    name: str
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "isValid": False,
            "message": self.message,
            "error": self.code,
            "name": self.name,
            "localizedErrorMessage": self.message,
        }


def validation_error(problems: Sequence[PropertyProblem]) -> HubSpotError:
    listing = json.dumps([p.to_json() for p in problems], separators=(",", ":"))
    return HubSpotError(400, "VALIDATION_ERROR", f"Property values were not valid: {listing}")


def bad_request(message: str) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message)


def batch_error(
    category: str, message: str, context: Mapping[str, list[str]], status: str = "error"
) -> dict[str, Any]:
    """One entry of a 207 response's ``errors[]`` (HubSpot's ``StandardError``)."""
    return {
        "status": status,
        "category": category,
        "message": message,
        "context": dict(context),
        "errors": [],
        "links": {},
    }


def validation_error_entry(
    problems: Sequence[PropertyProblem], context: Mapping[str, list[str]]
) -> dict[str, Any]:
    listing = json.dumps([p.to_json() for p in problems], separators=(",", ":"))
    return batch_error("VALIDATION_ERROR", f"Property values were not valid: {listing}", context)
