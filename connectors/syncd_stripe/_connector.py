"""``StripeConnector``: Stripe customers for syncd, with billing context read-only.

Reads: see ``_reading`` (full listings, incremental reads through ``/v1/events``, the 30-day
fallback). Writes: one request per customer (Stripe has no batch endpoints), run concurrently
within the rate limit. Every create carries an ``Idempotency-Key`` derived from the write's
stable key, so a create retried after a timeout or a crash is answered with the customer the
first attempt made, never a second one. Deletes erase (Stripe has no archive) and are off
unless ``allow_delete`` is set; ``erase`` is the explicit route for GDPR erasure.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Unpack
from urllib.parse import quote

from syncd.connector import (
    Capabilities,
    ConfigError,
    Cursor,
    NotFound,
    ObjectType,
    Page,
    PermanentError,
    PreconditionFailed,
    RemoteRecord,
    WebhookHint,
    WriteItem,
    WriteResult,
)
from syncd.connector.http import HttpConnector, HttpSeams, RateLimiter

from . import _webhooks
from ._billing import summarise
from ._client import StripeApi, classify
from ._config import StripeConfig
from ._customers import FIELDS, check_writable, is_deleted, to_record, tombstone, update_payload
from ._reading import Reader, gather_all

__version__ = "0.1.0"

OBJECT = "customers"
#: Stripe accepts idempotency keys of up to 255 characters.
_MAX_KEY = 255


def idempotency_key(write_key: str) -> str:
    """The ``Idempotency-Key`` of a create: the same for every retry of one write, unique per write."""
    key = f"syncd-{write_key}"
    if len(key) <= _MAX_KEY and key.isascii() and key.isprintable():
        return key
    return "syncd-" + hashlib.sha256(write_key.encode("utf-8")).hexdigest()


def _normal(email: object) -> str | None:
    return email.strip().lower() if isinstance(email, str) and email.strip() else None


class StripeConnector(HttpConnector[StripeConfig]):
    """Customers of one Stripe account; subscriptions and invoices feed read-only ``billing.*`` fields."""

    name: ClassVar[str] = "stripe"
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
        batch_size=20,
        requests_per_second=25.0,
    )
    objects: ClassVar[tuple[ObjectType, ...]] = (
        ObjectType(OBJECT, primary_key="id", fields=FIELDS, natural_keys=("email",)),
    )

    def __init__(self, config: StripeConfig, *, app: str | None = None, **seams: Unpack[HttpSeams]) -> None:
        super().__init__(config, app=app, **seams)
        self._api: StripeApi | None = None

    @property
    def api(self) -> StripeApi:
        """The HTTP API, created on first use (inside the event loop that will use it)."""
        if self._api is None:
            headers = {"Authorization": f"Bearer {self.config.secret_key.get_secret_value()}"}
            if self.config.api_version:
                headers["Stripe-Version"] = self.config.api_version
            http = self.http_client(
                base_url=self.config.base_url,
                headers=headers,
                rate_limiter=RateLimiter(self.config.requests_per_second),
                timeout=self.config.timeout_seconds,
                classify=classify,
                max_concurrency=self.config.max_connections,
            )
            self._api = StripeApi(http)
        return self._api

    @property
    def _reader(self) -> Reader:
        return Reader(self.api, self.config, self._now)

    # -- lifecycle -----------------------------------------------------------------------------

    async def check(self) -> None:
        await self.api.get_json("/v1/customers", {"limit": 1})

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None

    # -- reading -------------------------------------------------------------------------------

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        self.object_type(obj)
        async for page in self._reader.read(cursor):
            yield page

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        self.object_type(obj)
        wanted = [i for i in dict.fromkeys(str(i) for i in ids) if i.startswith("cus_")]
        reader = self._reader
        found = await gather_all(reader.get(cid) for cid in wanted)
        return [r for r in found if r is not None]

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        """Customers whose email is one of ``values`` (trimmed, any case).

        Stripe's ``email`` filter is exact and case-sensitive, so each value is asked for as
        given (trimmed) and in lower case. Stripe lets several customers share an email: all are
        returned unless ``duplicate_email = "newest"``, which keeps the latest created one.
        """
        self.object_type(obj)
        if path != "email":
            raise ConfigError(f"{self.app}: customers can be found by email only, not {path!r}")
        wanted = {n for n in (_normal(v) for v in values) if n}
        variants = sorted({v.strip() for v in values if v.strip()} | wanted)
        found: dict[str, dict[str, Any]] = {}
        lists = await gather_all(
            self.api.list_all("/v1/customers", {"email": v, "limit": 100}) for v in variants
        )
        for customers in lists:
            for customer in customers:
                if _normal(customer.get("email")) in wanted and not is_deleted(customer):
                    found[str(customer["id"])] = customer
        chosen = list(found.values())
        if self.config.duplicate_email == "newest":
            newest: dict[str, dict[str, Any]] = {}
            for customer in chosen:
                email = _normal(customer.get("email")) or ""
                best = newest.get(email)
                if best is None or (customer.get("created") or 0, customer["id"]) > (
                    best.get("created") or 0,
                    best["id"],
                ):
                    newest[email] = customer
            chosen = list(newest.values())
        reader = self._reader
        return await gather_all(reader.record(c) for c in sorted(chosen, key=lambda c: str(c["id"])))

    # -- writing -------------------------------------------------------------------------------

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)
        return await self._write_all(items, self._create_one)

    async def _create_one(self, item: WriteItem) -> RemoteRecord:
        check_writable(item.fields)
        payload = {k: v for k, v in item.fields.items() if v is not None and v != {} and v != []}
        if self.config.key_metadata:
            metadata = dict(payload.get("metadata") or {})
            metadata.setdefault(self.config.key_metadata, item.key)
            payload["metadata"] = metadata
        customer = await self.api.post_form(
            "/v1/customers", payload, idempotency_key=idempotency_key(item.key)
        )
        # A new customer has no subscriptions or invoices yet; no need to ask.
        billing = summarise(customer, [], []) if self.config.billing_fields else None
        return to_record(customer, billing)

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.object_type(obj)
        return await self._write_all(items, self._update_one)

    async def _update_one(self, item: WriteItem) -> RemoteRecord:
        if not item.id:
            raise PermanentError("stripe: an update needs the customer id")
        check_writable(item.fields)
        path = f"/v1/customers/{quote(item.id, safe='')}"
        reader = self._reader
        current = await reader.fetch(item.id)
        if current is None or is_deleted(current):
            raise NotFound(f"stripe: customer {item.id} not found", status=404)
        if item.expected_version is not None:
            # Best effort: Stripe has no conditional write, a change after this read goes unseen.
            now = await reader.record(current)
            if now.version != item.expected_version:
                raise PreconditionFailed(
                    f"stripe: customer {item.id} changed since version {item.expected_version}"
                )
        payload = update_payload(current, item.fields)
        customer = await self.api.post_form(path, payload) if payload else current
        return await reader.record(customer)

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Erase customers, if ``allow_delete``; otherwise each item fails with the reason."""
        self.object_type(obj)

        async def one(item: WriteItem) -> RemoteRecord:
            if not self.config.allow_delete:
                raise PermanentError(
                    "stripe: deleting a customer erases it for good and cancels its subscriptions; "
                    "set allow_delete = true to let syncd propagate deletes (or use erase())"
                )
            if not item.id:
                raise PermanentError("stripe: a delete needs the customer id")
            return await self._erase_one(item.id)

        return await self._write_all(items, one)

    async def erase(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Erase customers for good (``DELETE /v1/customers/{id}``): the GDPR erasure route.

        Works whatever ``allow_delete`` says: it is called on purpose, not planned by a sync.
        Stripe cancels the customers' subscriptions at once and cannot undo the deletion. A
        customer already gone counts as erased. One result per item.
        """
        self.object_type(obj)

        async def one(item: WriteItem) -> RemoteRecord:
            assert item.id is not None
            return await self._erase_one(item.id)

        return await self._write_all(items, one)

    async def _erase_one(self, customer_id: str) -> RemoteRecord:
        # A customer already gone counts as erased.
        with contextlib.suppress(NotFound):
            await self.api.delete(f"/v1/customers/{quote(customer_id, safe='')}")
        return tombstone(customer_id)

    async def _write_all(
        self, items: Sequence[WriteItem], write: Callable[[WriteItem], Awaitable[RemoteRecord]]
    ) -> list[WriteResult]:
        """One result per item; a failure of the whole request (auth, transport) is raised instead."""

        async def guarded(item: WriteItem) -> WriteResult:
            try:
                return WriteResult(key=item.key, record=await write(item))
            except PermanentError as exc:
                return WriteResult(key=item.key, error=exc)

        return await gather_all(guarded(item) for item in items)

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
        return _webhooks.parse(body, billing=self.config.billing_fields)


__all__ = ["StripeConnector", "idempotency_key"]
