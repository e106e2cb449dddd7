"""Reads: newest-first paging, resumable listings, the events feed, tombstones, the 30-day fallback."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from syncd.connector import ConfigError, Page
from syncd.testing.conformance import read_pages
from syncd_stripe import EVENTS_RETENTION_SECONDS, StripeConnector

from .conftest import ConnectorFactory, LocalStripe
from .edge import StripeEdge

DAY = 86400


async def _seed(server: LocalStripe, n: int, prefix: str = "c") -> list[str]:
    return [
        str((await server.call("POST", "/v1/customers", {"email": f"{prefix}{i}@lovelace.io"}))["id"])
        for i in range(n)
    ]


def _ids(pages: list[Page]) -> list[str]:
    return [r.id for p in pages for r in p.records]


async def test_a_newest_first_listing_pages_through_every_customer_exactly_once(
    edge: StripeEdge, localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    ids = await _seed(localstripe, 7)
    pages = await read_pages(make_connector(edge.url, page_size=3), "customers", None)
    assert _ids(pages) == list(reversed(ids)), "Stripe lists newest first; every customer once"
    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert [p.complete for p in pages] == [False, False, True]
    assert [p.cursor.get("after") if p.cursor else None for p in pages] == [ids[4], ids[1], None]


async def test_a_customer_created_during_a_listing_is_read_by_the_next_incremental_read(
    edge: StripeEdge, localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    await _seed(localstripe, 5)
    connector = make_connector(edge.url, page_size=2)
    pages: list[Page] = []
    late = ""
    async for page in connector.read_changes("customers", None):
        pages.append(page)
        if len(pages) == 1:
            late = (await localstripe.call("POST", "/v1/customers", {"email": "late@lovelace.io"}))["id"]
    assert late not in _ids(pages), (
        "newest first: a customer made mid-listing lands before the pages still to come"
    )
    cursor = pages[-1].cursor
    assert cursor is not None
    assert set(cursor) == {"since"}
    changes = await read_pages(connector, "customers", cursor)
    assert late in _ids(changes)


async def test_an_interrupted_listing_resumes_at_the_next_page_and_is_not_complete(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    ids = await _seed(localstripe, 5)
    connector = make_connector(localstripe.url, page_size=2)
    pages = connector.read_changes("customers", None)
    first = await anext(pages)
    await pages.aclose()  # the read stops after its first page, as if the daemon stopped
    assert first.cursor is not None
    assert "after" in first.cursor
    rest = await read_pages(connector, "customers", first.cursor)
    assert sorted(_ids([first]) + _ids(rest)) == sorted(ids)
    assert not any(p.complete for p in rest), "a resumed listing cannot prove what is missing"
    assert rest[-1].cursor == {"since": first.cursor["since"]}


async def test_resuming_after_a_customer_stripe_no_longer_pages_from_lists_again_from_the_start(
    edge: StripeEdge, localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    ids = await _seed(localstripe, 3)
    connector = make_connector(edge.url, page_size=2)
    with capture_logs() as logs:
        pages = await read_pages(
            connector, "customers", {"since": int(time.time()), "after": "cus_DeletedMeanwhile"}
        )
    assert sorted(_ids(pages)) == sorted(ids)
    assert pages[-1].complete
    assert any("listing again from the start" in e["event"] for e in logs)


async def test_deleted_customers_come_back_from_the_events_feed_as_tombstones(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    gone, kept = await _seed(localstripe, 2)
    connector = make_connector(localstripe.url)
    cursor = (await read_pages(connector, "customers", None))[-1].cursor
    await localstripe.call("DELETE", f"/v1/customers/{gone}")
    await localstripe.call("POST", f"/v1/customers/{kept}", {"name": "Still here"})
    records = {r.id: r for p in await read_pages(connector, "customers", cursor) for r in p.records}
    assert records[gone].deleted
    assert records[gone].fields == {}
    assert not records[kept].deleted
    assert records[kept].fields["name"] == "Still here"


@respx.mock
async def test_a_deleted_customer_stub_from_get_is_a_tombstone(make_connector: ConnectorFactory) -> None:
    # Stripe answers a deleted customer's id with a stub; localstripe answers 404.
    respx.get("https://api.stripe.test/v1/customers/cus_Gone").mock(
        return_value=httpx.Response(200, json={"id": "cus_Gone", "object": "customer", "deleted": True})
    )
    (record,) = await make_connector("https://api.stripe.test").get("customers", ["cus_Gone"])
    assert record.deleted
    assert record.id == "cus_Gone"


async def test_an_incremental_read_after_a_subscription_starts_shows_its_status(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    customer = await localstripe.call("POST", "/v1/customers", {"email": "sub@lovelace.io"})
    connector = make_connector(localstripe.url)
    cursor = (await read_pages(connector, "customers", None))[-1].cursor
    plan = await localstripe.call(
        "POST",
        "/v1/plans",
        {"amount": 0, "currency": "usd", "interval": "month", "product": {"name": "Free"}},
    )
    await localstripe.call(
        "POST", "/v1/subscriptions", {"customer": customer["id"], "items": [{"plan": plan["id"]}]}
    )
    pages = await read_pages(connector, "customers", cursor)
    (record,) = [r for p in pages for r in p.records if r.id == customer["id"]]
    assert record.fields["billing"]["status"] == "active"


@respx.mock
async def test_a_subscription_event_alone_brings_its_customer_back(make_connector: ConnectorFactory) -> None:
    empty = {"object": "list", "has_more": False, "data": []}
    event = {
        "id": "evt_S",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": 1_800_000_100,
        "data": {
            "object": {"id": "sub_1", "object": "subscription", "customer": "cus_S", "status": "past_due"}
        },
    }
    # respx tries routes in the order they were added: the specific one first.
    respx.get("https://api.stripe.test/v1/events", params={"type": "customer.subscription.updated"}).mock(
        return_value=httpx.Response(200, json={**empty, "data": [event]})
    )
    events = respx.get("https://api.stripe.test/v1/events").mock(return_value=httpx.Response(200, json=empty))
    respx.get("https://api.stripe.test/v1/customers/cus_S").mock(
        return_value=httpx.Response(200, json={"id": "cus_S", "object": "customer", "email": "s@lovelace.io"})
    )
    respx.get("https://api.stripe.test/v1/subscriptions").mock(
        return_value=httpx.Response(200, json={**empty, "data": [event["data"]["object"]]})
    )
    respx.get("https://api.stripe.test/v1/invoices").mock(return_value=httpx.Response(200, json=empty))
    connector = make_connector("https://api.stripe.test", now=lambda: 1_800_000_200.0)
    pages = await read_pages(connector, "customers", {"since": 1_800_000_000})
    (record,) = [r for p in pages for r in p.records]
    assert record.id == "cus_S"
    assert record.fields["billing"]["status"] == "past_due"
    asked = {c.request.url.params["type"] for c in respx.calls if c.request.url.path == "/v1/events"}
    assert {
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.subscription.updated",
        "invoice.paid",
    } <= asked
    assert events.calls
    assert all(
        c.request.url.params["created[gte]"] == str(1_800_000_000 - 60)
        for c in respx.calls
        if c.request.url.path == "/v1/events"
    )


async def test_incremental_pages_carry_cursors_that_resume_without_skipping(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    ids = await _seed(localstripe, 5)
    connector = make_connector(localstripe.url, page_size=2)
    start = {"since": int(time.time()) - 30}
    pages = await read_pages(connector, "customers", start)
    assert sorted(_ids(pages)) == sorted(ids)
    assert [len(p.records) for p in pages] == [2, 2, 1]
    for k, page in enumerate(pages[:-1]):
        assert page.cursor is not None
        resumed = set(_ids(await read_pages(connector, "customers", page.cursor)))
        assert set(ids) - set(_ids(pages[: k + 1])) <= resumed, f"resuming after page {k} skips customers"


async def test_a_cursor_older_than_the_30_day_events_window_falls_back_to_a_complete_listing(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    ids = await _seed(localstripe, 3)
    connector = make_connector(localstripe.url)
    old = {"since": int(time.time()) - EVENTS_RETENTION_SECONDS - DAY}
    with capture_logs() as logs:
        pages = await read_pages(connector, "customers", old)
    assert sorted(_ids(pages)) == sorted(ids)
    assert pages[-1].complete, "the fallback is a full listing: deletes it reveals may be inferred"
    (warning,) = [e for e in logs if "30-day events window" in e["event"]]
    assert warning["log_level"] == "warning"
    assert warning["age_days"] >= 31
    assert pages[-1].cursor is not None
    assert pages[-1].cursor["since"] > old["since"]


@pytest.mark.parametrize("age_days", [28, 29])
async def test_a_cursor_inside_the_events_window_reads_events_not_a_listing(
    edge: StripeEdge, localstripe: LocalStripe, make_connector: ConnectorFactory, age_days: int
) -> None:
    await _seed(localstripe, 2)
    connector = make_connector(edge.url)
    with capture_logs() as logs:
        pages = await read_pages(connector, "customers", {"since": int(time.time()) - age_days * DAY})
    assert not any(p.complete for p in pages)
    assert not [e for e in logs if "30-day" in e["event"]]
    paths = {path for _, path, _ in edge.requests}
    assert "/v1/events" in paths
    assert "/v1/customers" not in paths


@pytest.mark.parametrize(
    "cursor",
    [{}, {"since": "yesterday"}, {"since": True}, {"since": 1, "after": 7}, {"since": 1, "after": "in_1"}],
)
async def test_an_unreadable_cursor_is_a_config_error(
    make_connector: ConnectorFactory, cursor: dict[str, Any]
) -> None:
    connector: StripeConnector = make_connector("http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="cursor"):
        await read_pages(connector, "customers", cursor)


def _dated(body: dict[str, Any], when: str) -> httpx.Response:
    return httpx.Response(200, json=body, headers={"Date": when})


@respx.mock
async def test_a_listings_cursor_starts_at_stripes_clock_when_the_read_began(
    make_connector: ConnectorFactory,
) -> None:
    # The local clock is far off, and the billing walk takes a while before the customers page:
    # the cursor is the server's time at the read's first request, so nothing after it is missed.
    empty = {"object": "list", "has_more": False, "data": []}
    customer = {"id": "cus_1", "object": "customer", "email": "a@lovelace.io", "created": 1}
    respx.get("https://api.stripe.test/v1/subscriptions").mock(
        return_value=_dated(empty, "Thu, 15 Jan 2026 10:00:00 GMT")
    )
    respx.get("https://api.stripe.test/v1/invoices").mock(
        return_value=_dated(empty, "Thu, 15 Jan 2026 10:05:00 GMT")
    )
    respx.get("https://api.stripe.test/v1/customers").mock(
        return_value=_dated({**empty, "data": [customer]}, "Thu, 15 Jan 2026 10:09:00 GMT")
    )
    connector = make_connector("https://api.stripe.test", now=lambda: 1_000_000_000.0)
    pages = await read_pages(connector, "customers", None)
    assert pages[-1].cursor == {"since": 1_768_471_200}  # 2026-01-15T10:00:00Z
