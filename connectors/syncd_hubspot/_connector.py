"""``HubSpotConnector``: HubSpot CRM v3 contacts (and companies) for syncd.

Reads: full listings by ``GET`` paging; incremental reads by search on the last-modified
property with an overlap window, then the archived listing for records archived since the last
read, returned as tombstones (search never returns archived records; see ``_reading``). A GDPR
deletion leaves no trace to read: it is learned from webhooks or complete listings.
Merges: every read asks for ``hs_merged_object_ids``, so the surviving record names the ids it
absorbed in ``replaces``; a ``merge`` webhook becomes one hint for the survivor with ``replaces``.
Writes: batch endpoints in chunks of 100 with per-item results; contacts are created by
``batch/upsert`` by email (see ``_writing``).
Lookups by email use ``batch/read`` with ``idProperty=email``, which, unlike search, sees a
contact the moment it exists.
Webhooks: a ``propertyChange`` event carries the new value; a record read in full before and
changed since only by such events is known without a re-read (see ``_events``).
"""

from __future__ import annotations

import difflib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Unpack

from syncd.connector import (
    Capabilities,
    ConfigError,
    Cursor,
    ObjectType,
    Page,
    PathProblem,
    RemoteRecord,
    WebhookHint,
    WriteItem,
    WriteResult,
)
from syncd.connector.http import HttpConnector, HttpSeams, RateLimiter

from . import _reading, _webhooks
from ._client import BATCH_LIMIT, SEARCH_PAGE_LIMIT, HubSpotApi, classify
from ._config import CRM_OBJECTS, CrmObject, HubSpotConfig
from ._events import KnownRecords
from ._records import credit_requested, read_names, to_record
from ._writing import Writer, chunks

__version__ = "1.0.0"


def ten_second_budget(requests_per_second: float, **seams: Any) -> RateLimiter:
    """A limiter that keeps within HubSpot's budget of ``10 * requests_per_second`` requests in
    any 10 s: a token bucket grants at most ``burst + rate * 10`` there, so the rate leaves
    room for its one-request burst (a bucket at the full rate with a second's burst went over
    the budget by that burst at the start of a long run, and met 429s)."""
    rate = max(requests_per_second - 0.1, requests_per_second / 2)
    return RateLimiter(rate, burst=1, **seams)


