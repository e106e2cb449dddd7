"""The conformance kit against the in-memory connector, and the kit's own tests.

``MemoryConnector`` passes the whole kit, plain and with signed webhooks added (``X-Signature:
t=<unix>,v1=<hex>`` over ``"<t>." + body``) so that the webhook checks run in the fast suite too.
Then each kit check is shown to fail for a connector that breaks the behaviour it guards, the way
real connectors get it wrong: a kit whose checks cannot fail would prove nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import ConfigDict, Field, SecretStr

from syncd.connector import (
    Capabilities,
    ConnectorConfig,
    ConnectorError,
    Cursor,
    NotFound,
    Page,
    PermanentError,
    RemoteRecord,
    WebhookHint,
    WebhookVerificationError,
    WriteItem,
    WriteResult,
)
from syncd.connector.http import HttpClient, RetryPolicy
from syncd.connector.webhooks import check_timestamp, hmac_sha256_hex, matches_any
from syncd.testing.conformance import (
    MISSING,
    ConnectorConformance,
    FaultInjectingTransport,
    Harness,
    SignedRequest,
    get_path,
    leaves,
    nested,
    with_path,
)
from syncd.testing.memory import MemoryApp, MemoryConfig, MemoryConnector

WEBHOOK_SECRET = "whsec-memory-conformance"


def _reject_malformed_email(op: str, item: WriteItem) -> ConnectorError | None:
    """The validation a real app applies on create: the natural key must look like an email."""
    email = item.fields.get("email")
    if op == "create" and not (isinstance(email, str) and "@" in email):
        return PermanentError(f"invalid email {email!r}", status=422)
    return None


class MemoryHarness(Harness):
    """Backdoor into a ``MemoryApp``: seeding and editing go straight to its rows."""

    natural_key_path = "email"
    mutable_path = "name.first"

    def __init__(self, obj: str, *, page_size: int = 3, connector: MemoryConnector | None = None) -> None:
        self.obj = obj
        self.page_size = page_size
        if connector is None:
            self.app = MemoryApp("conformance", fail_writes=_reject_malformed_email)
            connector = MemoryConnector.over(self.app, page_size=page_size)
        else:
            self.app = connector.backend
        self.connector = connector

    async def seed(self, fields: Mapping[str, Any]) -> str:
        return self.app.seed(self.obj, fields)

    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        self.app.edit(self.obj, id, fields)

    async def remove(self, id: str) -> None:
        self.app.remove(self.obj, id)

    def sample_fields(self, i: int) -> dict[str, Any]:
        return {
            "email": f"user{i}@example.com",
            "name": {"first": f"First{i}", "last": f"Last{i}"},
            "tags": ["a"],
        }

    def invalid_fields(self) -> dict[str, Any]:
        return {"email": "not-an-email", "name": {"first": "Bad"}}


class TestMemoryConformance(ConnectorConformance):
    object_name = "contacts"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        harness = MemoryHarness(self.object_name)
        yield harness
        await harness.connector.aclose()


# -- a memory connector with signed webhooks ------------------------------------------------------


class SignedMemoryConfig(MemoryConfig):
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    webhook_tolerance: float = 300.0


def sign(secret: str, body: bytes, timestamp: float) -> str:
    ts = str(int(timestamp))
    return f"t={ts},v1={hmac_sha256_hex(secret, ts.encode() + b'.' + body)}"


class SignedMemoryConnector(MemoryConnector):
    """``MemoryConnector`` plus webhooks whose body is ``{"id", "object", "record_id", "deleted"}``."""

    name: ClassVar[str] = "memory-signed"
    config_model: ClassVar[type[ConnectorConfig]] = SignedMemoryConfig
    capabilities: ClassVar[Capabilities] = dataclasses.replace(MemoryConnector.capabilities, webhooks=True)

    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        assert isinstance(self.config, SignedMemoryConfig)
        header = {k.lower(): v for k, v in headers.items()}.get("x-signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        if "t" not in parts or "v1" not in parts:
            raise WebhookVerificationError("missing or malformed X-Signature header", status=401)
        try:
            timestamp = float(parts["t"])
        except ValueError:
            raise WebhookVerificationError("malformed webhook timestamp", status=401) from None
        check_timestamp(timestamp, tolerance=self.config.webhook_tolerance)
        expected = [
            hmac_sha256_hex(s.get_secret_value(), parts["t"].encode() + b"." + body)
            for s in self.config.webhook_secrets
        ]
        if not matches_any(expected, [parts["v1"]]):
            raise WebhookVerificationError("webhook signature does not match", status=401)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookHint]:
        payload = json.loads(body)
        if not isinstance(payload, dict) or not {"id", "object", "record_id"} <= payload.keys():
            raise ValueError("webhook body must be an object with id, object and record_id")
        return [
            WebhookHint(
                event_id=str(payload["id"]),
                object=str(payload["object"]),
                record_id=str(payload["record_id"]),
                deleted=bool(payload.get("deleted", False)),
            )
        ]


class SignedMemoryHarness(MemoryHarness):
    def __init__(self, obj: str) -> None:
        app = MemoryApp("signed", fail_writes=_reject_malformed_email)
        config = SignedMemoryConfig(space="signed", page_size=3, webhook_secrets=[SecretStr(WEBHOOK_SECRET)])
        super().__init__(obj, page_size=3, connector=SignedMemoryConnector(config, backend=app))

    def webhook_body(self, record_id: str, *, event_id: str) -> bytes:
        return json.dumps({"id": event_id, "object": self.obj, "record_id": record_id}).encode()

    def sign_webhook(
        self, body: bytes, *, secret: str | None = None, timestamp: float | None = None
    ) -> SignedRequest:
        when = time.time() if timestamp is None else timestamp
        headers = {"X-Signature": sign(secret or WEBHOOK_SECRET, body, when)}
        return ("POST", "https://syncd.example/webhooks/memory", headers, body)


class TestSignedMemoryConformance(ConnectorConformance):
    object_name = "contacts"

    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        harness = SignedMemoryHarness(self.object_name)
        yield harness
        await harness.connector.aclose()


def test_signed_memory_connector_accepts_the_previous_secret_during_rotation() -> None:
    config = SignedMemoryConfig(webhook_secrets=[SecretStr("new-secret"), SecretStr("old-secret")])
    connector = SignedMemoryConnector(config, backend=MemoryApp("rotation"))
    body = b'{"id": "e1", "object": "contacts", "record_id": "r1"}'
    connector.verify_webhook("POST", "/", {"X-Signature": sign("old-secret", body, time.time())}, body)
    with pytest.raises(WebhookVerificationError):
        connector.verify_webhook(
            "POST", "/", {"X-Signature": sign("retired-secret", body, time.time())}, body
        )


# -- the kit catches broken connectors ---------------------------------------------------------------

OBJ = "contacts"


class Kit(ConnectorConformance):
    """The kit's checks, called directly (the class name keeps pytest from collecting it)."""

    object_name = OBJ


