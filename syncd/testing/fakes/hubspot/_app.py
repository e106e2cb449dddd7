"""``HubSpotFake``: the HTTP server, the account's state changes, the backdoor and webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from .._clock import FakeClock, to_ms
from .._failures import Failure
from .._server import Delivery, FakeApp
from ._errors import (
    HubSpotError,
    PropertyProblem,
    bad_request,
    batch_error,
    validation_error,
    validation_error_entry,
)
from ._model import (
    DEFAULT_LIMIT,
    MAX_BATCH_INPUTS,
    MAX_LIST_LIMIT,
    MAX_QUERY_CHARS,
    MAX_SEARCH_LIMIT,
    MAX_WEBHOOK_EVENTS,
    MERGED_IDS,
    SEARCH_WINDOW,
    SPECS,
    Collection,
    IndexVersion,
    PropertyDef,
    Record,
    iso_ms,
    parse_time_ms,
)
from ._search import filter_groups, matches, sort_key, sort_rule, text_match, visible_version
from ._signing import sign_v3

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: When a batch request started (for ``startedAt``), on the fake's clock.
_STARTED_MS = web.RequestKey("started_ms", int)

# -- the fake --------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class CapturedRequest:
    """One request the fake received, for tests that check what a client sent."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes
    #: When it arrived (``time.monotonic()``, the real clock whatever the fake's clock says).
    at: float = field(default_factory=time.monotonic, compare=False)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class HubSpotFake(FakeApp):
    """HubSpot CRM v3 on a loopback port. See the module docstring for what it reproduces."""

    name = "hubspot"

    def __init__(
        self,
        *,
        token: str = "hubspot-test-token",
        client_secret: str = "hubspot-test-secret",
        webhook_url: str | None = None,
        clock: FakeClock | None = None,
        index_lag_seconds: float = 0.0,
        portal_id: int = 62515,
        app_id: int = 1160452,
        ten_second_limit: int | None = None,
        wall_clock: Callable[[], float] = time.time,
        delivery_concurrency: int | None = None,
    ) -> None:
        super().__init__()
        #: HubSpot's way of delivering under load (None: one delivery per operation, in order).
        #: With a number, up to that many deliveries are in flight at once (HubSpot's default is
        #: 10 per account) and the events waiting for a free slot go out together, up to 100 per
        #: delivery, in no promised order.
        self.delivery_concurrency = delivery_concurrency
        self._waiting: list[dict[str, Any]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._all_sent = asyncio.Event()
        self._all_sent.set()
        self.token = token
        self.client_secret = client_secret
        self.webhook_url = webhook_url
        self.clock = clock or FakeClock()
        #: Seconds between a write and its visibility to search; read at each write.
        self.index_lag_seconds = index_lag_seconds
        self.portal_id = portal_id
        self.app_id = app_id
        #: Requests allowed per rolling 10 s before a real 429 (None: unlimited).
        self.ten_second_limit = ten_second_limit
        #: Requests answered 429 because ``ten_second_limit`` was reached.
        self.rate_limited = 0
        self.daily_limit = 500_000
        #: Properties whose changes produce ``propertyChange`` events (None: all but system ones).
        self.subscribed_properties: set[str] | None = None
        #: Webhook deliveries are signed with this clock (HubSpot stamps the delivery, not the event).
        self.wall_clock = wall_clock
        #: Every request received (method, path, query, headers, body), oldest first.
        self.captured: list[CapturedRequest] = []
        self.blocklisted_emails: set[str] = set()
        self.collections = {name: Collection(spec, self.clock.now_ms()) for name, spec in SPECS.items()}
        self._ids = itertools.count(101)
        self._event_ids = itertools.count(1_000)
        self._last_stamp = 0
        self._pending: list[dict[str, Any]] = []
        self._recent: deque[float] = deque()
        self._daily_count = 0
        self._lost: list[Failure] = []
        #: Robustness knobs for clients (HubSpot documents neither the echo nor the order).
        self.echo_write_trace_ids = True
        self.reverse_batch_results = False
        #: Merge behaviours HubSpot's reference leaves open (both unverified, both off by default):
        #: reads of a merged-away id answer with the record it was merged into (else 404), and a
        #: merge gives the combined record a new id (``newObjectId``) instead of the primary's.
        self.resolve_merged_ids = False
        self.merge_mints_new_id = False
        self.app.middlewares.append(self._hubspot_middleware)

    def lose_responses(self, times: int = 1, path_prefix: str = "") -> None:
        """Process the next ``times`` matching requests, then answer 502 as if the response got lost.

        This is the "create timed out but actually succeeded" hazard: the write happened, the
        client cannot know.
        """
        self._lost.append(Failure("500", times, path_prefix))

    # -- routes --------------------------------------------------------------------------------

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        base = "/crm/v3/objects/{object}"
        router.add_get(base, self._list)
        router.add_post(base, self._create_one)
        router.add_post(base + "/search", self._search)
        router.add_post(base + "/gdpr-delete", self._gdpr_delete)
        router.add_post(base + "/merge", self._merge_route)
        router.add_post(base + "/batch/{action}", self._batch)
        router.add_get(base + "/{id}", self._get_one)
        router.add_patch(base + "/{id}", self._update_one)
        router.add_delete(base + "/{id}", self._archive_one)
        router.add_get("/crm/v3/properties/{object}", self._list_properties)
        router.add_post("/crm/v3/properties/{object}", self._create_property)
        router.add_get("/crm/v3/properties/{object}/{name}", self._get_property)

    @web.middleware
    async def _hubspot_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read() if request.can_read_body else b""
        self.captured.append(
            CapturedRequest(
                request.method, request.path, tuple(request.query.items()), dict(request.headers), body
            )
        )
        searching = request.path.endswith("/search")
        try:
            self._check_auth(request)
            if self._over_rate_limit():
                self.rate_limited += 1
                return self.rate_limit_response(request)
            response = await handler(request)
        except HubSpotError as exc:
            response = web.json_response(exc.body(), status=exc.status)
        finally:
            self._flush_events()
        for loss in self._lost:
            if loss.times > 0 and request.path.startswith(loss.path_prefix):
                loss.times -= 1
                self._lost = [entry for entry in self._lost if entry.times > 0]
                lost = HubSpotError(502, "BAD_GATEWAY", "The upstream server did not respond in time.")
                return web.json_response(lost.body(), status=502)
        if not searching:
            response.headers.update(self._rate_headers())
        return response

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(credential.strip(), self.token):
            return
        raise HubSpotError(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
            "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )

    # -- rate limiting -------------------------------------------------------------------------

    def _over_rate_limit(self) -> bool:
        now = time.monotonic()
        while self._recent and now - self._recent[0] > 10.0:
            self._recent.popleft()
        self._daily_count += 1
        if self.ten_second_limit is not None and len(self._recent) >= self.ten_second_limit:
            return True
        self._recent.append(now)
        return False

    def _rate_headers(self) -> dict[str, str]:
        limit = self.ten_second_limit or 190
        return {
            "X-HubSpot-RateLimit-Max": str(limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, limit - len(self._recent))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self._daily_count)),
        }

    def rate_limit_response(self, request: web.Request) -> web.StreamResponse:
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": "TEN_SECONDLY_ROLLING",
            "requestId": str(uuid.uuid4()),
        }
        headers = {} if request.path.endswith("/search") else self._rate_headers()
        if headers:
            headers["X-HubSpot-RateLimit-Remaining"] = "0"
        return web.json_response(body, status=429, headers=headers)

    def server_error_response(self, request: web.Request) -> web.StreamResponse:
        body = HubSpotError(500, "INTERNAL_ERROR", "internal error").body()
        return web.json_response(body, status=500)

    # -- helpers shared by handlers ------------------------------------------------------------

    def _collection(self, request: web.Request) -> Collection:
        name = request.match_info["object"]
        if name not in self.collections:
            raise bad_request(f"Unable to infer object type from: {name}")
        return self.collections[name]

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError as exc:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {exc}") from exc
        if not isinstance(body, dict):
            raise bad_request("Invalid input JSON: expected an object")
        return body

    def _stamp(self) -> int:
        """A write timestamp: the clock, but strictly after the previous write."""
        stamp = max(self.clock.now_ms(), self._last_stamp + 1)
        self._last_stamp = stamp
        return stamp

    @staticmethod
    def _bool_param(request: web.Request, name: str) -> bool:
        return request.query.get(name, "false").strip().lower() == "true"

    @staticmethod
    def _list_param(values: Iterable[str]) -> list[str]:
        return [part.strip() for value in values for part in value.split(",") if part.strip()]

    def _requested(self, coll: Collection, names: Sequence[str]) -> list[str]:
        """Property names to return: HubSpot's defaults, or the known requested ones plus system ones."""
        if not names:
            return list(coll.spec.default_properties)
        known = [n for n in dict.fromkeys(names) if n in coll.properties]
        return known + [n for n in coll.spec.system_properties if n not in known]

    def _all_values(
        self, coll: Collection, rec_id: int, props: Mapping[str, str], created_ms: int, updated_ms: int
    ) -> dict[str, str]:
        return {
            **props,
            "hs_object_id": str(rec_id),
            "createdate": iso_ms(created_ms),
            coll.spec.last_modified: iso_ms(updated_ms),
        }

    def _public(
        self,
        coll: Collection,
        rec: Record,
        names: Sequence[str],
        *,
        version: IndexVersion | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A record in HubSpot's ``SimplePublicObject`` shape (from the search index if ``version``)."""
        source = version or rec
        values = self._all_values(coll, rec.id, source.properties, source.created_ms, source.updated_ms)
        body: dict[str, Any] = {
            "id": str(rec.id),
            "properties": {name: values.get(name) for name in names},
            "createdAt": iso_ms(source.created_ms),
            "updatedAt": iso_ms(source.updated_ms),
            "archived": rec.archived,
        }
        if rec.archived_ms is not None:
            body["archivedAt"] = iso_ms(rec.archived_ms)
        if extra:
            body.update(extra)
        return body

    def _written_names(self, coll: Collection, values: Mapping[str, str]) -> list[str]:
        return self._requested(coll, list(values) or list(coll.spec.default_properties))

    def _find(
        self, coll: Collection, ident: str, id_property: str | None, *, archived: bool
    ) -> Record | None:
        if id_property and id_property != "hs_object_id":
            if id_property not in coll.unique_properties():
                raise bad_request(f"Property {id_property} is not a unique identifier property.")
            return coll.by_unique(id_property, ident, archived=archived)
        if not ident.strip().isdigit():
            return None
        rec = coll.records.get(int(ident))
        if rec is None and not archived and self.resolve_merged_ids:
            survivor = coll.merged_into.get(int(ident))
            rec = coll.records.get(survivor) if survivor is not None else None
        return rec if rec is not None and rec.archived == archived else None

    # -- property validation -------------------------------------------------------------------

    def _check_values(
        self, coll: Collection, raw: Any
    ) -> tuple[dict[str, str], list[PropertyProblem], list[PropertyProblem]]:
        """Normalised values, structural problems (fail the request) and value problems (per input)."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise bad_request("Invalid input JSON: properties must be an object")
        values: dict[str, str] = {}
        structural: list[PropertyProblem] = []
        invalid: list[PropertyProblem] = []
        for name, given in raw.items():
            prop = coll.properties.get(name)
            if prop is None:
                structural.append(
                    PropertyProblem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if prop.read_only:
                structural.append(
                    PropertyProblem(
                        name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
                    )
                )
                continue
            if isinstance(given, bool):
                text = "true" if given else "false"
            elif given is None:
                text = ""
            elif isinstance(given, int | float | str):
                text = str(given)
            else:
                structural.append(
                    PropertyProblem(name, "INVALID_TYPE", f"{given!r} is not a valid value for {name}")
                )
                continue
            problem = self._check_value(coll, prop, text)
            if problem is not None:
                invalid.append(problem)
            else:
                values[name] = self._normalise(coll, prop, text)
        return values, structural, invalid

    def _check_value(self, coll: Collection, prop: PropertyDef, text: str) -> PropertyProblem | None:
        if text == "":
            return None
        name = prop.name
        if coll.spec.email_unique and name == "email":
            email = text.strip().lower()
            if not _EMAIL.match(email):
                return PropertyProblem(name, "INVALID_EMAIL", f"Email address {text} is invalid")
            if email in self.blocklisted_emails:
                return PropertyProblem(
                    name, "INVALID_EMAIL", f"Email address {text} was permanently deleted and is blocklisted"
                )
        if prop.type == "number":
            try:
                float(text)
            except ValueError:
                return PropertyProblem(name, "INVALID_LONG", f"{text} was not a valid number.")
        if prop.type == "bool" and text not in ("true", "false"):
            return PropertyProblem(name, "INVALID_BOOLEAN", f"{text} was not a valid boolean.")
        if prop.type in ("date", "datetime") and parse_time_ms(text) is None:
            return PropertyProblem(name, "INVALID_DATE", f"{text} was not a valid date.")
        if prop.type == "enumeration" and prop.options:
            chosen = [v for v in text.split(";") if v]
            bad = [v for v in chosen if v not in prop.options]
            if bad:
                return PropertyProblem(
                    name,
                    "INVALID_OPTION",
                    f"{bad[0]} was not one of the allowed options: {list(prop.options)}",
                )
        return None

    @staticmethod
    def _normalise(coll: Collection, prop: PropertyDef, text: str) -> str:
        if coll.spec.email_unique and prop.name == "email":
            return text.strip().lower()
        return text

    def _conflict(self, coll: Collection, values: Mapping[str, str], own_id: int | None) -> Record | None:
        """A live record (other than ``own_id``) already holding one of the unique values written."""
        for name in coll.unique_properties():
            value = values.get(name)
            if value:
                other = coll.by_unique(name, value)
                if other is not None and other.id != own_id:
                    return other
        return None

    def _conflict_error(self, coll: Collection, existing: Record) -> HubSpotError:
        # Wording observed in HubSpot's responses (unverified for companies, which have no unique key).
        return HubSpotError(409, "CONFLICT", f"{coll.spec.label} already exists. Existing ID: {existing.id}")

    # -- mutations (API and backdoor) ----------------------------------------------------------

    def _index(self, rec: Record) -> None:
        lag_ms = round(self.index_lag_seconds * 1000)
        rec.index.append(
            IndexVersion(rec.updated_ms + lag_ms, dict(rec.properties), rec.created_ms, rec.updated_ms)
        )

    def _insert(
        self,
        coll: Collection,
        values: Mapping[str, str],
        *,
        source: str,
        created_ms: int | None = None,
        updated_ms: int | None = None,
        indexed: bool = False,
    ) -> Record:
        created = created_ms if created_ms is not None else self._stamp()
        updated = updated_ms if updated_ms is not None else created
        rec = Record(next(self._ids), {k: v for k, v in values.items() if v != ""}, created, updated)
        coll.records[rec.id] = rec
        coll.noted(rec)
        if indexed:
            rec.index.append(IndexVersion(0, dict(rec.properties), rec.created_ms, rec.updated_ms))
        else:
            self._index(rec)
        self._event(coll, "creation", rec.id, updated, source, change_flag="NEW")
        for name, value in rec.properties.items():
            self._property_event(coll, rec.id, updated, source, name, value)
        return rec

    def _apply(self, coll: Collection, rec: Record, values: Mapping[str, str], *, source: str) -> bool:
        """Write ``values`` (``""`` clears); bump the record and emit events only if something changed."""
        changed: dict[str, str] = {}
        for name, value in values.items():
            old = rec.properties.get(name)
            if value == "":
                if old is not None:
                    del rec.properties[name]
                    changed[name] = ""
            elif old != value:
                rec.properties[name] = value
                changed[name] = value
        if not changed:
            return False
        coll.noted(rec)
        rec.updated_ms = self._stamp()
        self._index(rec)
        for name, value in changed.items():
            self._property_event(coll, rec.id, rec.updated_ms, source, name, value)
        return True

    def _archive(self, coll: Collection, rec: Record, *, source: str) -> None:
        if rec.archived:
            return
        rec.archived_ms = self._stamp()
        self._event(coll, "deletion", rec.id, rec.archived_ms, source, change_flag="DELETED")

    def _restore(self, coll: Collection, rec: Record, *, source: str) -> None:
        if not rec.archived:
            return
        existing = self._conflict(coll, rec.properties, rec.id)
        if existing is not None:
            raise self._conflict_error(coll, existing)
        rec.archived_ms = None
        rec.updated_ms = self._stamp()
        self._index(rec)
        self._event(coll, "restore", rec.id, rec.updated_ms, source)

    def _merge(self, coll: Collection, primary: Record, secondary: Record, *, source: str) -> Record:
        """Merge ``secondary`` into ``primary``; returns the record that holds both from now on.

        The primary's values win; a property the primary lacks takes the secondary's value (each
        such copy counts in ``numberOfPropertiesMoved``). A contact's second address is kept in
        ``hs_additional_emails`` (unverified detail of HubSpot's merge). The merged-away ids are
        gone from every listing; the survivor lists them in ``hs_merged_object_ids``.
        """
        values = dict(primary.properties)
        moved = 0
        for name, value in secondary.properties.items():
            if name == MERGED_IDS:
                continue
            if coll.spec.email_unique and name == "email" and values.get("email"):
                if value != values["email"]:
                    extra = [e for e in values.get("hs_additional_emails", "").split(";") if e]
                    values["hs_additional_emails"] = ";".join(dict.fromkeys([*extra, value]))
                continue
            if not values.get(name):
                values[name] = value
                moved += 1
        gone = [secondary, primary] if self.merge_mints_new_id else [secondary]
        earlier = [i for r in (primary, secondary) for i in r.properties.get(MERGED_IDS, "").split(";") if i]
        merged_ids = sorted({*map(int, earlier), *(r.id for r in gone)})
        values[MERGED_IDS] = ";".join(map(str, merged_ids))
        stamp = self._stamp()
        if self.merge_mints_new_id:
            survivor = Record(next(self._ids), values, min(primary.created_ms, secondary.created_ms), stamp)
            coll.records[survivor.id] = survivor
        else:
            survivor = primary
            survivor.properties = values
            survivor.updated_ms = stamp
        coll.noted(survivor)
        for rec in gone:
            del coll.records[rec.id]
        gone_ids = {rec.id for rec in gone}
        for old, into in list(coll.merged_into.items()):
            if into in gone_ids:
                coll.merged_into[old] = survivor.id
        for old in merged_ids:
            coll.merged_into[old] = survivor.id
        self._index(survivor)
        self._event(
            coll,
            "merge",
            survivor.id,
            stamp,
            source,
            extra={
                "primaryObjectId": primary.id,
                "mergedObjectIds": [secondary.id],
                "newObjectId": survivor.id,
                "numberOfPropertiesMoved": moved,
            },
        )
        return survivor

    def _purge(self, coll: Collection, rec: Record, *, source: str) -> None:
        del coll.records[rec.id]
        stamp = self._stamp()
        if coll.spec.gdpr:
            self._event(coll, "privacyDeletion", rec.id, stamp, source)
        self._event(coll, "deletion", rec.id, stamp, source, change_flag="DELETED")

    # -- webhooks ------------------------------------------------------------------------------

    def _event(
        self,
        coll: Collection,
        kind: str,
        rec_id: int,
        occurred_ms: int,
        source: str,
        *,
        change_flag: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        kinds = ("creation", "deletion", "propertyChange", "restore", "privacyDeletion", "merge")
        event: dict[str, Any] = {
            "eventId": next(self._event_ids),
            "subscriptionId": 4000 + kinds.index(kind) + (0 if coll.spec.name == "contacts" else 100),
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": occurred_ms,
            "subscriptionType": f"{coll.spec.singular}.{kind}",
            "attemptNumber": 0,
            "objectId": rec_id,
            "changeSource": source,
        }
        if change_flag:
            event["changeFlag"] = change_flag
        if extra:
            event.update(extra)
        self._pending.append(event)

    def _property_event(
        self, coll: Collection, rec_id: int, occurred_ms: int, source: str, name: str, value: str
    ) -> None:
        watched = self.subscribed_properties
        system = {"hs_object_id", "createdate", coll.spec.last_modified}
        if (watched is None and name not in system) or (watched is not None and name in watched):
            self._event(
                coll,
                "propertyChange",
                rec_id,
                occurred_ms,
                source,
                extra={"propertyName": name, "propertyValue": value},
            )

    def _flush_events(self) -> None:
        """Send the events of the last operation as signed JSON arrays of at most 100 events."""
        events, self._pending = self._pending, []
        if self.webhook_url is None:
            return
        if self.delivery_concurrency is not None:
            self._waiting += events
            self._start_deliveries()
            return
        for start in range(0, len(events), MAX_WEBHOOK_EVENTS):
            body = json.dumps(events[start : start + MAX_WEBHOOK_EVENTS], separators=(",", ":")).encode()
            self.emit(body, self.signed_headers(body))

    def _start_deliveries(self) -> None:
        """Fill the free delivery slots with the waiting events, up to 100 per delivery."""
        assert self.delivery_concurrency is not None
        while self._waiting and len(self._in_flight) < self.delivery_concurrency:
            events = self._waiting[:MAX_WEBHOOK_EVENTS]
            del self._waiting[:MAX_WEBHOOK_EVENTS]
            task = asyncio.get_running_loop().create_task(self._deliver(events))
            self._in_flight.add(task)
            self._all_sent.clear()

    async def _deliver(self, events: list[dict[str, Any]]) -> None:
        body = json.dumps(events, separators=(",", ":")).encode()
        url = self.webhook_url or ""
        delivery = Delivery(url=url, body=body, headers=self.signed_headers(body))
        self.deliveries.append(delivery)
        try:
            assert self._session is not None, "the fake is not started"
            async with self._session.post(
                url,
                data=body,
                headers={**delivery.headers, "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                delivery.status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.discard(task)
            self._start_deliveries()
            if not self._in_flight and not self._waiting:
                self._all_sent.set()

    async def webhooks_idle(self) -> None:
        """Wait until every webhook delivery, sequential or concurrent, has been attempted."""
        await super().webhooks_idle()
        await self._all_sent.wait()

    async def stop(self) -> None:
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._in_flight.clear()
        await super().stop()

    def signed_headers(self, body: bytes, *, method: str = "POST", url: str | None = None) -> dict[str, str]:
        """The headers HubSpot sends with a webhook ``body``: v3 signature, timestamp, legacy v1."""
        target = url if url is not None else self.webhook_url or ""
        stamp = int(self.wall_clock() * 1000)
        legacy = hashlib.sha256(self.client_secret.encode() + body).hexdigest()
        return {
            "X-HubSpot-Signature-v3": sign_v3(self.client_secret, method, target, body, stamp),
            "X-HubSpot-Request-Timestamp": str(stamp),
            "X-HubSpot-Signature": legacy,
            "X-HubSpot-Signature-Version": "v1",
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nio)",
        }

    # -- backdoor (a human in HubSpot's UI) ----------------------------------------------------

    def seed(
        self,
        properties: Mapping[str, Any],
        *,
        object: str = "contacts",
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        archived: bool = False,
        indexed: bool = True,
        notify: bool = False,
    ) -> str:
        """Create a record directly (no auth, no rate limit); returns its id.

        Seeded records are visible to search at once unless ``indexed=False``; webhooks are sent
        only with ``notify=True`` (seeding usually describes the state before the test starts).
        """
        coll = self.collections[object]
        values, structural, invalid = self._check_values(coll, dict(properties))
        if structural or invalid:
            raise ValueError(f"cannot seed {object}: {[p.message for p in [*structural, *invalid]]}")
        existing = self._conflict(coll, values, None)
        if existing is not None:
            raise ValueError(f"cannot seed {object}: {self._conflict_error(coll, existing).message}")
        created_ms = to_ms(created_at) if created_at is not None else None
        updated_ms = to_ms(updated_at) if updated_at is not None else None
        rec = self._insert(
            coll, values, source="CRM_UI", created_ms=created_ms, updated_ms=updated_ms, indexed=indexed
        )
        if archived:
            self._archive(coll, rec, source="CRM_UI")
        if notify:
            self._flush_events()
        else:
            self._pending.clear()
        return str(rec.id)

    def edit(
        self,
        record_id: str,
        properties: Mapping[str, Any],
        *,
        object: str = "contacts",
        source: str = "CRM_UI",
    ) -> bool:
        """Change properties as a user would (``""`` clears); emits webhooks; False if nothing changed."""
        coll = self.collections[object]
        rec = coll.records[int(record_id)]
        values, structural, invalid = self._check_values(coll, dict(properties))
        if structural or invalid:
            raise ValueError(
                f"cannot edit {object} {record_id}: {[p.message for p in [*structural, *invalid]]}"
            )
        existing = self._conflict(coll, values, rec.id)
        if existing is not None:
            raise ValueError(self._conflict_error(coll, existing).message)
        changed = self._apply(coll, rec, values, source=source)
        self._flush_events()
        return changed

    def archive(self, record_id: str, *, object: str = "contacts", source: str = "CRM_UI") -> None:
        """Archive (soft-delete) a record as a user would; emits a deletion webhook."""
        coll = self.collections[object]
        self._archive(coll, coll.records[int(record_id)], source=source)
        self._flush_events()

    def restore(self, record_id: str, *, object: str = "contacts", source: str = "CRM_UI") -> None:
        """Restore an archived record (HubSpot's recycle bin); emits a restore webhook."""
        coll = self.collections[object]
        self._restore(coll, coll.records[int(record_id)], source=source)
        self._flush_events()

    def merge(
        self, primary_id: str, merged_id: str, *, object: str = "contacts", source: str = "CRM_UI"
    ) -> str:
        """Merge two records as a user would in HubSpot; emits a merge webhook; returns the survivor's id."""
        coll = self.collections[object]
        survivor = self._merge(
            coll, coll.records[int(primary_id)], coll.records[int(merged_id)], source=source
        )
        self._flush_events()
        return str(survivor.id)

    def record(self, record_id: str, *, object: str = "contacts") -> dict[str, Any] | None:
        """The record as the API would show it with every set property, or None if purged."""
        coll = self.collections[object]
        rec = coll.records.get(int(record_id))
        if rec is None:
            return None
        names = sorted({*rec.properties, *coll.spec.system_properties})
        return self._public(coll, rec, names)

    def live_ids(self, *, object: str = "contacts") -> list[str]:
        return [str(r.id) for r in sorted(self.collections[object].live(), key=lambda r: r.id)]

    def add_property(self, definition: PropertyDef, *, object: str = "contacts") -> None:
        coll = self.collections[object]
        coll.properties[definition.name] = definition

    # -- list / get / create / update / archive ------------------------------------------------

    async def _list(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        limit = self._limit(request.query.get("limit"), MAX_LIST_LIMIT)
        archived = self._bool_param(request, "archived")
        names = self._requested(coll, self._list_param(request.query.getall("properties", [])))
        after = request.query.get("after")
        if after is not None and not after.strip().isdigit():
            raise bad_request(f"Invalid 'after' value: {after}")
        start = int(after) if after else 0
        candidates = sorted(
            (r for r in coll.records.values() if r.archived == archived and r.id >= start), key=lambda r: r.id
        )
        page = candidates[:limit]
        body: dict[str, Any] = {"results": [self._public(coll, r, names) for r in page]}
        if len(candidates) > limit:
            next_after = str(candidates[limit].id)
            link = request.url.update_query({"after": next_after})
            body["paging"] = {"next": {"after": next_after, "link": str(link)}}
        return web.json_response(body)

    @staticmethod
    def _limit(raw: Any, maximum: int) -> int:
        if raw is None:
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"Invalid limit: {raw}") from exc
        if limit < 1 or limit > maximum:
            raise bad_request(f"limit must be between 1 and {maximum}, got {limit}")
        return limit

    async def _get_one(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        archived = self._bool_param(request, "archived")
        rec = self._find(coll, request.match_info["id"], request.query.get("idProperty"), archived=archived)
        if rec is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        names = self._requested(coll, self._list_param(request.query.getall("properties", [])))
        return web.json_response(self._public(coll, rec, names))

    async def _create_one(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        body = await self._json_body(request)
        values, structural, invalid = self._check_values(coll, body.get("properties"))
        if structural or invalid:
            raise validation_error([*structural, *invalid])
        existing = self._conflict(coll, values, None)
        if existing is not None:
            raise self._conflict_error(coll, existing)
        rec = self._insert(coll, values, source="API")
        return web.json_response(self._public(coll, rec, self._written_names(coll, values)), status=201)

    async def _update_one(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        body = await self._json_body(request)
        rec = self._find(coll, request.match_info["id"], request.query.get("idProperty"), archived=False)
        if rec is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        values, structural, invalid = self._check_values(coll, body.get("properties"))
        if structural or invalid:
            raise validation_error([*structural, *invalid])
        existing = self._conflict(coll, values, rec.id)
        if existing is not None:
            raise self._conflict_error(coll, existing)
        self._apply(coll, rec, values, source="API")
        return web.json_response(self._public(coll, rec, self._written_names(coll, values)))

    async def _archive_one(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        rec = self._find(coll, request.match_info["id"], None, archived=False)
        if rec is not None:
            self._archive(coll, rec, source="API")
        return web.Response(status=204)

    async def _merge_route(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        body = await self._json_body(request)
        found: list[Record] = []
        for key in ("primaryObjectId", "objectIdToMerge"):
            value = body.get(key)
            if (
                isinstance(value, bool)
                or not isinstance(value, str | int)
                or not str(value).strip().isdigit()
            ):
                raise bad_request(f"{key} is required and must be a {coll.spec.singular} id")
            rec = self._find(coll, str(value), None, archived=False)
            if rec is None:
                raise HubSpotError(404, "OBJECT_NOT_FOUND", f"{coll.spec.label} {value} does not exist")
            found.append(rec)
        primary, secondary = found
        if primary.id == secondary.id:
            raise bad_request(f"Cannot merge a {coll.spec.singular} with itself")
        survivor = self._merge(coll, primary, secondary, source="API")
        return web.json_response(self._public(coll, survivor, self._requested(coll, [])))

    async def _gdpr_delete(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        if not coll.spec.gdpr:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        body = await self._json_body(request)
        ident = body.get("objectId")
        if not isinstance(ident, str | int) or str(ident).strip() == "":
            raise bad_request("objectId is required")
        id_property = body.get("idProperty")
        if id_property == "email":
            rec = coll.by_unique("email", str(ident)) or coll.by_unique("email", str(ident), archived=True)
            if rec is None:
                self.blocklisted_emails.add(str(ident).strip().lower())
                return web.Response(status=204)
        else:
            rec = coll.records.get(int(ident)) if str(ident).strip().isdigit() else None
            if rec is None:
                raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        self._purge(coll, rec, source="API")
        return web.Response(status=204)

    # -- search --------------------------------------------------------------------------------

    async def _search(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        body = await self._json_body(request)
        limit = self._limit(body.get("limit"), MAX_SEARCH_LIMIT)
        after_raw = body.get("after")
        after = 0
        if after_raw not in (None, ""):
            if not re.fullmatch(r"\d+", str(after_raw).strip()):
                raise bad_request(f"Invalid after: {after_raw} must be an integer")
            after = int(str(after_raw).strip())
        if after + limit > SEARCH_WINDOW:
            raise bad_request(
                f"Paging past {SEARCH_WINDOW} results is not supported by the search endpoints "
                f"(after={after}, limit={limit})."
            )
        query = body.get("query")
        if query is not None and (not isinstance(query, str) or len(query) > MAX_QUERY_CHARS):
            raise bad_request(f"query must be a string of at most {MAX_QUERY_CHARS} characters")
        groups = filter_groups(coll, body.get("filterGroups"))
        sort = sort_rule(coll, body.get("sorts"))
        requested = body.get("properties") or []
        if not isinstance(requested, list) or not all(isinstance(p, str) for p in requested):
            raise bad_request("properties must be an array of property names")
        names = self._requested(coll, requested)

        now = max(self.clock.now_ms(), self._last_stamp)
        hits: list[tuple[Record, IndexVersion, dict[str, str]]] = []
        for rec in coll.live():
            version = visible_version(rec, now)
            if version is None:
                continue
            values = self._all_values(
                coll, rec.id, version.properties, version.created_ms, version.updated_ms
            )
            if groups and not any(all(matches(coll, f, values) for f in g) for g in groups):
                continue
            if query and not text_match(coll, query, values):
                continue
            hits.append((rec, version, values))
        if sort is None:
            hits.sort(key=lambda h: (h[1].created_ms, h[0].id))
        else:
            prop, descending = sort
            present = [h for h in hits if h[2].get(prop) not in (None, "")]
            missing = [h for h in hits if h[2].get(prop) in (None, "")]
            present.sort(key=lambda h: h[0].id)
            present.sort(key=lambda h: sort_key(coll, prop, h[2][prop]), reverse=descending)
            missing.sort(key=lambda h: h[0].id)
            hits = present + missing
        page = hits[after : after + limit]
        result: dict[str, Any] = {
            "total": len(hits),
            "results": [self._public(coll, rec, names, version=version) for rec, version, _ in page],
        }
        if after + limit < len(hits):
            result["paging"] = {"next": {"after": str(after + limit)}}
        return web.json_response(result)

    # -- batch ---------------------------------------------------------------------------------

    async def _batch(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        action = request.match_info["action"]
        handlers: dict[str, Callable[[web.Request, Collection, dict[str, Any]], web.StreamResponse]] = {
            "read": self._batch_read,
            "create": self._batch_create,
            "update": self._batch_update,
            "archive": self._batch_archive,
            "upsert": self._batch_upsert,
        }
        if action not in handlers:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unknown batch action: {action}")
        body = await self._json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise bad_request("inputs must be an array")
        if len(inputs) > MAX_BATCH_INPUTS:
            raise bad_request(
                f"Batch input size must be less than or equal to {MAX_BATCH_INPUTS}, got {len(inputs)}"
            )
        if not all(isinstance(i, dict) for i in inputs):
            raise bad_request("every input must be an object")
        request[_STARTED_MS] = self.clock.now_ms()
        return handlers[action](request, coll, body)

    def _batch_reply(
        self,
        request: web.Request,
        results: list[dict[str, Any]],
        errors: list[dict[str, Any]],
        ok_status: int = 200,
    ) -> web.Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results[::-1] if self.reverse_batch_results else results,
            "requestedAt": iso_ms(request[_STARTED_MS]),
            "startedAt": iso_ms(request[_STARTED_MS]),
            "completedAt": iso_ms(self.clock.now_ms()),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return web.json_response(body, status=207)
        return web.json_response(body, status=ok_status)

    def _trace(self, item: Mapping[str, Any]) -> dict[str, Any]:
        trace = item.get("objectWriteTraceId")
        if trace is None or not self.echo_write_trace_ids:
            return {}
        return {"objectWriteTraceId": str(trace)}

    def _batch_read(self, request: web.Request, coll: Collection, body: dict[str, Any]) -> web.Response:
        archived = self._bool_param(request, "archived")
        id_property = body.get("idProperty")
        requested = body.get("properties") or []
        names = self._requested(coll, [p for p in requested if isinstance(p, str)])
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[int] = set()
        for item in body["inputs"]:
            ident = str(item.get("id", ""))
            rec = self._find(
                coll, ident, id_property if isinstance(id_property, str) else None, archived=archived
            )
            if rec is None:
                missing.append(ident)
            elif rec.id not in seen:
                seen.add(rec.id)
                results.append(self._public(coll, rec, names))
        errors = []
        if missing:
            errors.append(
                batch_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {coll.spec.label.upper()} objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    {"ids": missing},
                )
            )
        return self._batch_reply(request, results, errors)

    def _batch_create(self, request: web.Request, coll: Collection, body: dict[str, Any]) -> web.Response:
        checked: list[tuple[dict[str, Any], dict[str, str], list[PropertyProblem]]] = []
        structural: list[PropertyProblem] = []
        for item in body["inputs"]:
            values, bad_shape, invalid = self._check_values(coll, item.get("properties"))
            structural.extend(bad_shape)
            checked.append((item, values, invalid))
        if structural:
            raise validation_error(structural)
        # A duplicate email fails the whole batch, naming the first existing record (observed, issue #51
        # of HubSpot/hubspot-api-python); duplicates inside one batch are refused likewise (unverified).
        in_batch: set[tuple[str, str]] = set()
        for _, values, invalid in checked:
            if invalid:
                continue
            existing = self._conflict(coll, values, None)
            if existing is not None:
                raise self._conflict_error(coll, existing)
            for name in coll.unique_properties():
                key = (name, values.get(name, "").lower())
                if key[1] and key in in_batch:
                    raise bad_request(f"Duplicate {name} value in batch input: {values[name]}")
                in_batch.add(key)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item, values, invalid in checked:
            if invalid:
                context = {"propertyName": [p.name for p in invalid]}
                context.update({k: [v] for k, v in self._trace(item).items()})
                errors.append(validation_error_entry(invalid, context))
                continue
            rec = self._insert(coll, values, source="API")
            results.append(
                self._public(coll, rec, self._written_names(coll, values), extra=self._trace(item))
            )
        return self._batch_reply(request, results, errors, ok_status=201)

    def _batch_update(self, request: web.Request, coll: Collection, body: dict[str, Any]) -> web.Response:
        checked: list[tuple[dict[str, Any], dict[str, str], list[PropertyProblem]]] = []
        structural: list[PropertyProblem] = []
        for item in body["inputs"]:
            if "id" not in item:
                raise bad_request("every input needs an id")
            values, bad_shape, invalid = self._check_values(coll, item.get("properties"))
            structural.extend(bad_shape)
            checked.append((item, values, invalid))
        if structural:
            raise validation_error(structural)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item, values, invalid in checked:
            ident = str(item["id"])
            id_property = item.get("idProperty")
            trace = self._trace(item)
            context = {k: [v] for k, v in trace.items()}
            rec = self._find(
                coll, ident, id_property if isinstance(id_property, str) else None, archived=False
            )
            if rec is None:
                errors.append(
                    batch_error(
                        "OBJECT_NOT_FOUND",
                        f"Could not update {coll.spec.label.upper()} {ident}: object does not exist",
                        {"ids": [ident], **context},
                    )
                )
                continue
            if invalid:
                errors.append(validation_error_entry(invalid, {"ids": [ident], **context}))
                continue
            existing = self._conflict(coll, values, rec.id)
            if existing is not None:
                # Per-input conflict inside a batch update: unverified, modelled like other value errors.
                errors.append(
                    batch_error(
                        "CONFLICT",
                        self._conflict_error(coll, existing).message,
                        {"ids": [ident], **context},
                    )
                )
                continue
            self._apply(coll, rec, values, source="API")
            results.append(self._public(coll, rec, self._written_names(coll, values), extra=trace))
        return self._batch_reply(request, results, errors)

    def _batch_archive(self, request: web.Request, coll: Collection, body: dict[str, Any]) -> web.Response:
        for item in body["inputs"]:
            rec = self._find(coll, str(item.get("id", "")), None, archived=False)
            if rec is not None:
                self._archive(coll, rec, source="API")
        return web.Response(status=204)

    def _batch_upsert(self, request: web.Request, coll: Collection, body: dict[str, Any]) -> web.Response:
        """Update the record holding ``id`` (a record id, or a value of the unique ``idProperty``), else create it."""
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in body["inputs"]:
            ident = str(item.get("id", ""))
            id_property = item.get("idProperty")
            by_record_id = id_property in (None, "", "hs_object_id")
            if not by_record_id and id_property not in coll.unique_properties():
                raise bad_request(f"Property {id_property} is not a unique identifier property.")
            values, structural, invalid = self._check_values(coll, item.get("properties"))
            if structural:
                raise validation_error(structural)
            context = {"ids": [ident], **{k: [v] for k, v in self._trace(item).items()}}
            if invalid:
                errors.append(validation_error_entry(invalid, context))
                continue
            if by_record_id:
                rec = self._find(coll, ident, None, archived=False)
                if rec is None:
                    message = f"Could not upsert {coll.spec.label.upper()} {ident}: object does not exist"
                    errors.append(batch_error("OBJECT_NOT_FOUND", message, context))
                    continue
            else:
                rec = coll.by_unique(str(id_property), ident)
                if rec is None:
                    prop = coll.properties[str(id_property)]
                    values = {**values, prop.name: self._normalise(coll, prop, ident)}
            existing = self._conflict(coll, values, rec.id if rec is not None else None)
            if existing is not None:
                errors.append(batch_error("CONFLICT", self._conflict_error(coll, existing).message, context))
                continue
            created = rec is None
            if rec is None:
                rec = self._insert(coll, values, source="API")
            else:
                self._apply(coll, rec, values, source="API")
            names = self._written_names(coll, values)
            results.append(self._public(coll, rec, names, extra={"new": created, **self._trace(item)}))
        return self._batch_reply(request, results, errors)

    # -- properties ----------------------------------------------------------------------------

    async def _list_properties(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        return web.json_response({"results": [p.to_json() for p in coll.properties.values()]})

    async def _get_property(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        prop = coll.properties.get(request.match_info["name"])
        if prop is None:
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {request.match_info['name']}"
            )
        return web.json_response(prop.to_json())

    async def _create_property(self, request: web.Request) -> web.StreamResponse:
        coll = self._collection(request)
        body = await self._json_body(request)
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise bad_request(f"Missing required fields: {', '.join(missing)}")
        name = str(body["name"])
        if not _PROPERTY_NAME.match(name):
            raise bad_request(f"Invalid property name: {name}")
        types = ("string", "number", "date", "datetime", "enumeration", "bool", "phone_number")
        if body["type"] not in types:
            raise bad_request(f"Invalid property type: {body['type']}")
        if name in coll.properties:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists.")
        options = body.get("options") or []
        prop = PropertyDef(
            name=name,
            label=str(body["label"]),
            type=str(body["type"]),
            field_type=str(body["fieldType"]),
            group=str(body["groupName"]),
            options=tuple(str(o.get("value")) for o in options if isinstance(o, dict)),
            unique=bool(body.get("hasUniqueValue", False)),
            hubspot_defined=False,
            description=str(body.get("description", "")),
            created_ms=self.clock.now_ms(),
        )
        coll.properties[name] = prop
        return web.json_response(prop.to_json(), status=201)
