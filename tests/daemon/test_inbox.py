"""Webhook inbox: durable dedupe, coalescing per record, retries and pauses (HubSpot API mocked by respx)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from syncd.connector import WebhookHint
from syncd.connector.http import RetryPolicy
from syncd.daemon.inbox import Inbox, InboxWorker, coalesce
from syncd.mapping import load_mapping
from syncd.runner import Runner
from syncd.store import AsyncStore
from syncd_hubspot import HubSpotConfig, HubSpotConnector
from syncd_sql import SqlConnector

from .harness import CRM_MAPPING, SqlTable, sql_app

BASE = "https://hubspot.test"
READ = "/crm/v3/objects/contacts/batch/read"


async def _no_sleep(_seconds: float) -> None:
    """Connector retries happen at once; the worker's own retry is what these tests watch."""


def contact(rid: str, name: str) -> dict[str, Any]:
    return {
        "id": rid,
        "properties": {"email": f"c{rid}@example.com", "firstname": name, "hs_object_id": rid},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-02T00:00:00.000Z",
        "archived": False,
    }


def batch_reply(request: httpx.Request) -> httpx.Response:
    ids = [item["id"] for item in json.loads(request.content)["inputs"]]
    return httpx.Response(200, json={"status": "COMPLETE", "results": [contact(i, f"Name {i}") for i in ids]})


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[Runner]:
    product = SqlTable.create(tmp_path / "product.db")
    path = tmp_path / "contacts.toml"
    path.write_text(textwrap.dedent(CRM_MAPPING))
    mapping = load_mapping(path, known_apps=["crm", "product"])
    config = HubSpotConfig.model_validate(
        {
            "base_url": BASE,
            "token": "t0ken-for-tests",
            "properties": ["email", "firstname"],
            "entity_id_property": None,
        }
    )
    crm = HubSpotConnector(config, app="crm", retry=RetryPolicy(attempts=1, jitter=0), sleep=_no_sleep)
    sql = SqlConnector.from_settings(sql_app(product, 60)["settings"], app="product")
    store = await AsyncStore(tmp_path / "state.db").open()
    yield Runner(store, [mapping], {"crm": crm, "product": sql})
    await store.close()
    await crm.aclose()
    await sql.aclose()


def hint(event: str, rid: str) -> WebhookHint:
    return WebhookHint(event_id=event, object="contacts", record_id=rid)


def read_ids(route: respx.Route) -> list[list[str]]:
    return [[i["id"] for i in json.loads(call.request.content)["inputs"]] for call in route.calls]


def test_coalesce_keeps_one_hint_per_record_and_the_newest_event() -> None:
    rows = [
        {"app": "crm", "event_id": "e1", "object": "contacts", "record_id": "1", "deleted": 0},
        {"app": "crm", "event_id": "e2", "object": "contacts", "record_id": "2", "deleted": 0},
        {"app": "crm", "event_id": "e3", "object": "contacts", "record_id": "1", "deleted": 1},
        {"app": "mc", "event_id": "e4", "object": "members", "record_id": "1", "deleted": 0},
    ]
    out = coalesce(rows)
    assert [(h.record_id, h.event_id, h.deleted) for h in out["crm"]] == [
        ("1", "e3", True),
        ("2", "e2", False),
    ]
    assert [h.event_id for h in out["mc"]] == ["e4"]


async def test_many_events_about_one_record_become_one_reread(runner: Runner, api: respx.MockRouter) -> None:
    route = api.post(READ).mock(side_effect=batch_reply)
    inbox = Inbox(runner.store)
    assert await inbox.accept("crm", [hint("e1", "101"), hint("e2", "102"), hint("e3", "101")]) == 3
    assert await inbox.accept("crm", [hint("e4", "101"), hint("e5", "102")]) == 2
    worker = InboxWorker(inbox, runner)
    assert await worker.process_once() == (5, False)
    assert read_ids(route) == [["101", "102"]]
    assert await inbox.pending() == []
    assert (
        await runner.store.call(lambda s: s.outbox_depth()) == 2
    )  # one create in the product table per contact