def memory_harness(cls: type[MemoryConnector] = MemoryConnector, **app_options: Any) -> MemoryHarness:
    app = MemoryApp("broken", fail_writes=_reject_malformed_email, **app_options)
    return MemoryHarness(OBJ, connector=cls.over(app, page_size=3))


# -- broken connectors -----------------------------------------------------------------------------


class CaseSensitiveFind(MemoryConnector):
    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        rows = self.backend.live(obj)
        return [self.backend.record(obj, rid) for rid, f in rows.items() if get_path(f, path) in values]


class CompleteOnEveryPage(MemoryConnector):
    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        async for page in super().read_changes(obj, cursor):
            yield dataclasses.replace(page, complete=cursor is None)


class CursorSkipsOneChange(MemoryConnector):
    """Resumes at ``seq + 1``: the classic off-by-one that skips a record per page."""

    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        async for page in super().read_changes(obj, cursor):
            bumped = {"seq": page.cursor["seq"] + 1} if page.cursor is not None else None
            yield dataclasses.replace(page, cursor=bumped)


class UpdateReplacesTheRecord(MemoryConnector):
    """PUT semantics where PATCH was promised: fields not sent are wiped."""

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        for item in items:
            row = self.backend.table(obj).get(item.id or "")
            if row is not None:
                row.fields.clear()
        return await super().update(obj, items)


