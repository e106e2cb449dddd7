"""Reading customers: full listings and incremental reads through the Events API.

Cursor: ``{"since": <unix seconds>}`` — events at or after ``since`` (less the overlap) are still
to be read — plus ``"after": <customer id>`` while a full listing is under way, so a listing
interrupted after a page resumes at the next page instead of starting over.

* **Full listing** (``cursor=None``): every customer, ``starting_after`` paging. The cursor's
  ``since`` is the server's clock (``Date`` header) at the first request, so a customer changed
  while the listing runs is picked up by the next incremental read. Only a listing that started
  from the beginning ends with ``complete=True``.
* **Incremental**: Stripe customers have no updated-at, so changes come from ``/v1/events``
  (``customer.created|updated|deleted``; with billing fields also subscription and invoice
  events). Events are asked for one type at a time (``type=``, which Stripe and localstripe both
  honour). They are unordered snapshots, so each named customer is re-read — or becomes a
  tombstone after ``customer.deleted`` — in order of its latest event; the cursor after each page
  is the latest-event time of the first customer still to come.
* **Older than the events window**: Stripe keeps events for 30 days. A cursor older than that
  cannot be trusted to find every change, so the read falls back to a full listing (logged as a
  warning) whose last page is ``complete=True``: deletes older than the window are then learned
  from the listing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import structlog

from syncd.connector import ConfigError, Cursor, NotFound, Page, PermanentError, RemoteRecord

from ._billing import summarise
from ._client import MAX_PAGE, JsonObject, StripeApi
from ._config import StripeConfig
from ._customers import is_deleted, to_record, tombstone
from ._webhooks import BILLING_EVENTS, CUSTOMER_EVENTS, customer_of

T = TypeVar("T")

#: How long Stripe keeps events listable.
EVENTS_RETENTION_SECONDS = 30 * 24 * 3600
#: A cursor this close to the edge of the window already counts as too old (events near the edge
#: may be pruned while the read runs).
RETENTION_MARGIN_SECONDS = 3600

log = structlog.get_logger("syncd.connector.stripe")


async def gather_all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``calls`` concurrently; re-raise the first failure once all have ended."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    results: list[T] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results


class BillingIndex:
    """Subscriptions and paid invoices of every customer, read in bulk for a full listing."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, list[JsonObject]] = {}
        self.invoices: dict[str, list[JsonObject]] = {}

    def add_subscription(self, sub: JsonObject) -> None:
        customer = sub.get("customer")
        if isinstance(customer, str):
            self.subscriptions.setdefault(customer, []).append(sub)

    def add_invoice(self, invoice: JsonObject) -> None:
        customer = invoice.get("customer")
        if isinstance(customer, str) and invoice.get("status") == "paid":
            keep = {k: invoice.get(k) for k in ("id", "status", "currency", "amount_paid")}
            self.invoices.setdefault(customer, []).append(keep)

    def summary(self, customer: Mapping[str, Any]) -> dict[str, Any]:
        cid = str(customer["id"])
        return summarise(customer, self.subscriptions.get(cid, []), self.invoices.get(cid, []))