async def test_redelivered_event_is_stored_once_and_acted_on_once(
    runner: Runner, api: respx.MockRouter
) -> None:
    route = api.post(READ).mock(side_effect=batch_reply)
    inbox = Inbox(runner.store)
    worker = InboxWorker(inbox, runner)
    assert await inbox.accept("crm", [hint("e1", "101")]) == 1
    assert await worker.process_once() == (1, False)
    assert await inbox.accept("crm", [hint("e1", "101")]) == 0  # the sender retried a delivery we answered
    assert await worker.process_once() == (0, False)
    assert len(route.calls) == 1


async def test_failed_reread_keeps_the_events_until_a_retry_succeeds(
    runner: Runner, api: respx.MockRouter
) -> None:
    replies: list[Any] = [httpx.Response(503, json={"message": "down"}), batch_reply]
    route = api.post(READ).mock(side_effect=replies)
    inbox = Inbox(runner.store)
    await inbox.accept("crm", [hint("e1", "101"), hint("e2", "101")])
    worker = InboxWorker(inbox, runner, retry_delays=(0.0, 0.0))
    assert await worker.process_once() == (0, True)
    assert len(await inbox.pending()) == 2
    assert await worker.process_once() == (2, False)
    assert await inbox.pending() == []
    assert len(route.calls) == 2


async def test_rejected_credentials_pause_the_app_and_keep_its_events(
    runner: Runner, api: respx.MockRouter
) -> None:
    route = api.post(READ).mock(return_value=httpx.Response(401, json={"message": "bad token"}))
    inbox = Inbox(runner.store)
    await inbox.accept("crm", [hint("e1", "101")])
    worker = InboxWorker(inbox, runner)
    assert await worker.process_once() == (0, True)
    assert runner.paused == {"crm"}
    assert await worker.process_once() == (0, False)  # a paused app's events wait, untouched
    assert len(route.calls) == 1
    assert len(await runner.store.call(lambda s: s.inbox_pending())) == 1


async def test_processed_events_are_pruned_after_retention_and_pending_ones_never(runner: Runner) -> None:
    inbox = Inbox(runner.store)
    await inbox.accept("crm", [hint("old", "1"), hint("open", "2")])
    rows = await inbox.pending()
    await inbox.done([rows[0]["id"]])
    assert await runner.store.call(lambda s: s.prune_inbox("9999-01-01T00:00:00Z")) == 1
    assert [r["event_id"] for r in await inbox.pending()] == ["open"]


async def test_event_whose_reread_keeps_failing_is_quarantined_and_blocks_nothing(
    runner: Runner, api: respx.MockRouter
) -> None:
    """One contact HubSpot cannot return (a 400 for its id) must not hold up the other events of
    its app, nor, past a full batch of them, the events of other apps."""

    def reply(request: httpx.Request) -> httpx.Response:
        ids = [item["id"] for item in json.loads(request.content)["inputs"]]
        if "666" in ids:
            return httpx.Response(400, json={"message": "this record cannot be read"})
        return batch_reply(request)

    api.post(READ).mock(side_effect=reply)
    inbox = Inbox(runner.store)
    await inbox.accept("crm", [hint("bad-1", "666"), hint("good-1", "101"), hint("good-2", "102")])
    worker = InboxWorker(inbox, runner, batch=2, retry_delays=(0.0, 0.0), max_attempts=3)
    settled = 0
    for _ in range(6):
        done, _failed = await worker.process_once()
        settled += done
    assert settled == 2  # both good events, although the bad one came first in a batch of two
    assert await inbox.pending() == []
    letters = await runner.store.call(lambda s: s.dead_letters())
    assert [(d.app, d.op, d.remote_id) for d in letters] == [("crm", "read", "666")]
    assert "cannot be read" in (letters[0].last_error or "")
    assert runner.stats.apps["crm"].quarantined == 1