class UpdateRaisesForMissing(MemoryConnector):
    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        for item in items:
            if item.id not in self.backend.live(obj):
                raise NotFound(f"no record {item.id}")
        return await super().update(obj, items)


class UpdateWritesEveryRecord(MemoryConnector):
    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        results = await super().update(obj, items)
        for item in items:
            for rid in self.backend.live(obj):
                if rid != item.id:
                    self.backend.edit(obj, rid, item.fields)
        return results


class LaxConfig(MemoryConfig):
    model_config = ConfigDict(extra="allow")


class AcceptsUnknownSettings(MemoryConnector):
    config_model: ClassVar[type[ConnectorConfig]] = LaxConfig

    @classmethod
    def over(
        cls, backend: MemoryApp, *, page_size: int = 100, conditional_writes: bool = True
    ) -> MemoryConnector:
        return cls(LaxConfig(space=backend.name, page_size=page_size), app=backend.name, backend=backend)


class NoTombstones(MemoryConnector):
    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        async for page in super().read_changes(obj, cursor):
            yield dataclasses.replace(page, records=[r for r in page.records if not r.deleted])


class ListsRemovedRecordsAsLive(MemoryConnector):
    async def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        table = self.backend.table(obj)
        records = [dataclasses.replace(self.backend.record(obj, rid), deleted=False) for rid in table]
        yield Page(records, {"seq": 10**6}, complete=True)


class BatchFailsAsAWhole(MemoryConnector):
    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        if any("@" not in str(i.fields.get("email")) for i in items):
            return [WriteResult(i.key, error=PermanentError("batch rejected", status=400)) for i in items]
        return await super().create(obj, items)


class ReportsSentFieldsNotStoredOnes(MemoryConnector):
    """Returns the fields it sent as "the record as written", although the app normalised them."""

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        results = await super().create(obj, items)
        return [
            dataclasses.replace(r, record=dataclasses.replace(r.record, fields=dict(i.fields)))
            if r.record
            else r
            for r, i in zip(results, items, strict=True)
        ]


class GetRaisesForMissing(MemoryConnector):
    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        missing = set(ids) - set(self.backend.live(obj))
        if missing:
            raise ConnectorError(f"no such records: {sorted(missing)}")
        return await super().get(obj, ids)


class TombstoneClaimsLiveOnGetAfterDelete(MemoryConnector):
    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return [WriteResult(i.key, record=self.backend.record(obj, i.id or "")) for i in items]


class WebhookIgnoresTimestamp(SignedMemoryConnector):
    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        parts = dict(p.split("=", 1) for p in headers.get("X-Signature", "").split(","))
        secrets = [s.get_secret_value() for s in getattr(self.config, "webhook_secrets", [])]
        expected = [hmac_sha256_hex(s, parts["t"].encode() + b"." + body) for s in secrets]
        if not matches_any(expected, [parts.get("v1", "")]):
            raise WebhookVerificationError("bad signature")


class WebhookSignatureOverHeaderOnly(SignedMemoryConnector):
    """Checks that a signature header is present and fresh, but never looks at the body."""

    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        if "t=" not in headers.get("X-Signature", ""):
            raise WebhookVerificationError("no signature")


class WebhookAcceptsAnySecret(SignedMemoryConnector):
    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        return None


_counter = itertools.count()


class WebhookEventIdsPerDelivery(SignedMemoryConnector):
    """Generates a fresh event id per parse: duplicates can no longer be recognised."""

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookHint]:
        payload = json.loads(body)
        return [WebhookHint(event_id=f"gen-{next(_counter)}", object=OBJ, record_id=payload["record_id"])]


class ClaimsWebhooksWithoutThem(MemoryConnector):
    capabilities: ClassVar[Capabilities] = dataclasses.replace(MemoryConnector.capabilities, webhooks=True)


