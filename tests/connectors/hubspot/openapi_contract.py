"""Validation of HTTP exchanges against HubSpot's published OpenAPI documents.

The documents live outside the repository (``SYNCD_HUBSPOT_SPECS``, default
``../shared/specs/hubspot`` beside the checkout); tests needing them skip with the reason when they are absent.

Two corrections are applied, each where HubSpot's behaviour contradicts its own document:

* ``PublicObjectSearchRequest.sorts`` items are objects ``{"propertyName", "direction"}`` (the
  search guide; HubSpot SDK issues hubspot-api-nodejs#9/#14/#559: string sorts are ignored);
* object property values may be null (HubSpot returns requested-but-unset properties as null;
  its own TypeScript SDK types them ``string | null``).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema_path import SchemaPath
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.request.validators import V30RequestBodyValidator, V30RequestParametersValidator
from openapi_core.validation.response.validators import V30ResponseDataValidator

# The project's shared/ folder sits beside the repository checkout (in CI too).
_REPO = Path(__file__).resolve().parents[3]
SPEC_DIR = Path(os.environ.get("SYNCD_HUBSPOT_SPECS", _REPO.parent / "shared" / "specs" / "hubspot"))
HOST = "https://api.hubapi.com"

_OBJECT_SCHEMAS = ("SimplePublicObject", "SimplePublicObjectWithAssociations", "SimplePublicUpsertObject")


def _corrected(document: dict[str, Any]) -> dict[str, Any]:
    fixed = copy.deepcopy(document)
    schemas = fixed.get("components", {}).get("schemas", {})
    for name in _OBJECT_SCHEMAS:
        if name in schemas:
            schemas[name]["properties"]["properties"]["additionalProperties"]["nullable"] = True
    search = schemas.get("PublicObjectSearchRequest")
    if search is not None:
        search["properties"]["sorts"]["items"] = {
            "type": "object",
            "required": ["propertyName"],
            "properties": {
                "propertyName": {"type": "string"},
                "direction": {"type": "string", "enum": ["ASCENDING", "DESCENDING"]},
            },
        }
    return fixed


@functools.cache
def _document(name: str) -> dict[str, Any]:
    return _corrected(json.loads((SPEC_DIR / f"{name}.json").read_text()))


@functools.cache
def _spec(name: str) -> SchemaPath:
    return OpenAPI.from_dict(_document(name)).spec


def _document_name(path: str) -> str:
    if not SPEC_DIR.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"HubSpot OpenAPI documents not found in {SPEC_DIR}: CI must check the contract")
        pytest.skip(f"HubSpot OpenAPI documents not found in {SPEC_DIR} (set SYNCD_HUBSPOT_SPECS)")
    if path.startswith("/crm/v3/properties/"):
        return "properties"
    if path.startswith("/crm/v3/objects/companies"):
        return "companies"
    return "contacts"


def spec_for(path: str) -> SchemaPath:
    """The document describing ``path`` (skips the test when the documents are not available)."""
    return _spec(_document_name(path))


def documented_statuses(method: str, path: str) -> set[str]:
    """The response codes the document lists for the operation serving ``method path``."""
    for template, operations in _document(_document_name(path))["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            return set(operations[method.lower()]["responses"])
    raise AssertionError(f"no documented operation for {method} {path}")


def _request(method: str, path: str, query: Mapping[str, str] | None, body: bytes | None) -> MockRequest:
    return MockRequest(HOST, method.lower(), path, args=dict(query or {}), data=body or None)


def check_request(method: str, path: str, query: Mapping[str, str] | None, body: bytes | None) -> None:
    """Raise unless the request's parameters and body match the document."""
    spec = spec_for(path)
    request = _request(method, path, query, body)
    V30RequestParametersValidator(spec).validate(request)
    if body:
        V30RequestBodyValidator(spec).validate(request)


def check_response(
    method: str,
    path: str,
    query: Mapping[str, str] | None,
    request_body: bytes | None,
    status: int,
    body: bytes,
    content_type: str = "application/json",
) -> None:
    """Raise unless the response's status and body match the document for this operation."""
    spec = spec_for(path)
    if status == 204:
        # No-content responses have nothing to validate but their being documented.
        assert not body, f"{method} {path} answered 204 with a body"
        assert "204" in documented_statuses(method, path), f"{method} {path} does not document a 204"
        return
    response = MockResponse(body, status_code=status, content_type=content_type)
    # HubSpot documents error bodies as ``*/*``; they are JSON.
    validator = V30ResponseDataValidator(spec, extra_media_type_deserializers={"*/*": json.loads})
    validator.validate(_request(method, path, query, request_body), response)