async def test_backed_off_events_do_not_hide_due_ones(runner: Runner, api: respx.MockRouter) -> None:
    api.post(READ).mock(return_value=httpx.Response(503, json={"message": "down"}))
    inbox = Inbox(runner.store)
    await inbox.accept("crm", [hint(f"e{i}", str(100 + i)) for i in range(3)])
    await inbox.accept("product", [WebhookHint(event_id="p1", object="users", record_id="1")])
    worker = InboxWorker(inbox, runner, batch=3, retry_delays=(60.0, 60.0))
    await worker.process_once()
    # crm's events wait out their back-off; the product event behind them is due now.
    assert [r["event_id"] for r in await inbox.pending()] == ["p1"]


def property_change(rid: str, name: str, event_id: int) -> bytes:
    """A HubSpot delivery: ``firstname`` of contact ``rid`` became ``name`` after the read copy."""
    return json.dumps(
        [
            {
                "eventId": event_id,
                "subscriptionId": 7,
                "portalId": 62515,
                "occurredAt": 1_900_000_000_000,  # later than the contacts' updatedAt
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": int(rid),
                "propertyName": "firstname",
                "propertyValue": name,
            }
        ]
    ).encode()


async def _linked(runner: Runner, inbox: Inbox, ids: list[str]) -> None:
    """Contacts read in full by the connector and written to the product table."""
    await inbox.accept("crm", [hint(f"seed-{i}", i) for i in ids])
    assert await InboxWorker(inbox, runner).process_once() == (len(ids), False)
    await runner.drain(max_wait=0.0)


def _product_names(tmp_path: Path) -> dict[str, str]:
    return SqlTable(tmp_path / "product.db").names()  # the runner fixture's product table


async def test_events_that_tell_the_new_values_are_applied_in_one_store_round_trip(
    runner: Runner, api: respx.MockRouter, tmp_path: Path
) -> None:
    route = api.post(READ).mock(side_effect=batch_reply)
    inbox = Inbox(runner.store)
    await _linked(runner, inbox, ["101", "102", "103"])
    reads = len(route.calls)
    crm = runner.connectors["crm"]
    for n, rid in enumerate(["101", "102", "103"]):
        await inbox.accept("crm", crm.parse_webhook({}, property_change(rid, f"Edited {rid}", 10 + n)))
    calls = 0
    real_call = runner.store.call

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await real_call(fn, *args, **kwargs)

    runner.store.call = counted  # type: ignore[method-assign]
    try:
        assert await InboxWorker(inbox, runner).process_once() == (3, False)
    finally:
        runner.store.call = real_call  # type: ignore[method-assign]
    # One to fetch the pending events; one to merge, plan and mark all three processed.
    assert calls == 2
    assert len(route.calls) == reads, "the events told the values: no re-read"
    assert await inbox.pending() == []
    await runner.drain(max_wait=0.0)
    assert _product_names(tmp_path) == {f"c{i}@example.com": f"Edited {i}" for i in ("101", "102", "103")}


async def test_a_failure_in_the_one_unit_batch_loses_nothing_the_per_app_path_applies_the_events(
    runner: Runner, api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api.post(READ).mock(side_effect=batch_reply)
    inbox = Inbox(runner.store)
    await _linked(runner, inbox, ["101", "102"])
    crm = runner.connectors["crm"]
    await inbox.accept("crm", crm.parse_webhook({}, property_change("101", "Late", 20)))
    await inbox.accept("crm", crm.parse_webhook({}, property_change("102", "Later", 21)))

    def broken(store: object) -> int:
        raise RuntimeError("planning failed half-way")

    # The unit fails after merging: its transaction (merge and processed marks) is rolled back.
    monkeypatch.setattr(runner.planner, "plan_in", broken)
    assert await InboxWorker(inbox, runner).process_once() == (2, False)
    assert await inbox.pending() == []
    await runner.drain(max_wait=0.0)
    assert _product_names(tmp_path) == {"c101@example.com": "Late", "c102@example.com": "Later"}