class ListsIds(MemoryConnector):
    """A correct id listing: the live records' ids."""

    capabilities: ClassVar[Capabilities] = dataclasses.replace(MemoryConnector.capabilities, id_listing=True)

    async def list_ids(self, obj: str) -> list[str]:
        return list(self.backend.live(obj))


class IdListingStopsAfterOnePage(ListsIds):
    async def list_ids(self, obj: str) -> list[str]:
        return (await super().list_ids(obj))[: self.config.page_size]


class IdListingKeepsRemovedRecords(ListsIds):
    async def list_ids(self, obj: str) -> list[str]:
        return list(self.backend.table(obj))


class NamesItselfReplaced(MemoryConnector):
    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        return [dataclasses.replace(r, replaces=(r.id,)) for r in await super().get(obj, ids)]


def signed_harness(cls: type[SignedMemoryConnector]) -> Harness:
    harness = SignedMemoryHarness(OBJ)
    harness.connector = cls(harness.connector.config, backend=harness.app)
    return harness


def _upper_first_name(fields: dict[str, Any]) -> dict[str, Any]:
    if isinstance(fields.get("name"), dict) and isinstance(fields["name"].get("first"), str):
        fields["name"]["first"] = fields["name"]["first"].upper()
    return fields


def _ascii_only(fields: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(fields).encode("ascii", "ignore").decode().replace("\\u", "u"))


#: Check that must fail -> a harness over a connector (or app) that breaks what the check guards.
BROKEN: dict[str, Callable[[], Harness]] = {
    "find_matches_natural_key_case_insensitively_and_trimmed": lambda: memory_harness(CaseSensitiveFind),
    "listing_spans_several_pages_when_records_exceed_the_page_size": lambda: memory_harness(
        CompleteOnEveryPage
    ),
    "full_listing_returns_every_record_and_is_complete_only_on_its_last_page": lambda: memory_harness(
        listing_limit=2
    ),
    "resuming_from_any_page_cursor_skips_no_record": lambda: memory_harness(CursorSkipsOneChange),
    "update_returns_a_new_version_and_changes_only_the_sent_fields": lambda: memory_harness(
        UpdateReplacesTheRecord
    ),
    "update_of_a_missing_record_reports_not_found_in_its_result": lambda: memory_harness(
        UpdateRaisesForMissing
    ),
    "writes_leave_other_records_untouched": lambda: memory_harness(UpdateWritesEveryRecord),
    "config_model_rejects_unknown_settings": lambda: memory_harness(AcceptsUnknownSettings),
    "removed_record_comes_back_as_a_tombstone_after_a_cursor": lambda: memory_harness(NoTombstones),
    "full_listing_does_not_return_a_removed_record_as_live": lambda: memory_harness(
        ListsRemovedRecordsAsLive
    ),
    "one_invalid_item_fails_alone_without_failing_its_batch": lambda: memory_harness(BatchFailsAsAWhole),
    "get_returns_present_records_and_omits_missing_ids": lambda: memory_harness(GetRaisesForMissing),
    "deleted_record_is_absent_or_a_tombstone": lambda: memory_harness(TombstoneClaimsLiveOnGetAfterDelete),
    "created_record_reads_back_with_the_written_fields": lambda: memory_harness(normalise=_upper_first_name),
    "unicode_text_round_trips_unchanged": lambda: memory_harness(normalise=_ascii_only),
    "written_record_reads_back_identically_so_its_echo_is_recognised": lambda: memory_harness(
        ReportsSentFieldsNotStoredOnes, normalise=_upper_first_name
    ),
    "webhook_with_a_stale_timestamp_is_rejected": lambda: signed_harness(WebhookIgnoresTimestamp),
    "webhook_with_a_tampered_body_is_rejected": lambda: signed_harness(WebhookSignatureOverHeaderOnly),
    "webhook_signed_with_a_wrong_secret_is_rejected": lambda: signed_harness(WebhookAcceptsAnySecret),
    "duplicate_webhook_delivery_yields_the_same_event_id": lambda: signed_harness(WebhookEventIdsPerDelivery),
    "valid_webhook_is_accepted_and_names_the_record": lambda: memory_harness(ClaimsWebhooksWithoutThem),
    "id_listing_names_exactly_the_records_of_a_full_listing": lambda: memory_harness(
        IdListingStopsAfterOnePage
    ),
    "removed_record_disappears_from_the_id_listing": lambda: memory_harness(IdListingKeepsRemovedRecords),
    "records_never_name_themselves_as_replaced": lambda: memory_harness(NamesItselfReplaced),
}


