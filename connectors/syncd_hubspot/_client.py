"""HubSpot's CRM v3 endpoints as typed calls over the SDK's ``HttpClient``.

The SDK client retries what is worth retrying and raises typed errors; ``classify`` adds
HubSpot's own signals: a ``DAILY`` 429 is not worth retrying until the quota resets, and 423
(record locked) and 477 (migration in progress) are transient. Search has its own, lower rate
limit (about 5 requests per second per account), so search calls also wait on a second limiter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from syncd.connector import ConnectorError, NotFound, PermanentError, RateLimited, TransientError
from syncd.connector.http import HttpClient, RateLimiter, error_text, parse_retry_after

BATCH_LIMIT = 100
SEARCH_PAGE_LIMIT = 200
SEARCH_WINDOW = 10_000

JsonObject = dict[str, Any]


def classify(response: httpx.Response) -> ConnectorError | None:
    """HubSpot-specific meaning of a failed response; None leaves it to the SDK defaults."""
    status = response.status_code
    if status == 429:
        try:
            body = response.json()
        except ValueError:
            body = None
        policy = body.get("policyName") if isinstance(body, dict) else None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if policy == "DAILY" and retry_after is None:
            now = datetime.now(UTC)
            midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            retry_after = (midnight - now).total_seconds()
        return RateLimited(
            f"hubspot: rate limited ({policy or 'unknown policy'}): {error_text(response)}",
            retry_after=retry_after,
            detail=body,
        )
    if status in (423, 477):
        return TransientError(
            f"hubspot: {status} {error_text(response)}", status=status, detail=_json_or_none(response)
        )
    return None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class HubSpotApi:
    """The handful of HubSpot calls the connector makes."""

    def __init__(self, http: HttpClient, search_limiter: RateLimiter | None = None) -> None:
        self.http = http
        self.search_limiter = search_limiter

    async def aclose(self) -> None:
        await self.http.aclose()

    @staticmethod
    def _objects(obj: str) -> str:
        return f"/crm/v3/objects/{obj}"

    async def list_page(
        self, obj: str, *, properties: Sequence[str], limit: int, after: str | None, archived: bool = False
    ) -> tuple[list[JsonObject], str | None]:
        """One page of ``GET /crm/v3/objects/{obj}`` (live or archived records) and the next ``after``.

        The next ``after`` is None on the last page.
        """
        params: dict[str, Any] = {"limit": limit, "archived": "true" if archived else "false"}
        if properties:
            params["properties"] = ",".join(properties)
        if after is not None:
            params["after"] = after
        body = (await self.http.get(self._objects(obj), params=params)).json()
        next_page = (body.get("paging") or {}).get("next") or {}
        after_token = next_page.get("after")
        return list(body.get("results") or []), str(after_token) if after_token else None

    async def search(self, obj: str, request: Mapping[str, Any]) -> JsonObject:
        if self.search_limiter is not None:
            await self.search_limiter.acquire()
        body: JsonObject = (
            await self.http.post(f"{self._objects(obj)}/search", json=request, repeatable=True)
        ).json()
        return body

    async def batch(
        self, obj: str, action: str, inputs: Sequence[Mapping[str, Any]], **extra: Any
    ) -> JsonObject:
        """``POST /batch/{action}``; the 200/201/207 body (empty for a 204)."""
        if len(inputs) > BATCH_LIMIT:
            raise ValueError(f"a HubSpot batch holds at most {BATCH_LIMIT} inputs, not {len(inputs)}")
        # Reading and archiving may be sent again after a lost answer; creates, updates and
        # upserts may not (the engine retries those safely: see ``OutcomeUnknown``).
        response = await self.http.post(
            f"{self._objects(obj)}/batch/{action}",
            json={"inputs": list(inputs), **extra},
            repeatable=action in ("read", "archive"),
        )
        if response.status_code == 204 or not response.content:
            return {}
        body: JsonObject = response.json()
        return body

    async def batch_read(
        self, obj: str, ids: Sequence[str], properties: Sequence[str], *, id_property: str | None = None
    ) -> list[JsonObject]:
        """Live records among ``ids`` (values of ``id_property`` if given); missing ones are left out."""
        extra: dict[str, Any] = {"properties": list(properties), "propertiesWithHistory": []}
        if id_property is not None:
            extra["idProperty"] = id_property
        body = await self.batch(obj, "read", [{"id": i} for i in ids], **extra)
        return list(body.get("results") or [])

    async def gdpr_delete(self, obj: str, object_id: str) -> None:
        await self.http.post(
            f"{self._objects(obj)}/gdpr-delete", json={"objectId": object_id}, repeatable=True
        )

    async def ensure_property(self, obj: str, definition: Mapping[str, Any]) -> None:
        """Create a custom property unless it exists already."""
        name = definition["name"]
        try:
            await self.http.get(f"/crm/v3/properties/{obj}/{name}")
            return
        except NotFound:
            pass
        try:
            await self.http.post(f"/crm/v3/properties/{obj}", json=dict(definition), repeatable=True)
        except PermanentError as exc:
            if exc.status != 409:  # created meanwhile by another syncd instance
                raise

    async def properties(self, obj: str) -> list[JsonObject]:
        """Every property definition of the object type (``GET /crm/v3/properties/{obj}``)."""
        body = (await self.http.get(f"/crm/v3/properties/{obj}", params={"archived": "false"})).json()
        return [p for p in body.get("results") or [] if isinstance(p, dict)]

    async def probe(self, obj: str) -> None:
        """One cheap authenticated call: proves the token works and the object type is readable."""
        await self.http.get(self._objects(obj), params={"limit": 1, "archived": "false"})