class Reader:
    """The read side of the connector."""

    def __init__(self, api: StripeApi, config: StripeConfig, now: Callable[[], float] = time.time) -> None:
        self.api = api
        self.config = config
        self.now = now

    # -- single customers ----------------------------------------------------------------------

    async def billing(self, customer: Mapping[str, Any]) -> dict[str, Any] | None:
        """The derived billing fields of one customer (None when disabled)."""
        if not self.config.billing_fields:
            return None
        cid = str(customer["id"])
        subs, invoices = await asyncio.gather(
            self.api.list_all("/v1/subscriptions", {"customer": cid, "status": "all", "limit": MAX_PAGE}),
            self.api.list_all("/v1/invoices", {"customer": cid, "limit": MAX_PAGE}),
        )
        return summarise(customer, subs, invoices)

    async def record(self, customer: Mapping[str, Any]) -> RemoteRecord:
        if is_deleted(customer):
            return to_record(customer)
        try:
            billing = await self.billing(customer)
        except NotFound:  # deleted between the two reads
            return tombstone(str(customer["id"]))
        return to_record(customer, billing)

    async def fetch(self, customer_id: str) -> JsonObject | None:
        """The customer's JSON (a ``deleted`` stub included), or None if Stripe has no such id."""
        try:
            return await self.api.get_json(f"/v1/customers/{customer_id}")
        except NotFound:
            return None

    async def get(self, customer_id: str) -> RemoteRecord | None:
        customer = await self.fetch(customer_id)
        return None if customer is None else await self.record(customer)

    # -- reads ---------------------------------------------------------------------------------

    async def read(self, cursor: Cursor | None) -> AsyncIterator[Page]:
        if cursor is None:
            async for page in self.listing(None, None, complete=True):
                yield page
            return
        since, after = self._load(cursor)
        if after is not None:
            async for page in self._resume_listing(after, since):
                yield page
            return
        age = self.now() - since
        if age > EVENTS_RETENTION_SECONDS - RETENTION_MARGIN_SECONDS:
            log.warning(
                "stripe: the cursor is older than the 30-day events window; falling back to a full listing",
                app="stripe",
                cursor_since=since,
                age_days=round(age / 86400, 1),
            )
            async for page in self.listing(None, None, complete=True):
                yield page
            return
        async for page in self.changes(since):
            yield page

    async def _resume_listing(self, after: str, since: float) -> AsyncIterator[Page]:
        """Continue an interrupted listing after customer ``after``; start over if Stripe refuses it.

        A resumed listing never says ``complete``: the pages before ``after`` were read in an
        earlier run. If ``after`` cannot be paged from (the customer was deleted meanwhile), the
        listing starts again from the beginning, which is a complete listing again.
        """
        started = False
        try:
            async for page in self.listing(after, since, complete=False):
                started = True
                yield page
        except PermanentError as exc:
            if started:
                raise
            log.warning(
                "stripe: cannot resume the listing after this customer; listing again from the start",
                app="stripe",
                after=after,
                error=str(exc),
            )
            async for page in self.listing(None, since, complete=True):
                yield page

    @staticmethod
    def _load(cursor: Cursor) -> tuple[float, str | None]:
        since, after = cursor.get("since"), cursor.get("after")
        if isinstance(since, bool) or not isinstance(since, int | float):
            raise ConfigError(f"stripe: unreadable cursor {cursor!r} (no 'since'); run a full listing")
        if after is not None and not (isinstance(after, str) and after.startswith("cus_")):
            raise ConfigError(f"stripe: unreadable cursor {cursor!r} ('after' is not a customer id)")
        return float(since), after

    async def listing(
        self, start_after: str | None, since: float | None, *, complete: bool
    ) -> AsyncIterator[Page]:
        """Every customer from ``start_after`` on; ``since`` is the watermark (None: now, by the server)."""
        self.api.start_read()
        index = await self._billing_index() if self.config.billing_fields else None
        watermark = since
        params = {"limit": self.config.page_size}
        async for customers, next_after in self.api.pages("/v1/customers", params, start_after):
            if watermark is None:
                # The first response of this read, billing walk included: nothing changed since
                # then has been missed by the next incremental read.
                watermark = self.api.read_started or self.now()
            records = [to_record(c, index.summary(c) if index is not None else None) for c in customers]
            if next_after is not None:
                yield Page(records, {"since": int(watermark), "after": next_after})
            else:
                yield Page(records, {"since": int(watermark)}, complete=complete)

    async def _billing_index(self) -> BillingIndex:
        index = BillingIndex()
        async for subs, _ in self.api.pages("/v1/subscriptions", {"status": "all", "limit": MAX_PAGE}):
            for sub in subs:
                index.add_subscription(sub)
        async for invoices, _ in self.api.pages("/v1/invoices", {"limit": MAX_PAGE}):
            for invoice in invoices:
                index.add_invoice(invoice)
        return index

    def event_types(self) -> tuple[str, ...]:
        return CUSTOMER_EVENTS + (BILLING_EVENTS if self.config.billing_fields else ())

    async def changes(self, since: float) -> AsyncIterator[Page]:
        """Customers named by events at or after ``since`` (less the overlap)."""
        self.api.start_read()
        start = int(since - self.config.events_overlap_seconds)
        latest: dict[str, tuple[int, bool]] = {}
        watermark: float | None = None
        for kind in self.event_types():
            params = {"type": kind, "created[gte]": start, "limit": MAX_PAGE}
            async for events, _ in self.api.pages("/v1/events", params):
                if watermark is None:
                    watermark = self.api.read_started or self.now()
                for event in events:
                    cid = customer_of(event)
                    created = event.get("created")
                    if cid is None or not isinstance(created, int):
                        continue
                    seen, gone = latest.get(cid, (created, False))
                    latest[cid] = (max(seen, created), gone or kind == "customer.deleted")
        final = {"since": int(watermark if watermark is not None else self.now())}
        order = sorted(latest.items(), key=lambda kv: (kv[1][0], kv[0]))
        if not order:
            yield Page([], final)
            return
        size = self.config.page_size
        for offset in range(0, len(order), size):
            chunk = order[offset : offset + size]
            records = await self._records(chunk)
            rest = order[offset + size :]
            yield Page(records, {"since": rest[0][1][0]} if rest else final)

    async def _records(self, chunk: Sequence[tuple[str, tuple[int, bool]]]) -> list[RemoteRecord]:
        async def one(cid: str, deleted: bool) -> RemoteRecord | None:
            if deleted:
                return tombstone(cid)
            return await self.get(cid)

        found = await gather_all(one(cid, gone) for cid, (_, gone) in chunk)
        return [r for r in found if r is not None]