class HubSpotConnector(HttpConnector[HubSpotConfig]):
    """HubSpot CRM v3 (``contacts``, ``companies``) over a private-app or OAuth access token."""

    name: ClassVar[str] = "hubspot"
    version: ClassVar[str] = __version__
    capabilities: ClassVar[Capabilities] = Capabilities(
        incremental=True,
        full_listing=True,
        webhooks=True,
        create=True,
        update=True,
        delete=True,
        conditional_writes=False,
        tombstones=True,
        # updatedAt / last_changed / updated_at: stamped by the app's servers on every change.
        stamped_by_app=True,
        archives=True,
        batch_size=BATCH_LIMIT,
        requests_per_second=10.0,
    )
    objects: ClassVar[tuple[ObjectType, ...]] = tuple(o.object_type for o in CRM_OBJECTS.values())

    def __init__(self, config: HubSpotConfig, *, app: str | None = None, **seams: Unpack[HttpSeams]) -> None:
        super().__init__(config, app=app, **seams)
        self._api: HubSpotApi | None = None
        self._known = KnownRecords()
        self._ensured: set[str] = set()
        # ``archive_mode = "gdpr"`` deletes for good: the archive delete policy must not count on a
        # restore.
        # Creates of a type with a unique key (contacts: email) are upserts by it (see _writing).
        self._shadow_class_vars(
            capabilities=replace(
                type(self).capabilities,
                archives=config.archive_mode == "archive",
                upsert_by_key=all(CRM_OBJECTS[o].unique_key is not None for o in config.objects),
            )
        )

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def api(self) -> HubSpotApi:
        """The HTTP API, created on first use (inside the event loop that will use it)."""
        if self._api is None:
            http = self.http_client(
                base_url=self.config.base_url,
                headers={"Authorization": f"Bearer {self.config.token.get_secret_value()}"},
                rate_limiter=ten_second_budget(self.config.requests_per_second),
                timeout=self.config.timeout_seconds,
                classify=classify,
            )
            search_limiter = RateLimiter(self.config.search_requests_per_second, burst=1)
            self._api = HubSpotApi(http, search_limiter)
        return self._api

    def object_type(self, name: str) -> ObjectType:
        obj = super().object_type(name)
        if name not in self.config.objects:
            raise ConfigError(
                f"{self.app}: object type {name!r} is not enabled (objects = {self.config.objects})"
            )
        return obj

    def _crm(self, obj: str) -> CrmObject:
        self.object_type(obj)
        return CRM_OBJECTS[obj]

    def _properties(self, obj: str) -> list[str]:
        return self.config.read_properties(obj)

    async def _ensure_entity_property(self, crm: CrmObject) -> None:
        name = self.config.entity_id_property
        if name is None or crm.name in self._ensured:
            return
        await self.api.ensure_property(
            crm.name,
            {
                "name": name,
                "label": "syncd entity id",
                "description": "Identifier of this record's entity in syncd (maintained by syncd; do not edit).",
                "type": "string",
                "fieldType": "text",
                "groupName": crm.property_group,
                "formField": False,
                "hasUniqueValue": False,
            },
        )
        self._ensured.add(crm.name)

    # -- lifecycle -----------------------------------------------------------------------------

    async def check(self) -> None:
        for obj in self.config.objects:
            crm = self._crm(obj)
            await self.api.probe(crm.name)
            await self._ensure_entity_property(crm)

    async def preflight(
        self, obj: str, *, read: Sequence[str], write: Sequence[str], key: str | None
    ) -> list[PathProblem]:
        """Check mapped paths against the account's property definitions (one read-only call).

        A path must be ``properties.NAME`` for a property that exists; a read path must be among
        the properties this app reads (``properties`` / ``company_properties`` settings), and a
        written one must not be read-only in HubSpot.
        """
        if obj not in CRM_OBJECTS:
            known = ", ".join(CRM_OBJECTS)
            return [PathProblem(None, f"HubSpot has no object type {obj!r} here (known: {known})")]
        if obj not in self.config.objects:
            return [
                PathProblem(None, f"object type {obj!r} is not enabled (objects = {self.config.objects})")
            ]
        definitions = {str(p.get("name")): p for p in await self.api.properties(obj)}
        setting = "properties" if obj == "contacts" else "company_properties"
        readable = set(self._properties(obj))
        problems: list[PathProblem] = []
        for path in dict.fromkeys([*read, *write, *([key] if key else [])]):
            prefix, _, name = path.partition(".")
            if prefix != "properties" or not name or "." in name:
                problems.append(
                    PathProblem(path, f"HubSpot paths look like 'properties.email', not {path!r}")
                )
                continue
            definition = definitions.get(name)
            if definition is None:
                close = difflib.get_close_matches(name, list(definitions), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(PathProblem(path, f"property {name!r} does not exist in HubSpot {obj}{hint}"))
                continue
            if (path in read or path == key) and name not in readable:
                problems.append(
                    PathProblem(
                        path, f"property {name!r} is not read by this app: add it to its {setting} setting"
                    )
                )
            meta = definition.get("modificationMetadata") or {}
            if path in write and meta.get("readOnlyValue"):
                problems.append(
                    PathProblem(
                        path, f'property {name!r} is read-only in HubSpot: map it with direction = "in"'
                    )
                )
        return problems

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None

    # -- reading -------------------------------------------------------------------------------

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        crm = self._crm(obj)
        properties = self._properties(obj)
        if cursor is None or "after" in cursor:
            pages = _reading.full_listing(self.api, crm, properties, self.config.page_size, cursor)
        else:
            overlap_ms = round(self.config.search_overlap_seconds * 1000)
            pages = _reading.incremental(
                self.api,
                crm,
                properties,
                self.config.page_size,
                cursor,
                overlap_ms,
                search_page_size=self.config.search_page_size,
            )
        async for page in pages:
            self._known.keep(obj, page.records)
            yield page

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        crm = self._crm(obj)
        properties = self._properties(obj)
        wanted = [i for i in dict.fromkeys(str(i) for i in ids) if i.isdigit()]
        found: dict[str, RemoteRecord] = {}
        for chunk in chunks(wanted):
            results = await self.api.batch_read(crm.name, chunk, read_names(properties))
            # A merged-away id may answer with its survivor, under the survivor's id.
            for record in credit_requested([to_record(o, properties) for o in results], chunk):
                known = found.get(record.id)
                if known is not None:
                    record = replace(
                        record, replaces=tuple(dict.fromkeys([*known.replaces, *record.replaces]))
                    )
                found[record.id] = record
        self._known.keep(obj, found.values())
        return list(found.values())

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        crm = self._crm(obj)
        prefix, _, prop = path.partition(".")
        if prefix != "properties" or not prop or "." in prop:
            raise ConfigError(f"{self.app}: find needs a path like 'properties.email', not {path!r}")
        wanted = sorted({v.strip().lower() for v in values} - {""})
        if not wanted:
            return []
        properties = read_names([*self._properties(obj), prop])
        found: dict[str, RemoteRecord] = {}
        for chunk in chunks(wanted):
            if prop == crm.unique_key:
                results = await self.api.batch_read(crm.name, chunk, properties, id_property=prop)
            else:
                results = await self._search_in(crm, prop, chunk, properties)
            for obj_json in results:
                value = (obj_json.get("properties") or {}).get(prop)
                if isinstance(value, str) and value.strip().lower() in wanted:
                    record = to_record(obj_json, self._properties(obj))
                    found[record.id] = record
        return list(found.values())

    async def _search_in(
        self, crm: CrmObject, prop: str, values: Sequence[str], properties: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Search for records whose ``prop`` is one of ``values`` (all pages)."""
        results: list[dict[str, Any]] = []
        after = "0"
        while True:
            body = await self.api.search(
                crm.name,
                {
                    "filterGroups": [
                        {"filters": [{"propertyName": prop, "operator": "IN", "values": list(values)}]}
                    ],
                    "sorts": [],
                    "properties": list(properties),
                    "limit": SEARCH_PAGE_LIMIT,
                    "after": after,
                },
            )
            results.extend(body.get("results") or [])
            next_after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not next_after:
                return results
            after = str(next_after)

    # -- writing -------------------------------------------------------------------------------

    def _writer(self) -> Writer:
        return Writer(self.api, self.app, self._properties)

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        crm = self._crm(obj)
        if not items:
            return []
        await self._ensure_entity_property(crm)
        return await self._writer().create(crm, items)

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        crm = self._crm(obj)
        if not items:
            return []
        await self._ensure_entity_property(crm)
        return await self._writer().update(crm, items)

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        crm = self._crm(obj)
        if not items:
            return []
        gdpr = self.config.archive_mode == "gdpr" and crm.gdpr
        return await self._writer().delete(crm, items, gdpr=gdpr)

    async def erase(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """GDPR delete (permanent, and HubSpot blocks the email from coming back) where the object
        type has it; an archive elsewhere."""
        crm = self._crm(obj)
        if not items:
            return []
        return await self._writer().delete(crm, items, gdpr=crm.gdpr)

    # -- webhooks ------------------------------------------------------------------------------

    def verify_webhook_request(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        # The signature covers the body; what needs no body (headers, freshness) is checked first.
        _webhooks.signature_headers(
            headers,
            self.config.secrets(),
            tolerance=self.config.webhook_tolerance_seconds,
            now=self._now(),
        )

    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        urls = [url] + ([self.config.webhook_url] if self.config.webhook_url else [])
        _webhooks.verify(
            method,
            urls,
            headers,
            body,
            self.config.secrets(),
            tolerance=self.config.webhook_tolerance_seconds,
            now=self._now(),
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookHint]:
        hints = _webhooks.parse(body, self.config.objects)
        read: dict[str, Sequence[str]] = {obj: self._properties(obj) for obj in self.config.objects}
        self._known.observe(_webhooks.changes(body, self.config.objects), read)
        return hints

    def records_from_webhooks(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        """Records whose current values the ``propertyChange`` events tell (see ``_events``)."""
        self._crm(obj)
        return self._known.compose(obj, ids)