@pytest.mark.parametrize("check", sorted(BROKEN))
async def test_check_fails_for_a_connector_that_breaks_its_contract(check: str) -> None:
    harness = BROKEN[check]()
    with pytest.raises((AssertionError, ConnectorError, pytest.fail.Exception)):
        await getattr(Kit(), f"test_{check}")(harness)


async def test_conditional_check_fails_when_a_stale_version_overwrites_a_human_edit() -> None:
    app = MemoryApp("lax", fail_writes=_reject_malformed_email)
    harness = MemoryHarness(OBJ, connector=MemoryConnector.over(app, page_size=3, conditional_writes=False))
    with pytest.raises(AssertionError, match="PreconditionFailed"):
        await Kit().test_conditional_update_with_a_stale_version_is_refused(harness)


async def test_checks_that_do_not_apply_are_skipped_with_a_reason() -> None:
    harness = memory_harness()
    harness.page_size = None
    with pytest.raises(pytest.skip.Exception, match="page_size"):
        await Kit().test_listing_spans_several_pages_when_records_exceed_the_page_size(harness)
    with pytest.raises(pytest.skip.Exception, match="inject 429"):
        await Kit().test_transient_failure_is_retried_until_the_call_succeeds(harness, "429")
    with pytest.raises(pytest.skip.Exception, match="no webhooks"):
        await Kit().test_webhook_with_a_tampered_body_is_rejected(harness)


async def test_id_listing_checks_pass_for_a_correct_id_listing_and_skip_without_one() -> None:
    await Kit().test_id_listing_names_exactly_the_records_of_a_full_listing(memory_harness(ListsIds))
    await Kit().test_removed_record_disappears_from_the_id_listing(memory_harness(ListsIds))
    with pytest.raises(pytest.skip.Exception, match="id_listing"):
        await Kit().test_removed_record_disappears_from_the_id_listing(memory_harness())


# -- helpers ---------------------------------------------------------------------------------------


def test_path_helpers_read_and_build_nested_fields() -> None:
    fields = {"properties": {"email": "a@b.c", "name": {"first": "Ann"}}, "tags": ["x"]}
    assert get_path(fields, "properties.name.first") == "Ann"
    assert get_path(fields, "properties.phone") is MISSING
    assert get_path(fields, "tags.first") is MISSING, "a list is a leaf, not a mapping to walk into"
    assert nested("a.b.c", 1) == {"a": {"b": {"c": 1}}}
    assert leaves(fields) == {"properties.email": "a@b.c", "properties.name.first": "Ann", "tags": ["x"]}
    changed = with_path(fields, "properties.name.first", "Bo")
    assert get_path(changed, "properties.name.first") == "Bo"
    assert get_path(fields, "properties.name.first") == "Ann", "with_path must not mutate its input"


async def test_fault_injecting_transport_fails_the_next_requests_then_passes_through() -> None:
    calls: list[str] = []

    def app(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={"ok": True})

    faults = FaultInjectingTransport(httpx.MockTransport(app))
    faults.inject("429", 1)
    faults.inject("timeout", 1)
    faults.inject("500", 1)
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    policy = RetryPolicy(attempts=4, base_delay=0.0, jitter=0.0)
    async with HttpClient(
        app="t", base_url="http://t.test", transport=faults, retry=policy, sleep=no_sleep
    ) as client:
        response = await client.get("/ping")
    assert response.json() == {"ok": True}
    assert faults.served == 3
    assert calls == ["/ping"], "only the request after the injected failures reaches the app"
    assert len(sleeps) == 3
