"""Reading changes: full listings by ``GET`` paging, incremental reads by search on last-modified.

Cursors are ``{"since": epoch_ms}`` (the newest last-modified time delivered, on HubSpot's own
clock) plus, while a full listing is in progress, ``{"after": ...}`` to resume it.

Incremental reads must not skip a record although HubSpot's search index lags behind writes
(a record written just before the watermark may surface only later) and caps a query at 10,000
results. So each read starts ``search_overlap_seconds`` before the watermark (records come back
twice, which is harmless), sorts ascending by last-modified, and fetches every page as a fresh
query from the last timestamp seen (keyset paging, offset only across equal timestamps): no
query ever nears the 10,000 cap, and a record modified mid-read moves to the end of the walk
instead of shifting the pages under it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from syncd.connector import ConnectorError, Cursor, Page

from ._client import SEARCH_PAGE_LIMIT, SEARCH_WINDOW, HubSpotApi, JsonObject
from ._config import CrmObject
from ._records import modified_ms, to_record


def _since(cursor: Cursor) -> int:
    try:
        return max(0, int(cursor["since"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConnectorError(f"hubspot: malformed cursor {cursor!r}: need an integer 'since'") from exc


async def latest_modified(api: HubSpotApi, crm: CrmObject) -> int:
    """The newest last-modified time search knows of (0 for an empty account)."""
    body = await api.search(
        crm.name,
        {
            "filterGroups": [],
            "sorts": [{"propertyName": crm.last_modified, "direction": "DESCENDING"}],
            "properties": [crm.last_modified],
            "limit": 1,
            "after": "0",
        },
    )
    results = body.get("results") or []
    found = modified_ms(results[0], crm.last_modified) if results else None
    return found or 0


async def full_listing(
    api: HubSpotApi, crm: CrmObject, properties: Sequence[str], page_size: int, cursor: Cursor | None
) -> AsyncIterator[Page]:
    """Every live record; ``complete`` on the last page unless resuming a listing from its cursor."""
    if cursor is None:
        since, after, resumed = await latest_modified(api, crm), None, False
    else:
        since, after, resumed = _since(cursor), str(cursor["after"]), True
    while True:
        results, next_after = await api.list_page(
            crm.name, properties=properties, limit=page_size, after=after
        )
        records = [to_record(obj, properties) for obj in results]
        if next_after is None:
            yield Page(records, {"since": since}, complete=not resumed)
            return
        if next_after == after:
            raise ConnectorError(f"hubspot: listing {crm.name} returned the same 'after' twice ({after})")
        after = next_after
        yield Page(records, {"since": since, "after": after})


async def incremental(
    api: HubSpotApi,
    crm: CrmObject,
    properties: Sequence[str],
    page_size: int,
    cursor: Cursor,
    overlap_ms: int,
) -> AsyncIterator[Page]:
    """Records modified since ``cursor["since"] - overlap``, oldest first."""
    since = _since(cursor)
    boundary = max(0, since - overlap_ms)
    skip = 0  # records at exactly ``boundary`` already delivered by this read
    limit = min(page_size, SEARCH_PAGE_LIMIT)
    wanted = list(dict.fromkeys([*properties, crm.last_modified]))
    yielded = False
    while True:
        if skip + limit > SEARCH_WINDOW:
            raise ConnectorError(
                f"hubspot: more than {SEARCH_WINDOW - limit} {crm.name} share last-modified time {boundary}; "
                "search cannot page past them (run a full listing instead)"
            )
        body = await api.search(crm.name, _query(crm, wanted, boundary, skip, limit))
        results: list[JsonObject] = list(body.get("results") or [])
        records = [to_record(obj, properties) for obj in results]
        stamps = [modified_ms(obj, crm.last_modified) for obj in results]
        known = [s for s in stamps if s is not None]
        if known:
            since = max(since, max(known))
        last_page = len(results) < limit or not (body.get("paging") or {}).get("next")
        if records or not yielded:
            yield Page(records, {"since": since})
            yielded = True
        if last_page:
            return
        last = stamps[-1]
        if last is None:
            raise ConnectorError(f"hubspot: search returned a {crm.name} record without {crm.last_modified}")
        ties = sum(1 for s in stamps if s == last)
        if last == boundary:
            skip += len(results)
        else:
            boundary, skip = last, ties


def _query(crm: CrmObject, properties: Sequence[str], boundary: int, skip: int, limit: int) -> dict[str, Any]:
    return {
        "filterGroups": [
            {"filters": [{"propertyName": crm.last_modified, "operator": "GTE", "value": str(boundary)}]}
        ],
        "sorts": [{"propertyName": crm.last_modified, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": limit,
        "after": str(skip),
    }
