"""``ZendeskConnector``: Zendesk Support users (and organizations) for syncd.

Reading: a full listing walks ``/users`` (or ``/organizations``) with cursor pagination
(``page[size]``, ``meta.has_more``); its last page carries a cursor for incremental reads that
starts ``overlap_seconds`` before the listing began, on Zendesk's clock (its ``Date`` header).
Incremental reads use the export endpoints: ``/incremental/users/cursor`` (resumed by Zendesk's
``after_cursor``, with deleted users as tombstones) and the time-based
``/incremental/organizations`` (resumed by ``end_time``; its duplicates are harmless). Exports
leave out whatever changed in the last minute; a later read returns it, because an export cursor
stands at the last item handed out and a start time always lies more than a minute back.

Writing: see ``_writing`` (bulk jobs, the primary-email fix, soft delete, ``erase``). Lookups:
``find`` by ``email`` (user search), ``external_id`` (exact), or an organization's ``name``.
Users carry a read-only ``organization.name`` resolved from ``organization_id`` (cached).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar, Unpack

import structlog

from syncd.connector import (
    AuthError,
    Capabilities,
    ConfigError,
    Cursor,
    ObjectType,
    Page,
    PermanentError,
    RemoteRecord,
    TransientError,
    WebhookHint,
    WriteItem,
    WriteResult,
)
from syncd.connector.http import HttpConnector, HttpSeams
from syncd.connector.pagination import cursor_pages

from . import _webhooks
from ._client import BULK_LIMIT, JsonObject, ZendeskApi
from ._config import ZendeskConfig
from ._records import ORGANIZATION_FIELDS, USER_FIELDS, parse_time, to_record
from ._writing import Writer, chunks

__version__ = "0.1.0"

USERS = "users"
ORGANIZATIONS = "organizations"
_log = structlog.get_logger("syncd.connector.zendesk")


class ZendeskConnector(HttpConnector[ZendeskConfig]):
    """Zendesk Support (``users``, ``organizations``) over an API token or an OAuth token."""

    name: ClassVar[str] = "zendesk"
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
        batch_size=BULK_LIMIT,
        requests_per_second=None,
    )
    objects: ClassVar[tuple[ObjectType, ...]] = (
        ObjectType(USERS, primary_key="id", fields=USER_FIELDS, natural_keys=("email", "external_id")),
        ObjectType(
            ORGANIZATIONS, primary_key="id", fields=ORGANIZATION_FIELDS, natural_keys=("name", "external_id")
        ),
    )

    def __init__(
        self,
        config: ZendeskConfig,
        *,
        app: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        **seams: Unpack[HttpSeams],
    ) -> None:
        """``clock`` (monotonic time, for the rate budget and caches) is a seam besides the SDK's."""
        super().__init__(config, app=app, **seams)
        self._clock = clock
        self._api: ZendeskApi | None = None
        self._org_names: dict[int, tuple[str | None, float]] = {}

    @property
    def api(self) -> ZendeskApi:
        """The HTTP API, created on first use (inside the event loop that will use it)."""
        if self._api is None:
            self._api = ZendeskApi(
                self.config,
                app=self.app,
                transport=self._transport,
                retry=self._retry,
                sleep=self._sleep,
                clock=self._clock,
            )
        return self._api

    def object_type(self, name: str) -> ObjectType:
        obj = super().object_type(name)
        if name not in self.config.objects:
            raise ConfigError(
                f"{self.app}: object type {name!r} is not enabled (objects = {self.config.objects})"
            )
        return obj

    @property
    def _writer(self) -> Writer:
        return Writer(self.api, self.app, lambda ids: self.get(USERS, ids))

    # -- lifecycle -----------------------------------------------------------------------------

    async def check(self) -> None:
        body = await self.api.get("/users/me")
        me = body.get("user") or {}
        if me.get("id") is None:
            raise AuthError(f"{self.app}: the credentials authenticate no Zendesk user (anonymous)")
        if me.get("role") not in ("agent", "admin"):
            raise AuthError(f"{self.app}: the API user is an end user; syncd needs an agent or admin")

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None

    # -- reading -------------------------------------------------------------------------------

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        self.object_type(obj)
        if cursor is None or "listing_after" in cursor:
            pages = self._full_listing(obj, cursor)
        elif obj == USERS:
            pages = self._export_users(cursor)
        else:
            pages = self._export_organizations(cursor)
        async for page in pages:
            yield page

    def _server_now(self) -> int:
        moment = self.api.budget.server_time
        return int(moment.timestamp()) if moment is not None else int(self._now())

    @staticmethod
    def _start_time(cursor: Cursor) -> int:
        value = cursor.get("start_time")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"zendesk: unreadable cursor {cursor!r}; run a full listing")
        return int(value)

    async def _full_listing(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        params: dict[str, Any] = {"page[size]": self.config.page_size}
        if obj == USERS:
            params["role[]"] = list(self.config.roles)
        start: int | None = self._start_time(cursor) if cursor is not None else None

        async def fetch(after: str | None) -> tuple[list[JsonObject], str | None]:
            query = {**params, **({"page[after]": after} if after else {})}
            body = await self.api.get(f"/{obj}", query)
            meta = body.get("meta") or {}
            token = meta.get("after_cursor")
            return list(body.get(obj) or []), str(token) if meta.get("has_more") and token else None

        first = cursor.get("listing_after") if cursor is not None else None
        async for items, next_token in cursor_pages(fetch, first):
            if start is None:
                # Zendesk's clock at the first answer, less the overlap: the next export starts there.
                start = self._server_now() - round(self.config.overlap_seconds)
            records = await self._records(obj, items)
            if next_token is not None:
                yield Page(records, {"listing_after": next_token, "start_time": start})
            else:
                yield Page(records, {"start_time": start}, complete=cursor is None)

    async def _export_users(self, cursor: Cursor) -> AsyncIterator[Page]:
        start = self._start_time(cursor)
        token = cursor.get("export_cursor")
        token = token if isinstance(token, str) and token else None
        overlap = round(self.config.overlap_seconds)
        while True:
            params: dict[str, Any] = {"per_page": self.config.export_page_size}
            if token is not None:
                params["cursor"] = token
            else:
                params["start_time"] = start
            try:
                body = await self.api.get("/incremental/users/cursor", params)
            except PermanentError as exc:
                if token is None:
                    raise
                # An export cursor Zendesk no longer accepts: fall back to the saved start time.
                _log.warning("zendesk.export_cursor_rejected", app=self.app, status=exc.status)
                token = None
                continue
            users = [u for u in body.get("users") or [] if u.get("role") in self.config.roles]
            newest = [
                t.timestamp() for t in (parse_time(u.get("updated_at")) for u in body.get("users") or []) if t
            ]
            if newest:
                start = max(start, int(max(newest)) - overlap)
            next_token = body.get("after_cursor")
            advanced = isinstance(next_token, str) and next_token and next_token != token
            token = next_token if isinstance(next_token, str) and next_token else token
            yield Page(await self._records(USERS, users), {"export_cursor": token, "start_time": start})
            if body.get("end_of_stream", True):
                return
            if not advanced:
                raise TransientError(f"{self.app}: the user export did not advance its cursor")

    async def _export_organizations(self, cursor: Cursor) -> AsyncIterator[Page]:
        start = self._start_time(cursor)
        while True:
            body = await self.api.get(
                "/incremental/organizations",
                {"start_time": start, "per_page": self.config.export_page_size},
            )
            orgs = list(body.get("organizations") or [])
            end_time = body.get("end_time")
            following = max(start, int(end_time)) if isinstance(end_time, int | float) else start
            yield Page(await self._records(ORGANIZATIONS, orgs), {"start_time": following})
            if body.get("end_of_stream", True):
                return
            if following == start:
                raise TransientError(
                    f"{self.app}: the organization export did not advance (end_time {end_time})"
                )
            start = following

    async def _records(self, obj: str, items: Sequence[Mapping[str, Any]]) -> list[RemoteRecord]:
        if obj == ORGANIZATIONS:
            now = self._clock()
            for org in items:
                self._org_names[int(org["id"])] = (org.get("name"), now)
            return [to_record(o) for o in items]
        if not self.config.resolve_organization_names:
            return [to_record(u) for u in items]
        wanted = {int(u["organization_id"]) for u in items if isinstance(u.get("organization_id"), int)}
        names = await self._organization_names(wanted)
        return [
            to_record(
                u,
                resolve=True,
                organization_name=names.get(u["organization_id"]) if u.get("organization_id") else None,
            )
            for u in items
        ]

    async def _organization_names(self, ids: set[int]) -> dict[int, str | None]:
        """Names of organizations by id, from the cache or ``show_many`` (None for a missing one)."""
        now = self._clock()
        ttl = self.config.organization_cache_seconds
        stale = sorted(i for i in ids if i not in self._org_names or self._org_names[i][1] + ttl < now)
        for chunk in chunks(stale):
            body = await self.api.get("/organizations/show_many", {"ids": ",".join(str(i) for i in chunk)})
            found = {int(o["id"]): o.get("name") for o in body.get("organizations") or []}
            for org_id in chunk:
                self._org_names[org_id] = (found.get(org_id), now)
        return {i: self._org_names[i][0] for i in ids}

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        self.object_type(obj)
        wanted = [i for i in dict.fromkeys(str(i).strip() for i in ids) if i.isdigit()]
        found: list[JsonObject] = []
        for chunk in chunks(wanted):
            body = await self.api.get(f"/{obj}/show_many", {"ids": ",".join(chunk)})
            found.extend(body.get(obj) or [])
        return await self._records(obj, found)

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        self.object_type(obj)
        allowed = ("email", "external_id") if obj == USERS else ("name", "external_id")
        if path not in allowed:
            raise ConfigError(f"{self.app}: {obj} can be found by {' or '.join(allowed)}, not {path!r}")
        wanted = list(dict.fromkeys(v.strip() for v in values if v.strip()))
        found: dict[str, JsonObject] = {}
        for value in wanted:
            if obj == USERS and path == "email":
                body = await self.api.get("/users/search", {"query": f"email:{value}"})
            else:
                body = await self.api.get(f"/{obj}/search", {path: value})
            for item in body.get(obj) or []:
                current = item.get(path)
                # Search matches secondary identities too; only the primary email is the key.
                if isinstance(current, str) and current.strip().lower() == value.lower():
                    found[str(item["id"])] = item
        return [r for r in await self._records(obj, list(found.values())) if not r.deleted]

    # -- writing -------------------------------------------------------------------------------

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)
        if not items:
            return []
        if obj == USERS:
            return await self._writer.create_users(items)
        return await self._writer.create_organizations(items)

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)
        if not items:
            return []
        if obj == USERS:
            return await self._writer.update_users(items)
        results = await self._writer.update_organizations(items)
        self._forget_names(results)
        return results

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Soft delete: users move to Zendesk's deleted users (an agent can restore them)."""
        self.object_type(obj)
        if not items:
            return []
        if obj == USERS:
            return await self._writer.delete_users(items)
        results = await self._writer.delete_organizations(items)
        self._forget_names(results)
        return results

    async def erase(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Delete records permanently (GDPR erasure, ``syncd forget``); one result per item.

        A user is soft-deleted first if needed, then removed with ``DELETE /deleted_users/{id}``:
        Zendesk keeps only a "Permanently Deleted User" husk without email, phone or fields.
        Organizations have no soft delete, so erasing one is deleting it. Permanent user
        deletions are paced at Zendesk's 700 per 10 minutes. Irreversible.
        """
        self.object_type(obj)
        if not items:
            return []
        ids = [str(item.id) for item in items]
        if obj == USERS:
            done = await self._writer.erase_users(ids)
        else:
            done = await self._writer.delete_organizations([WriteItem(key=i, fields={}, id=i) for i in ids])
        return [dataclasses.replace(result, key=item.key) for result, item in zip(done, items, strict=True)]

    def _forget_names(self, results: Sequence[WriteResult]) -> None:
        for result in results:
            if result.record is not None and result.record.id.isdigit():
                self._org_names.pop(int(result.record.id), None)

    # -- webhooks ------------------------------------------------------------------------------

    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        _webhooks.verify(
            headers,
            body,
            self.config.webhook_secrets(),
            tolerance=self.config.webhook_tolerance_seconds,
            now=self._now(),
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookHint]:
        return _webhooks.parse(body, self.config.objects)
