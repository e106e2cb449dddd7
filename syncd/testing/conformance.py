"""The connector conformance kit: one pytest suite that every connector must pass.

A connector's test module subclasses ``ConnectorConformance``, names the object type to exercise
and provides a ``harness`` fixture yielding a ``Harness`` for a fresh, empty app::

    class TestAcmeConformance(ConnectorConformance):
        object_name = "contacts"

        @pytest.fixture
        async def harness(self) -> AsyncIterator[Harness]:
            async with AcmeFake() as fake:
                yield AcmeHarness(fake)

The harness hands the kit the connector under test and a backdoor into the app (seed, edit,
remove records behind the connector's back), so the checks can play both syncd and a human.
Each check is a test method named after the behaviour it guards; a check that does not apply
(no webhooks, no failure injection, a capability the connector does not claim) is skipped with
the reason. ``FaultInjectingTransport`` lets an HTTP connector's harness inject 429/500/timeouts.
"""

from __future__ import annotations

import collections
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import httpx
import pydantic
import pytest

from syncd.connector import (
    CONNECTOR_API_VERSION,
    Capabilities,
    Connector,
    ConnectorConfig,
    ConnectorError,
    Cursor,
    NotFound,
    OutcomeUnknown,
    Page,
    PreconditionFailed,
    RemoteRecord,
    WebhookVerificationError,
    WriteItem,
    WriteResult,
)
from syncd.mapping.paths import get_path as _lookup
from syncd.mapping.paths import set_path
from syncd.testing.fakes import FailureKind

#: A webhook request as the app would send it: (method, url, headers, body).
SignedRequest = tuple[str, str, Mapping[str, str], bytes]

#: What ``get_path`` returns for a path that is not there (distinct from a None value).
MISSING: Any = object()


# -- the harness ---------------------------------------------------------------------------------


class Harness(ABC):
    """What the kit needs from a connector's test module: the connector and a backdoor into its app.

    Required: ``connector``, ``natural_key_path``, ``mutable_path`` and the four abstract methods.
    The rest have defaults that make the matching checks skip (or use a neutral value).
    Field paths are dotted paths into the app-shaped ``fields`` (``properties.email``).
    """

    #: The connector under test, configured against the harness's app.
    connector: Connector
    #: Path of the natural key (e.g. an email) in the app's fields; ``sample_fields`` values are lower case.
    natural_key_path: str
    #: Path of a plain text field that ``update`` can change.
    mutable_path: str
    #: Records per page of a listing, when the harness configured it (enables the pagination checks).
    page_size: int | None = None
    #: Paths the app changes by itself (``updated_at``...): ignored when comparing records.
    volatile_paths: tuple[str, ...] = ()
    #: False if the app's webhook authentication does not cover the body (e.g. a secret in the URL).
    webhook_signs_body: bool = True
    #: False if the app's webhooks carry no signed timestamp (no replay window to check).
    webhook_timestamped: bool = True

    @abstractmethod
    async def seed(self, fields: Mapping[str, Any]) -> str:
        """Create a record in the app behind the connector's back; return its id."""

    @abstractmethod
    async def edit(self, id: str, fields: Mapping[str, Any]) -> None:
        """Change the given fields of a record behind the connector's back (like a human would)."""

    @abstractmethod
    async def remove(self, id: str) -> None:
        """Delete a record behind the connector's back."""

    @abstractmethod
    def sample_fields(self, i: int) -> dict[str, Any]:
        """Valid app-shaped fields for a new record whose natural key is unique for each ``i``."""

    def invalid_fields(self) -> dict[str, Any] | None:
        """Fields the app rejects on create (e.g. a malformed email); None if there are none."""
        return None

    def missing_id(self) -> str:
        """A well-formed id that no record has."""
        return "conformance-missing-404"

    def text_value(self, i: int) -> Any:
        """A new value for ``mutable_path``, distinct for each ``i``."""
        return f"Changed {i}"

    def unicode_text(self) -> str:
        """A value for ``mutable_path`` with accents, non-Latin script and an astral-plane character."""
        return "Zoë Ñandú-Łódź 北京 ✓ 😀"

    def inject(self, kind: FailureKind, times: int) -> bool:
        """Make the next ``times`` requests fail with ``kind``; False if the harness cannot."""
        return False

    def sign_webhook(
        self, body: bytes, *, secret: str | None = None, timestamp: float | None = None
    ) -> SignedRequest | None:
        """The webhook request the app would send for ``body``; None if the connector has no webhooks.

        ``secret`` replaces the configured webhook secret (to forge a wrong signature);
        ``timestamp`` replaces the current Unix time in the signature.
        """
        return None

    def webhook_body(self, record_id: str, *, event_id: str) -> bytes:
        """A webhook body announcing a change to ``record_id``, carrying ``event_id`` where the app has one."""
        raise NotImplementedError(f"{type(self).__name__} signs webhooks but does not build webhook bodies")

    async def settle(self) -> None:  # noqa: B027 - optional hook, a no-op for consistent apps
        """Wait until the app's reads reflect earlier writes (for eventually consistent fakes)."""


