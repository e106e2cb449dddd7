"""Reading changes: full listings by ``GET`` paging, incremental reads by search on last-modified.

Cursors are ``{"since": epoch_ms}`` (the newest last-modified time delivered, on HubSpot's own
clock) plus, while a full listing is in progress, ``{"after": ...}`` to resume it, and after an
incremental read ``{"archived_since": epoch_ms}``, the newest ``archivedAt`` seen (a cursor
without it, from a listing or an older syncd, starts the archive watermark at ``since``).

Incremental reads must not skip a record although HubSpot's search index lags behind writes
(a record written just before the watermark may surface only later) and caps a query at 10,000
results. So each read starts ``search_overlap_seconds`` before the watermark (records come back
twice, which is harmless), sorts ascending by last-modified, and fetches every page as a fresh
query from the last timestamp seen (keyset paging, offset only across equal timestamps): no
query ever nears the 10,000 cap, and a record modified mid-read moves to the end of the walk
instead of shifting the pages under it.

Search never returns archived records, so an archive (HubSpot's delete, restorable for 90 days)
would be invisible to these reads. Each incremental read therefore also walks the archived
listing (``GET ?archived=true``, which has no time filter) and returns the records archived
since ``archived_since`` minus the same overlap as tombstones. Its watermark moves only on the
read's last page, once every archived record has been seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

from syncd.connector import ConnectorError, Cursor, Page

from ._client import SEARCH_PAGE_LIMIT, SEARCH_WINDOW, HubSpotApi, JsonObject
from ._config import CrmObject
from ._records import epoch_ms, modified_ms, parse_time, read_names, to_record


def _since(cursor: Cursor) -> int:
    try:
        return max(0, int(cursor["since"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConnectorError(f"hubspot: malformed cursor {cursor!r}: need an integer 'since'") from exc


def _archived_since(cursor: Cursor, since: int) -> int:
    if cursor.get("archived_since") is None:
        return since
    try:
        return max(0, int(cursor["archived_since"]))
    except (TypeError, ValueError) as exc:
        raise ConnectorError(
            f"hubspot: malformed cursor {cursor!r}: 'archived_since' must be an integer"
        ) from exc


def _cursor(since: int, archived_since: int) -> Cursor:
    return {"since": since, "archived_since": archived_since}


async def latest_modified(api: HubSpotApi, crm: CrmObject) -> tuple[int, int | None]:
    """The newest last-modified time search knows of (0 for an empty account), and how many
    records search knows of (its ``total``; None if it did not say)."""
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
    return found or 0, _total(body)


def _total(body: JsonObject) -> int | None:
    total = body.get("total")
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


async def full_listing(
    api: HubSpotApi, crm: CrmObject, properties: Sequence[str], page_size: int, cursor: Cursor | None
) -> AsyncIterator[Page]:
    """Every live record; ``complete`` on the last page unless resuming a listing from its cursor."""
    total: int | None = None  # a resumed listing does not know how much of it is left
    if cursor is None:
        (since, total), after, resumed = await latest_modified(api, crm), None, False
    else:
        since, after, resumed = _since(cursor), str(cursor["after"]), True
    while True:
        results, next_after = await api.list_page(
            crm.name, properties=read_names(properties), limit=page_size, after=after
        )
        records = [to_record(obj, properties) for obj in results]
        if next_after is None:
            yield Page(records, {"since": since}, complete=not resumed, total=total)
            return
        if next_after == after:
            raise ConnectorError(f"hubspot: listing {crm.name} returned the same 'after' twice ({after})")
        after = next_after
        yield Page(records, {"since": since, "after": after}, total=total)


async def incremental(
    api: HubSpotApi,
    crm: CrmObject,
    properties: Sequence[str],
    page_size: int,
    cursor: Cursor,
    overlap_ms: int,
    *,
    search_page_size: int = SEARCH_PAGE_LIMIT,
) -> AsyncIterator[Page]:
    """Records modified since ``cursor["since"] - overlap``, oldest first (``search_page_size`` a
    search), then recent archives (``page_size`` a listing request)."""
    since = _since(cursor)
    archived_since = _archived_since(cursor, since)
    boundary = max(0, since - overlap_ms)
    skip = 0  # records at exactly ``boundary`` already delivered by this read
    limit = min(search_page_size, SEARCH_PAGE_LIMIT)
    wanted = read_names([*properties, crm.last_modified])
    delivered = 0
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
        # Each query counts what is left from its boundary on (ties already delivered included).
        left = _total(body)
        total = delivered + max(0, left - skip) if left is not None else None
        delivered += len(records)
        if records:
            yield Page(records, _cursor(since, archived_since), total=total)
        if last_page:
            break
        last = stamps[-1]
        if last is None:
            raise ConnectorError(f"hubspot: search returned a {crm.name} record without {crm.last_modified}")
        ties = sum(1 for s in stamps if s == last)
        if last == boundary:
            skip += len(results)
        else:
            boundary, skip = last, ties
    async for page in archived(api, crm, properties, page_size, since, archived_since, overlap_ms):
        yield page


async def archived(
    api: HubSpotApi,
    crm: CrmObject,
    properties: Sequence[str],
    page_size: int,
    since: int,
    archived_since: int,
    overlap_ms: int,
) -> AsyncIterator[Page]:
    """Tombstones of the records archived since ``archived_since - overlap``; the last page always comes.

    A record without ``archivedAt`` is reported too (a repeated tombstone is harmless, a missed
    one is a delete never propagated) but does not move the watermark.
    """
    floor = max(0, archived_since - overlap_ms)
    newest = archived_since
    after: str | None = None
    while True:
        results, next_after = await api.list_page(
            crm.name, properties=read_names(properties), limit=page_size, after=after, archived=True
        )
        tombstones = []
        for obj in results:
            moment = parse_time(obj.get("archivedAt"))
            when = epoch_ms(moment) if moment is not None else None
            if when is None or when >= floor:
                record = to_record(obj, properties)
                tombstones.append(record if record.deleted else replace(record, deleted=True))
            if when is not None:
                newest = max(newest, when)
        if next_after is None:
            yield Page(tombstones, _cursor(since, newest))
            return
        if next_after == after:
            raise ConnectorError(
                f"hubspot: the archived {crm.name} listing returned the same 'after' twice ({after})"
            )
        if tombstones:
            yield Page(tombstones, _cursor(since, archived_since))
        after = next_after


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