# -- helpers ---------------------------------------------------------------------------------------


# Dotted paths are the mapping's (``syncd.mapping.paths``): the kit reads and writes records the
# way syncd will, empty segments and non-table intermediates included.


def get_path(fields: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` in nested ``fields``, or ``MISSING``."""
    found, value = _lookup(fields, path)
    return value if found else MISSING


def nested(path: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for ``path="a.b"``."""
    out: dict[str, Any] = {}
    set_path(out, path, value)
    return out


def with_path(fields: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``fields`` with ``path`` set to ``value`` (``ValueError`` if a segment on
    the way holds a value that is not a table)."""
    out = _deep_copy(fields)
    set_path(out, path, value)
    return out


def _deep_copy(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in fields.items()}


def leaves(fields: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to ``{"a.b": value}`` (lists are leaves)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(leaves(value, path + "."))
        else:
            out[path] = value
    return out


async def read_pages(
    connector: Connector, obj: str, cursor: Cursor | None, *, max_pages: int = 1000
) -> list[Page]:
    """Every page of ``read_changes(obj, cursor)``; fails on a listing that never ends."""
    pages: list[Page] = []
    async for page in connector.read_changes(obj, cursor):
        pages.append(page)
        assert len(pages) <= max_pages, (
            f"read_changes yielded more than {max_pages} pages: a pagination loop?"
        )
    return pages


def record_ids(pages: Iterable[Page]) -> list[str]:
    return [r.id for p in pages for r in p.records]


def live_ids(pages: Iterable[Page]) -> set[str]:
    return {r.id for p in pages for r in p.records if not r.deleted}


def last_cursor(pages: Sequence[Page], default: Cursor | None = None) -> Cursor | None:
    """The cursor to resume from after ``pages`` (the last one a page gave)."""
    for page in reversed(pages):
        if page.cursor is not None:
            return page.cursor
    return default


def latest(pages: Iterable[Page], rid: str) -> RemoteRecord | None:
    """The last occurrence of record ``rid`` in ``pages``."""
    found = None
    for page in pages:
        for record in page.records:
            if record.id == rid:
                found = record
    return found


class FaultInjectingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that fails the next requests on demand, then passes through.

    ``inject("429", 2)`` answers the next two requests with 429 (``Retry-After`` if configured),
    ``"500"`` with a 500, ``"timeout"`` raises ``httpx.ReadTimeout`` without waiting.
    ``served`` counts the failures delivered, so a test can prove they were consumed.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport | None = None, *, retry_after: str | None = None
    ) -> None:
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self.retry_after = retry_after
        self.pending: collections.deque[FailureKind] = collections.deque()
        self.served = 0

    def inject(self, kind: FailureKind, times: int = 1) -> bool:
        self.pending.extend([kind] * times)
        return True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.pending:
            return await self.inner.handle_async_request(request)
        kind = self.pending.popleft()
        self.served += 1
        if kind == "timeout":
            raise httpx.ReadTimeout("injected timeout", request=request)
        headers = {"Retry-After": self.retry_after} if kind == "429" and self.retry_after else {}
        return httpx.Response(
            int(kind), json={"message": f"injected {kind}"}, headers=headers, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- the suite -------------------------------------------------------------------------------------


class ConnectorConformance:
    """Base class of a connector's conformance tests; see the module docstring for the set-up."""

    #: The object type the checks exercise.
    object_name: ClassVar[str]
    #: Upper bound on pages in one listing, to turn a pagination loop into a failure.
    max_pages: ClassVar[int] = 1000

    # -- shared steps ------------------------------------------------------------------------------

    def _caps(self, harness: Harness) -> Capabilities:
        return harness.connector.capabilities

    async def _pages(self, harness: Harness, cursor: Cursor | None) -> list[Page]:
        return await read_pages(harness.connector, self.object_name, cursor, max_pages=self.max_pages)

    async def _seed(self, harness: Harness, indexes: Iterable[int]) -> list[str]:
        ids = [await harness.seed(harness.sample_fields(i)) for i in indexes]
        await harness.settle()
        return ids

    async def _get_one(self, harness: Harness, rid: str) -> RemoteRecord | None:
        found = [r for r in await harness.connector.get(self.object_name, [rid]) if r.id == rid]
        assert len(found) <= 1, f"get returned record {rid} {len(found)} times"
        return found[0] if found and not found[0].deleted else None

    async def _write(self, op: str, harness: Harness, items: Sequence[WriteItem]) -> list[WriteResult]:
        method = getattr(harness.connector, op)
        results: list[WriteResult] = await method(self.object_name, items)
        assert [r.key for r in results] == [i.key for i in items], (
            f"{op} must return one result per item, in order (got keys {[r.key for r in results]})"
        )
        await harness.settle()
        return results

    async def _create(self, harness: Harness, fields: Mapping[str, Any], key: str) -> RemoteRecord:
        (result,) = await self._write("create", harness, [WriteItem(key=key, fields=fields)])
        assert result.ok, f"create failed: {result.error!r}"
        assert result.record is not None, "a successful create must return the record as written"
        assert result.record.id, "a created record must have an id"
        return result.record

    def _comparable(self, harness: Harness, fields: Mapping[str, Any]) -> dict[str, Any]:
        skipped = set(harness.volatile_paths)
        return {
            path: value
            for path, value in leaves(fields).items()
            if not any(path == v or path.startswith(v + ".") for v in skipped)
        }

    def _assert_has_fields(self, actual: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
        for path, value in leaves(expected).items():
            got = get_path(actual, path)
            assert got is not MISSING, f"{what}: field {path!r} is missing"
            assert got == value, f"{what}: field {path!r} is {got!r}, expected {value!r}"

    def _require(self, harness: Harness, capability: str) -> None:
        if not getattr(self._caps(harness), capability):
            pytest.skip(f"the connector does not claim capabilities.{capability}")

    def _signed(
        self, harness: Harness, body: bytes, *, secret: str | None = None, timestamp: float | None = None
    ) -> SignedRequest:
        signed = harness.sign_webhook(body, secret=secret, timestamp=timestamp)
        if signed is None:
            assert not self._caps(harness).webhooks, (
                "capabilities.webhooks is True but the harness cannot sign webhooks (sign_webhook returned None)"
            )
            pytest.skip("the connector has no webhooks (harness.sign_webhook returned None)")
        if not self._caps(harness).webhooks:
            pytest.skip("the harness signs webhooks but capabilities.webhooks is False")
        return signed

    async def _webhook_target(self, harness: Harness) -> tuple[str, bytes]:
        self._signed(harness, b"{}")  # skips (or fails on a capability mismatch) before seeding anything
        (rid,) = await self._seed(harness, [0])
        return rid, harness.webhook_body(rid, event_id="evt-conformance-1")

    # -- metadata ----------------------------------------------------------------------------------

    async def test_metadata_declares_name_version_capabilities_and_objects(self, harness: Harness) -> None:
        cls = type(harness.connector)
        assert isinstance(cls.name, str), "Connector.name must be a string"
        assert cls.name, "Connector.name must not be empty"
        assert cls.name == cls.name.strip().lower(), "Connector.name is a lower-case registry name"
        assert cls.api_version == CONNECTOR_API_VERSION, (
            f"api_version is {cls.api_version}, this syncd speaks {CONNECTOR_API_VERSION}"
        )
        assert isinstance(cls.capabilities, Capabilities)
        assert cls.capabilities.batch_size >= 1, "capabilities.batch_size must be at least 1"
        assert cls.objects, "Connector.objects must list the object types the connector serves"
        assert harness.connector.object_type(self.object_name).name == self.object_name
        assert isinstance(harness.connector.config, cls.config_model)

    async def test_config_model_rejects_unknown_settings(self, harness: Harness) -> None:
        cls = type(harness.connector)
        assert issubclass(cls.config_model, ConnectorConfig), "config_model must subclass ConnectorConfig"
        valid = harness.connector.config.model_dump(by_alias=True)
        cls.config_model.model_validate(valid)
        with pytest.raises(pydantic.ValidationError):
            cls.config_model.model_validate({**valid, "surely_not_a_setting_x9": 1})

    async def test_check_succeeds_against_a_healthy_app(self, harness: Harness) -> None:
        await harness.connector.check()

    # -- listing and cursors -----------------------------------------------------------------------

    async def test_full_listing_of_an_empty_app_ends_with_a_complete_page(self, harness: Harness) -> None:
        self._require(harness, "full_listing")
        pages = await self._pages(harness, None)
        assert pages, "a full listing must yield at least one page, even when the app is empty"
        assert live_ids(pages) == set(), "a fresh app must list no records"
        assert pages[-1].complete, "the last page of a successful full listing must say complete=True"

    async def test_full_listing_returns_every_record_and_is_complete_only_on_its_last_page(
        self, harness: Harness
    ) -> None:
        self._require(harness, "full_listing")
        seeded = await self._seed(harness, range(3))
        pages = await self._pages(harness, None)
        assert set(seeded) <= live_ids(pages), f"missing from the listing: {set(seeded) - live_ids(pages)}"
        assert pages[-1].complete, "the last page of a full listing must say complete=True"
        early = [i for i, p in enumerate(pages[:-1]) if p.complete]
        assert not early, f"pages {early} claim complete=True before the listing ended"

    async def test_listing_spans_several_pages_when_records_exceed_the_page_size(
        self, harness: Harness
    ) -> None:
        self._require(harness, "full_listing")
        if harness.page_size is None:
            pytest.skip("the harness does not expose page_size")
        seeded = await self._seed(harness, range(2 * harness.page_size + 1))
        pages = await self._pages(harness, None)
        assert len([p for p in pages if p.records]) >= 3, (
            f"{len(seeded)} records with page_size {harness.page_size} came in {len(pages)} page(s)"
        )
        assert set(seeded) <= live_ids(pages), f"missing from the listing: {set(seeded) - live_ids(pages)}"
        assert pages[-1].complete
        assert not any(p.complete for p in pages[:-1]), "only the last page may say complete=True"

    async def test_resuming_from_any_page_cursor_skips_no_record(self, harness: Harness) -> None:
        self._require(harness, "full_listing")
        count = 2 * harness.page_size + 1 if harness.page_size else 5
        seeded = set(await self._seed(harness, range(count)))
        listing = await self._pages(harness, None)
        checked = await self._check_resumes(harness, listing, seeded, "full listing")
        if self._caps(harness).incremental:
            start = last_cursor(listing)
            assert start is not None, "the last page of a full listing must carry a cursor"
            for n, rid in enumerate(sorted(seeded)):
                await harness.edit(rid, nested(harness.mutable_path, harness.text_value(n)))
            await harness.settle()
            changes = await self._pages(harness, start)
            assert seeded <= live_ids(changes), (
                f"edits missing after the cursor: {seeded - live_ids(changes)}"
            )
            checked += await self._check_resumes(harness, changes, seeded, "incremental read")
        assert checked, "no page carried a cursor to resume from"

    async def _check_resumes(self, harness: Harness, pages: list[Page], expected: set[str], what: str) -> int:
        checked = 0
        for k, page in enumerate(pages):
            if page.cursor is None:
                continue
            before = set(record_ids(pages[: k + 1]))
            after = set(record_ids(await self._pages(harness, page.cursor)))
            skipped = expected - before - after
            assert not skipped, f"resuming the {what} from page {k}'s cursor skips {sorted(skipped)}"
            checked += 1
        return checked

    async def test_cursor_after_the_last_page_yields_no_new_records(self, harness: Harness) -> None:
        self._require(harness, "incremental")
        await self._seed(harness, range(3))
        listing = await self._pages(harness, None)
        seen = {r.id: r for p in listing for r in p.records}
        cursor = last_cursor(listing)
        assert cursor is not None, "the last page of a full listing must carry a cursor"
        for round_ in range(2):
            pages = await self._pages(harness, cursor)
            for record in (r for p in pages for r in p.records):
                assert record.id in seen, f"round {round_}: {record.id} appeared although nothing changed"
                assert not record.deleted, f"round {round_}: {record.id} reported deleted although it was not"
                assert self._comparable(harness, record.fields) == self._comparable(
                    harness, seen[record.id].fields
                ), f"round {round_}: the overlap copy of {record.id} differs from the listed one"
            cursor = last_cursor(pages, cursor)

    async def test_records_changed_after_a_cursor_appear_when_resuming(self, harness: Harness) -> None:
        self._require(harness, "incremental")
        first, second, _third = await self._seed(harness, range(3))
        cursor = last_cursor(await self._pages(harness, None))
        assert cursor is not None, "the last page of a full listing must carry a cursor"
        new_value = harness.text_value(1)
        await harness.edit(second, nested(harness.mutable_path, new_value))
        added = await harness.seed(harness.sample_fields(3))
        await harness.settle()
        pages = await self._pages(harness, cursor)
        edited = latest(pages, second)
        assert edited is not None, "a record edited after the cursor was not returned when resuming"
        assert get_path(edited.fields, harness.mutable_path) == new_value, (
            "the resumed read has the old value"
        )
        assert latest(pages, added) is not None, "a record created after the cursor was not returned"
        untouched = latest(pages, first)
        if untouched is not None:
            assert not untouched.deleted

    async def test_removed_record_comes_back_as_a_tombstone_after_a_cursor(self, harness: Harness) -> None:
        self._require(harness, "incremental")
        if not self._caps(harness).tombstones:
            pytest.skip("capabilities.tombstones is False: deletes are inferred from complete listings")
        gone, kept = await self._seed(harness, range(2))
        cursor = last_cursor(await self._pages(harness, None))
        await harness.remove(gone)
        await harness.settle()
        pages = await self._pages(harness, cursor)
        tombstone = latest(pages, gone)
        assert tombstone is not None, "a record removed after the cursor must come back as a tombstone"
        assert tombstone.deleted, "the removed record came back without deleted=True"
        still = latest(pages, kept)
        assert still is None or not still.deleted, "an untouched record was reported deleted"

    async def test_full_listing_does_not_return_a_removed_record_as_live(self, harness: Harness) -> None:
        self._require(harness, "full_listing")
        gone, kept = await self._seed(harness, range(2))
        await harness.remove(gone)
        await harness.settle()
        pages = await self._pages(harness, None)
        assert gone not in live_ids(pages), "a removed record is still listed as live"
        assert kept in live_ids(pages), "removing one record hid another"
        assert pages[-1].complete

    # -- id listing --------------------------------------------------------------------------------

    async def test_id_listing_names_exactly_the_records_of_a_full_listing(self, harness: Harness) -> None:
        self._require(harness, "id_listing")
        if not self._caps(harness).full_listing:
            pytest.skip("capabilities.full_listing is False: no listing to compare the id listing with")
        count = 2 * harness.page_size + 1 if harness.page_size else 5
        seeded = set(await self._seed(harness, range(count)))
        ids = await harness.connector.list_ids(self.object_name)
        assert all(isinstance(i, str) for i in ids), f"list_ids must return string ids, got {ids[:5]!r}"
        duplicates = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
        assert not duplicates, f"list_ids returned ids more than once: {duplicates}"
        listed = live_ids(await self._pages(harness, None))
        assert seeded <= listed, f"missing from the full listing: {sorted(seeded - listed)}"
        assert set(ids) == listed, (
            f"list_ids differs from the full listing: only in list_ids {sorted(set(ids) - listed)}, "
            f"only in the listing {sorted(listed - set(ids))}"
        )

    async def test_removed_record_disappears_from_the_id_listing(self, harness: Harness) -> None:
        self._require(harness, "id_listing")
        gone, kept = await self._seed(harness, range(2))
        before = await harness.connector.list_ids(self.object_name)
        assert {gone, kept} <= set(before), f"list_ids misses seeded records: {before}"
        await harness.remove(gone)
        await harness.settle()
        after = await harness.connector.list_ids(self.object_name)
        assert gone not in after, "a removed record is still in list_ids: its delete would go unnoticed"
        assert kept in after, "removing one record hid another from list_ids"

    async def test_records_never_name_themselves_as_replaced(self, harness: Harness) -> None:
        seeded = await self._seed(harness, range(2))
        records = await harness.connector.get(self.object_name, seeded)
        if self._caps(harness).full_listing:
            records += [r for p in await self._pages(harness, None) for r in p.records]
        for record in records:
            assert isinstance(record.replaces, tuple), f"{record.id}: replaces must be a tuple of ids"
            assert all(isinstance(i, str) and i for i in record.replaces), (
                f"{record.id}: replaces holds non-string or empty ids {record.replaces!r}"
            )
            assert record.id not in record.replaces, f"{record.id} names itself among the ids it replaced"

    # -- get and find ------------------------------------------------------------------------------

    async def test_get_returns_present_records_and_omits_missing_ids(self, harness: Harness) -> None:
        first, second = await self._seed(harness, range(2))
        missing = harness.missing_id()
        records = await harness.connector.get(self.object_name, [first, missing, second])
        assert sorted(r.id for r in records) == sorted([first, second]), (
            f"get([present, missing, present]) returned {[r.id for r in records]}"
        )
        for record, i in ((r, 0 if r.id == first else 1) for r in records):
            expected = get_path(harness.sample_fields(i), harness.natural_key_path)
            assert get_path(record.fields, harness.natural_key_path) == expected
        assert await harness.connector.get(self.object_name, [missing]) == []
        assert await harness.connector.get(self.object_name, []) == []

    async def test_find_matches_natural_key_case_insensitively_and_trimmed(self, harness: Harness) -> None:
        ids = await self._seed(harness, range(3))
        key = get_path(harness.sample_fields(1), harness.natural_key_path)
        assert isinstance(key, str), "sample_fields must put a string at natural_key_path"
        path = harness.natural_key_path
        found = await harness.connector.find(self.object_name, path, [f"  {key.upper()} \t"])
        assert [r.id for r in found] == [ids[1]], f"find({key.upper()!r} with spaces) returned {found}"
        other = get_path(harness.sample_fields(2), path)
        both = await harness.connector.find(self.object_name, path, [key, other])
        assert sorted(r.id for r in both) == sorted([ids[1], ids[2]])
        nobody = get_path(harness.sample_fields(99), path)
        assert await harness.connector.find(self.object_name, path, [nobody]) == []

    # -- writes ------------------------------------------------------------------------------------

    async def test_created_record_reads_back_with_the_written_fields(self, harness: Harness) -> None:
        self._require(harness, "create")
        sent = harness.sample_fields(0)
        written = await self._create(harness, sent, "create-0")
        self._assert_has_fields(written.fields, sent, "the created record as returned")
        read = await self._get_one(harness, written.id)
        assert read is not None, "get cannot find the record that create returned"
        self._assert_has_fields(read.fields, sent, "the created record as read back")

    async def test_update_returns_a_new_version_and_changes_only_the_sent_fields(
        self, harness: Harness
    ) -> None:
        self._require(harness, "update")
        (rid,) = await self._seed(harness, [0])
        before = await self._get_one(harness, rid)
        assert before is not None
        new_value = harness.text_value(7)
        (result,) = await self._write(
            "update",
            harness,
            [WriteItem(key="update-0", fields=nested(harness.mutable_path, new_value), id=rid)],
        )
        assert result.ok, f"update failed: {result.error!r}"
        assert result.record is not None, "a successful update must return the record as written"
        assert result.record.version is not None, "update must return the record's new version"
        assert result.record.version != before.version, "update returned the version the record had before"
        assert get_path(result.record.fields, harness.mutable_path) == new_value
        after = await self._get_one(harness, rid)
        assert after is not None
        assert get_path(after.fields, harness.mutable_path) == new_value, "the update did not stick"
        untouched_before = self._comparable(harness, before.fields)
        untouched_after = self._comparable(harness, after.fields)
        untouched_before.pop(harness.mutable_path, None)
        untouched_after.pop(harness.mutable_path, None)
        assert untouched_after == untouched_before, "update changed fields it was not given"
        if self._caps(harness).conditional_writes:
            assert after.version == result.record.version, (
                "a conditional-write connector must return the same version that a later read reports"
            )

    async def test_conditional_update_with_a_stale_version_is_refused(self, harness: Harness) -> None:
        self._require(harness, "update")
        self._require(harness, "conditional_writes")
        (rid,) = await self._seed(harness, [0])
        read = await self._get_one(harness, rid)
        assert read is not None
        assert read.version is not None, "conditional writes need a version on every record"
        human_value = harness.text_value(1)
        await harness.edit(rid, nested(harness.mutable_path, human_value))
        await harness.settle()
        item = WriteItem(
            key="stale-0",
            fields=nested(harness.mutable_path, harness.text_value(2)),
            id=rid,
            expected_version=read.version,
        )
        (result,) = await self._write("update", harness, [item])
        assert isinstance(result.error, PreconditionFailed), (
            f"an update against a stale version must fail with PreconditionFailed, got {result!r}"
        )
        now = await self._get_one(harness, rid)
        assert now is not None
        assert get_path(now.fields, harness.mutable_path) == human_value, "the stale update clobbered an edit"

    async def test_update_of_a_missing_record_reports_not_found_in_its_result(self, harness: Harness) -> None:
        self._require(harness, "update")
        item = WriteItem(key="ghost", fields=nested(harness.mutable_path, "x"), id=harness.missing_id())
        (result,) = await self._write("update", harness, [item])
        assert isinstance(result.error, NotFound), f"expected a NotFound result, got {result!r}"
        assert result.record is None

    async def test_deleted_record_is_absent_or_a_tombstone(self, harness: Harness) -> None:
        self._require(harness, "delete")
        gone, kept = await self._seed(harness, range(2))
        (result,) = await self._write("delete", harness, [WriteItem(key="delete-0", fields={}, id=gone)])
        assert result.ok, f"delete failed: {result.error!r}"
        remaining = await harness.connector.get(self.object_name, [gone, kept])
        assert all(r.deleted for r in remaining if r.id == gone), "a deleted record is still returned as live"
        assert [r.id for r in remaining if not r.deleted] == [kept], "delete removed the wrong record"
        (again,) = await self._write(
            "delete", harness, [WriteItem(key="delete-1", fields={}, id=harness.missing_id())]
        )
        assert again.ok or isinstance(again.error, NotFound), (
            f"deleting a missing record must succeed or report NotFound, got {again.error!r}"
        )

    async def test_writes_leave_other_records_untouched(self, harness: Harness) -> None:
        caps = self._caps(harness)
        if not (caps.create or caps.update or caps.delete):
            pytest.skip("the connector is read-only")
        ids = await self._seed(harness, range(4))
        bystanders = ids[2:]
        before = {r.id: r for r in await harness.connector.get(self.object_name, bystanders)}
        if caps.create:
            await self._create(harness, harness.sample_fields(10), "create-10")
        if caps.update:
            item = WriteItem(
                key="update-0", fields=nested(harness.mutable_path, harness.text_value(3)), id=ids[0]
            )
            (result,) = await self._write("update", harness, [item])
            assert result.ok, f"update failed: {result.error!r}"
        if caps.delete:
            (result,) = await self._write(
                "delete", harness, [WriteItem(key="delete-1", fields={}, id=ids[1])]
            )
            assert result.ok, f"delete failed: {result.error!r}"
        after = {r.id: r for r in await harness.connector.get(self.object_name, bystanders)}
        assert sorted(after) == sorted(bystanders), "a record nobody wrote to disappeared"
        for rid in bystanders:
            assert self._comparable(harness, after[rid].fields) == self._comparable(
                harness, before[rid].fields
            ), f"record {rid} changed although no write targeted it"

    async def test_unicode_text_round_trips_unchanged(self, harness: Harness) -> None:
        caps = self._caps(harness)
        text = harness.unicode_text()
        if caps.create:
            fields = with_path(harness.sample_fields(0), harness.mutable_path, text)
            rid = (await self._create(harness, fields, "unicode-0")).id
        else:
            (rid,) = await self._seed(harness, [0])
            await harness.edit(rid, nested(harness.mutable_path, text))
            await harness.settle()
        read = await self._get_one(harness, rid)
        assert read is not None
        assert get_path(read.fields, harness.mutable_path) == text, "unicode text came back altered"
        if caps.update:
            flipped = text[::-1]
            item = WriteItem(key="unicode-1", fields=nested(harness.mutable_path, flipped), id=rid)
            (result,) = await self._write("update", harness, [item])
            assert result.ok, f"update failed: {result.error!r}"
            read = await self._get_one(harness, rid)
            assert read is not None
            assert get_path(read.fields, harness.mutable_path) == flipped, (
                "updated unicode text came back altered"
            )

    async def test_one_invalid_item_fails_alone_without_failing_its_batch(self, harness: Harness) -> None:
        self._require(harness, "create")
        invalid = harness.invalid_fields()
        if invalid is None:
            pytest.skip("the harness has no invalid_fields() the app would reject")
        size = min(3, self._caps(harness).batch_size)
        items = [WriteItem(key="bad", fields=invalid)]
        if size >= 2:
            items.insert(0, WriteItem(key="good-0", fields=harness.sample_fields(0)))
        if size >= 3:
            items.append(WriteItem(key="good-1", fields=harness.sample_fields(1)))
        results = await self._write("create", harness, items)
        by_key = {r.key: r for r in results}
        assert isinstance(by_key["bad"].error, ConnectorError), "the invalid item must carry a ConnectorError"
        assert not isinstance(by_key["bad"].error, NotFound)
        for key in ("good-0", "good-1"):
            if key in by_key:
                record = by_key[key].record
                assert by_key[key].ok, (
                    f"a valid item failed because of its invalid neighbour: {by_key[key].error!r}"
                )
                assert record is not None
                assert await self._get_one(harness, record.id) is not None, f"{key} was not created"
        if size < 2:
            await self._create(harness, harness.sample_fields(0), "good-after")

    # -- transient failures ------------------------------------------------------------------------

    @pytest.mark.parametrize("kind", ["429", "500", "timeout"])
    async def test_transient_failure_is_retried_until_the_call_succeeds(
        self, harness: Harness, kind: FailureKind
    ) -> None:
        (rid,) = await self._seed(harness, [0])
        if not harness.inject(kind, 2):
            pytest.skip(f"the harness cannot inject {kind} failures")
        if self._caps(harness).full_listing:
            pages = await self._pages(harness, None)
            assert rid in live_ids(pages), f"the listing after injected {kind}s lost a record"
            assert pages[-1].complete
            assert harness.inject(kind, 2)
        record = await self._get_one(harness, rid)
        assert record is not None, f"get after injected {kind}s lost the record"
        if self._caps(harness).create:
            assert harness.inject(kind, 2)
            fields = harness.sample_fields(1)
            key = get_path(fields, harness.natural_key_path)
            written = await self._create_as_the_engine_does(harness, fields, key)
            matches = await harness.connector.find(self.object_name, harness.natural_key_path, [key])
            assert [r.id for r in matches] == [written.id], f"retrying a create after {kind} made duplicates"

    async def _create_as_the_engine_does(
        self, harness: Harness, fields: Mapping[str, Any], key: Any
    ) -> RemoteRecord:
        """Create a record as the engine would under faults: a create whose answer was lost
        (``OutcomeUnknown``: the connector must not send it again blindly) is retried by looking
        the key up first, and sent again only if the app does not have it."""
        for attempt in range(4):
            try:
                (result,) = await self._write(
                    "create", harness, [WriteItem(key=f"faults-{attempt}", fields=fields)]
                )
            except OutcomeUnknown:
                result = None
            if result is not None and result.ok:
                assert result.record is not None, "a successful create must return the record as written"
                return result.record
            if result is not None and not isinstance(result.error, OutcomeUnknown):
                raise AssertionError(f"create failed: {result.error!r}")
            found = await harness.connector.find(self.object_name, harness.natural_key_path, [key])
            if found:
                return found[0]
        raise AssertionError("a create under faults neither succeeded nor left its record after 4 attempts")

    # -- echo ----------------------------------------------------------------------------------------

    async def test_written_record_reads_back_identically_so_its_echo_is_recognised(
        self, harness: Harness
    ) -> None:
        self._require(harness, "create")
        listing = await self._pages(harness, None) if self._caps(harness).full_listing else []
        cursor = last_cursor(listing)
        sent = harness.sample_fields(0)
        written = await self._create(harness, sent, "echo-0")
        echoes: list[RemoteRecord] = []
        if cursor is not None and self._caps(harness).incremental:
            changes = await self._pages(harness, cursor)
            echo = latest(changes, written.id)
            assert echo is not None, "a record we created did not come back from read_changes(cursor)"
            echoes.append(echo)
            cursor = last_cursor(changes, cursor)
        if self._caps(harness).full_listing:
            echo = latest(await self._pages(harness, None), written.id)
            assert echo is not None, "a record we created is missing from the full listing"
            echoes.append(echo)
        for echo in echoes:
            for path in leaves(sent):
                assert get_path(echo.fields, path) == get_path(written.fields, path), (
                    f"the echo of our write differs at {path!r}: "
                    f"{get_path(echo.fields, path)!r} vs {get_path(written.fields, path)!r} as written"
                )
        if self._caps(harness).update and cursor is not None and self._caps(harness).incremental:
            new_value = harness.text_value(5)
            item = WriteItem(key="echo-1", fields=nested(harness.mutable_path, new_value), id=written.id)
            (result,) = await self._write("update", harness, [item])
            assert result.ok, f"update failed: {result.error!r}"
            assert result.record is not None
            echo = latest(await self._pages(harness, cursor), written.id)
            assert echo is not None, "a record we updated did not come back from read_changes(cursor)"
            assert get_path(echo.fields, harness.mutable_path) == get_path(
                result.record.fields, harness.mutable_path
            )

    # -- webhooks ------------------------------------------------------------------------------------

    async def test_valid_webhook_is_accepted_and_names_the_record(self, harness: Harness) -> None:
        rid, body = await self._webhook_target(harness)
        method, url, headers, raw = self._signed(harness, body)
        # The daemon asks first, before reading the body: an authentic delivery passes both.
        harness.connector.verify_webhook_request(method, url, headers)
        harness.connector.verify_webhook(method, url, headers, raw)
        hints = harness.connector.parse_webhook(headers, raw)
        assert hints, "a verified webhook about a record must yield at least one hint"
        assert any(h.record_id == rid and h.object == self.object_name for h in hints), (
            f"no hint names {self.object_name} {rid}: {hints}"
        )
        assert all(h.event_id for h in hints), "every hint needs an event_id to de-duplicate deliveries"

    async def test_webhook_with_a_tampered_body_is_rejected(self, harness: Harness) -> None:
        _rid, body = await self._webhook_target(harness)
        method, url, headers, raw = self._signed(harness, body)
        if not harness.webhook_signs_body:
            pytest.skip("the app's webhook authentication does not cover the body")
        with pytest.raises(WebhookVerificationError):
            harness.connector.verify_webhook(method, url, headers, raw + b" ")

    async def test_webhook_signed_with_a_wrong_secret_is_rejected(self, harness: Harness) -> None:
        _rid, body = await self._webhook_target(harness)
        method, url, headers, raw = self._signed(harness, body, secret="conformance-wrong-secret")
        with pytest.raises(WebhookVerificationError):
            harness.connector.verify_webhook(method, url, headers, raw)

    async def test_webhook_with_a_stale_timestamp_is_rejected(self, harness: Harness) -> None:
        _rid, body = await self._webhook_target(harness)
        if not harness.webhook_timestamped:
            pytest.skip("the app's webhooks carry no signed timestamp")
        for offset in (-3600.0, 3600.0):
            method, url, headers, raw = self._signed(harness, body, timestamp=time.time() + offset)
            with pytest.raises(WebhookVerificationError):
                harness.connector.verify_webhook(method, url, headers, raw)

    async def test_duplicate_webhook_delivery_yields_the_same_event_id(self, harness: Harness) -> None:
        rid, body = await self._webhook_target(harness)
        events = []
        for _ in range(2):
            method, url, headers, raw = self._signed(harness, body)
            harness.connector.verify_webhook(method, url, headers, raw)
            events.append([h.event_id for h in harness.connector.parse_webhook(headers, raw)])
        assert events[0], "the webhook yielded no hint"
        assert events[0] == events[1], f"two deliveries of one event got different event ids: {events}"
        other = harness.webhook_body(rid, event_id="evt-conformance-2")
        if other != body:
            method, url, headers, raw = self._signed(harness, other)
            harness.connector.verify_webhook(method, url, headers, raw)
            ids = [h.event_id for h in harness.connector.parse_webhook(headers, raw)]
            assert set(ids).isdisjoint(events[0]), "two different events share an event id"


__all__ = [
    "MISSING",
    "ConnectorConformance",
    "FailureKind",
    "FaultInjectingTransport",
    "Harness",
    "SignedRequest",
    "get_path",
    "last_cursor",
    "latest",
    "leaves",
    "live_ids",
    "nested",
    "read_pages",
    "record_ids",
    "with_path",
]
