"""HubSpotConnector writes: batching, 207 partial failures, 409 adoption, deletes, retries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.connector import (
    AuthError,
    NotFound,
    OutcomeUnknown,
    PermanentError,
    PreconditionFailed,
    RateLimited,
    TransientError,
    WriteItem,
)
from syncd.connector.http import RetryPolicy
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.hubspot import HubSpotFake
from syncd_hubspot import HubSpotConfig, HubSpotConnector
from syncd_hubspot._client import classify
from syncd_hubspot._connector import ten_second_budget
from tests.connector.fake_clock import FakeClock as MonotonicClock

from .conftest import make_connector

BATCH_CREATE = "/crm/v3/objects/contacts/batch/create"
BATCH_UPSERT = "/crm/v3/objects/contacts/batch/upsert"
BATCH_READ = "/crm/v3/objects/contacts/batch/read"


def contact(key: str, email: str, **props: Any) -> WriteItem:
    return WriteItem(key=key, fields={"properties": {"email": email, **props}})


def posts(fake: HubSpotFake, path: str) -> list[dict[str, Any]]:
    return [c.json() for c in fake.captured if c.method == "POST" and c.path == path]


# -- create ---------------------------------------------------------------------------------------------


async def test_create_sends_batches_of_at_most_one_hundred_and_answers_every_item_in_order(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    items = [contact(f"k{i}", f"p{i}@example.com", firstname=f"P{i}") for i in range(150)]
    results = await connector.create("contacts", items)
    assert [r.key for r in results] == [i.key for i in items]
    assert all(r.ok and r.record is not None for r in results)
    assert [r.record.fields["properties"]["email"] for r in results if r.record] == [
        f"p{i}@example.com" for i in range(150)
    ]
    assert len({r.record.id for r in results if r.record}) == 150
    assert [len(body["inputs"]) for body in posts(fake, BATCH_UPSERT)] == [100, 50]
    assert posts(fake, BATCH_CREATE) == posts(fake, BATCH_READ) == [], "no lookup before a create"
    first = results[0].record
    assert first is not None
    assert first.version is not None
    assert first.updated_at is not None


async def test_created_record_reports_what_was_written_and_no_invented_nulls(
    connector: HubSpotConnector,
) -> None:
    (result,) = await connector.create("contacts", [contact("k", "Ada@Example.com", firstname="Ada")])
    assert result.record is not None
    props = result.record.fields["properties"]
    assert props["email"] == "ada@example.com", "the record as HubSpot stored it (lowercased)"
    assert props["firstname"] == "Ada"
    assert "phone" not in props, "an unwritten property is not reported as cleared"


async def test_results_without_trace_ids_in_another_order_are_matched_by_email_not_position(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    fake.echo_write_trace_ids = False
    fake.reverse_batch_results = True
    items = [contact(f"k{i}", f"p{i}@example.com") for i in range(3)]
    results = await connector.create("contacts", items)
    for i, result in enumerate(results):
        assert result.record is not None
        assert result.record.fields["properties"]["email"] == f"p{i}@example.com"
    (record,) = await connector.get("contacts", [results[0].record.id])  # type: ignore[union-attr]
    updates = [
        WriteItem(f"u{i}", {"properties": {"firstname": f"F{i}"}}, id=r.record.id)
        for i, r in enumerate(results)
        if r.record
    ]
    updated = await connector.update("contacts", updates)
    assert [r.record.id for r in updated if r.record] == [r.record.id for r in results if r.record]
    assert record.fields["properties"]["email"] == "p0@example.com"


async def test_create_of_an_existing_email_adopts_the_existing_contact_instead_of_duplicating(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    ada = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
    items = [
        contact("new-1", "one@example.com"),
        contact("ada", " ADA@example.com ", lastname="Lovelace"),
        contact("new-2", "two@example.com"),
    ]
    results = await connector.create("contacts", items)
    assert all(r.ok for r in results)
    assert results[1].record is not None
    assert results[1].record.id == ada
    assert results[1].record.fields["properties"]["lastname"] == "Lovelace"
    assert fake.record(ada)["properties"]["firstname"] == "Ada", "what the create did not name is kept"
    assert len(fake.live_ids()) == 3
    assert {r.record.id for r in results if r.record} == set(fake.live_ids())
    assert len(posts(fake, BATCH_UPSERT)) == 1, "one upsert, no lookup, no 409 round trip"


async def test_a_create_whose_answer_was_lost_is_not_sent_again_and_its_contact_is_found_by_email(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    # The upsert took effect but its answer was lost. Sending it again would overwrite any edit
    # made since (an upsert is an update for an existing contact): the connector reports the
    # outcome as unknown and leaves the retry to the engine, which looks the email up first.
    fake.lose_responses(1, BATCH_UPSERT)
    try:
        (result,) = await connector.create("contacts", [contact("k", "lost@example.com", firstname="Ada")])
        error = result.error
    except OutcomeUnknown as exc:
        error = exc
    assert isinstance(error, OutcomeUnknown)
    assert len(posts(fake, BATCH_UPSERT)) == 1, "a create whose answer was lost was sent again"
    [made] = fake.live_ids()
    fake.edit(made, {"firstname": "Ada (edited)"})
    [found] = await connector.find("contacts", "properties.email", ["lost@example.com"])
    assert found.id == made
    assert found.fields["properties"]["firstname"] == "Ada (edited)"


async def test_the_same_email_twice_in_one_create_goes_in_two_upserts_and_makes_one_contact(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    items = [contact("a", "ada@example.com", firstname="Ada"), contact("b", "ADA@example.com", lastname="L")]
    results = await connector.create("contacts", items)
    assert [r.ok for r in results] == [True, True]
    assert len(fake.live_ids()) == 1
    assert [len(body["inputs"]) for body in posts(fake, BATCH_UPSERT)] == [1, 1]


async def test_a_contact_without_an_email_is_created_not_upserted(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    items = [contact("a", "ada@example.com"), WriteItem("b", {"properties": {"firstname": "Nobody"}})]
    results = await connector.create("contacts", items)
    assert [r.ok for r in results] == [True, True]
    assert [len(body["inputs"]) for body in posts(fake, BATCH_UPSERT)] == [1]
    assert [len(body["inputs"]) for body in posts(fake, BATCH_CREATE)] == [1]


def test_creates_are_upserts_by_key_only_when_every_object_type_has_a_unique_key() -> None:
    def upserts(objects: list[str]) -> bool:
        settings = {"base_url": "http://127.0.0.1:9", "token": "t", "client_secret": "s", "objects": objects}
        return HubSpotConnector(HubSpotConfig.model_validate(settings)).capabilities.upsert_by_key

    assert upserts(["contacts"]) is True
    assert upserts(["contacts", "companies"]) is False, "companies have no unique key to upsert by"


async def test_one_invalid_value_in_a_batch_fails_only_its_item(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    items = [
        contact("good-1", "a@example.com"),
        contact("bad", "not-an-email"),
        contact("good-2", "b@example.com"),
    ]
    results = await connector.create("contacts", items)
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, PermanentError)
    assert "INVALID_EMAIL" in str(results[1].error)
    assert len(posts(fake, BATCH_UPSERT)) == 1, "a 207 answers every item in one request"


async def test_a_batch_rejected_as_a_whole_is_split_until_the_bad_item_stands_alone(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    items = [contact(f"k{i}", f"p{i}@example.com") for i in range(8)]
    items[5] = contact("k5", "p5@example.com", shoe_size="44")
    results = await connector.create("contacts", items)
    assert [r.ok for r in results] == [True] * 5 + [False] + [True] * 2
    assert isinstance(results[5].error, PermanentError)
    assert results[5].error.status == 400
    assert "shoe_size" in str(results[5].error)
    assert len(fake.live_ids()) == 7
    assert len(posts(fake, BATCH_UPSERT)) <= 2 * 3 + 1, "bisection, not one request per item"


async def test_fields_outside_properties_or_unstorable_values_fail_their_item_only(
    connector: HubSpotConnector,
) -> None:
    items = [
        WriteItem(key="nested", fields={"email": "top-level@example.com"}),
        WriteItem(key="object", fields={"properties": {"email": "o@example.com", "firstname": {"a": 1}}}),
        contact("fine", "fine@example.com"),
    ]
    results = await connector.create("contacts", items)
    assert [r.ok for r in results] == [False, False, True]
    assert all(isinstance(r.error, PermanentError) for r in results[:2])


async def test_values_are_sent_as_hubspot_strings(fake: HubSpotFake, connector: HubSpotConnector) -> None:
    fake.seed({"email": "seed@example.com"})
    await connector.create(
        "contacts",
        [
            contact(
                "k", "v@example.com", firstname=7, lastname=True, hs_additional_emails=["x@e.io", "y@e.io"]
            )
        ],
    )
    (body,) = posts(fake, BATCH_UPSERT)
    assert (body["inputs"][0]["idProperty"], body["inputs"][0]["id"]) == ("email", "v@example.com")
    props = body["inputs"][0]["properties"]
    assert props == {
        "email": "v@example.com",
        "firstname": "7",
        "lastname": "true",
        "hs_additional_emails": "x@e.io;y@e.io",
    }


async def test_rate_limited_create_is_retried_by_the_sdk_client_and_then_succeeds(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    fake.inject("429", 2, BATCH_UPSERT)
    (result,) = await connector.create("contacts", [contact("k", "ada@example.com")])
    assert result.ok
    assert [path for method, path in fake.requests if path == BATCH_UPSERT] == [BATCH_UPSERT] * 3
    assert len(fake.live_ids()) == 1


def test_daily_limit_is_not_retried_until_the_quota_resets() -> None:
    body = {"status": "error", "errorType": "RATE_LIMIT", "policyName": "DAILY", "message": "daily limit"}
    error = classify(httpx.Response(429, json=body))
    assert isinstance(error, RateLimited)
    assert error.retry_after is not None
    assert error.retry_after > RetryPolicy().max_delay, "beyond max_delay the SDK client raises at once"
    rolling = classify(httpx.Response(429, json={**body, "policyName": "TEN_SECONDLY_ROLLING"}))
    assert isinstance(rolling, RateLimited)
    assert rolling.retry_after is None, "a rolling-window 429 is retried with backoff"
    assert isinstance(classify(httpx.Response(423, json={"message": "locked"})), TransientError)
    assert classify(httpx.Response(400, json={"message": "bad"})) is None


async def test_rejected_credentials_fail_the_whole_call(fake: HubSpotFake) -> None:
    connector = make_connector(fake, token="not-the-token", entity_id_property=None)
    try:
        with pytest.raises(AuthError):
            await connector.create("contacts", [contact("k", "a@example.com")])
    finally:
        await connector.aclose()


async def test_writes_create_the_entity_id_property_before_using_it(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    (result,) = await connector.create("contacts", [contact("k", "e@example.com", syncd_entity_id="ent-42")])
    assert result.ok
    assert result.record is not None
    assert result.record.fields["properties"]["syncd_entity_id"] == "ent-42"
    (read,) = await connector.get("contacts", [result.record.id])
    assert read.fields["properties"]["syncd_entity_id"] == "ent-42"


# -- update ---------------------------------------------------------------------------------------------


async def test_update_writes_only_the_given_properties_and_none_clears(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    rid = fake.seed({"email": "a@example.com", "firstname": "Ada", "phone": "+44 20"})
    (result,) = await connector.update("contacts", [WriteItem("k", {"properties": {"phone": None}}, id=rid)])
    assert result.ok
    assert result.record is not None
    assert result.record.fields["properties"] == {"phone": None}
    update_body = posts(fake, "/crm/v3/objects/contacts/batch/update")[0]
    assert update_body["inputs"][0]["properties"] == {"phone": ""}
    record = fake.record(rid)
    assert record is not None
    assert record["properties"]["firstname"] == "Ada"
    assert "phone" not in record["properties"]


async def test_update_returns_the_new_version(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    rid = fake.seed({"email": "a@example.com"})
    (before,) = await connector.get("contacts", [rid])
    clock.advance(5)
    (result,) = await connector.update(
        "contacts", [WriteItem("k", {"properties": {"firstname": "Zoë"}}, id=rid)]
    )
    assert result.record is not None
    assert result.record.version != before.version
    (after,) = await connector.get("contacts", [rid])
    assert after.version == result.record.version


async def test_update_of_a_missing_record_is_not_found_while_the_others_apply(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    rid = fake.seed({"email": "a@example.com"})
    items = [
        WriteItem("missing", {"properties": {"firstname": "X"}}, id="424242"),
        WriteItem("present", {"properties": {"firstname": "Ada"}}, id=rid),
        WriteItem("no-id", {"properties": {"firstname": "Y"}}),
    ]
    results = await connector.update("contacts", items)
    assert isinstance(results[0].error, NotFound)
    assert results[1].ok
    assert isinstance(results[2].error, PermanentError)


async def test_update_taking_another_contacts_email_fails_that_item_only(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    a = fake.seed({"email": "a@example.com"})
    b = fake.seed({"email": "b@example.com"})
    results = await connector.update(
        "contacts",
        [
            WriteItem("steal", {"properties": {"email": "A@example.com"}}, id=b),
            WriteItem("ok", {"properties": {"firstname": "A"}}, id=a),
        ],
    )
    assert isinstance(results[0].error, PermanentError)
    assert results[0].error.status == 409
    assert results[1].ok


async def test_update_against_a_stale_version_is_refused_and_leaves_the_human_edit(
    fake: HubSpotFake, clock: FakeClock, connector: HubSpotConnector
) -> None:
    rid = fake.seed({"email": "a@example.com", "firstname": "Ada"})
    (read,) = await connector.get("contacts", [rid])
    clock.advance(3)
    fake.edit(rid, {"firstname": "Human"})
    item = WriteItem("k", {"properties": {"firstname": "Syncd"}}, id=rid, expected_version=read.version)
    (result,) = await connector.update("contacts", [item])
    assert isinstance(result.error, PreconditionFailed)
    assert fake.record(rid)["properties"]["firstname"] == "Human"  # type: ignore[index]
    (fresh,) = await connector.get("contacts", [rid])
    item = WriteItem("k2", {"properties": {"firstname": "Syncd"}}, id=rid, expected_version=fresh.version)
    (result,) = await connector.update("contacts", [item])
    assert result.ok


# -- delete ---------------------------------------------------------------------------------------------


async def test_archive_mode_deletes_softly_and_reports_missing_records_as_not_found(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    rid = fake.seed({"email": "a@example.com"})
    results = await connector.delete(
        "contacts", [WriteItem("del", {}, id=rid), WriteItem("ghost", {}, id="424242")]
    )
    assert results[0].ok
    assert results[0].record is not None
    assert results[0].record.deleted
    assert isinstance(results[1].error, NotFound)
    record = fake.record(rid)
    assert record is not None
    assert record["archived"] is True, "archived, restorable"
    assert await connector.get("contacts", [rid]) == []
    again = await connector.delete("contacts", [WriteItem("again", {}, id=rid)])
    assert isinstance(again[0].error, NotFound)


async def test_gdpr_mode_deletes_permanently(fake: HubSpotFake) -> None:
    connector = make_connector(fake, archive_mode="gdpr")
    try:
        rid = fake.seed({"email": "a@example.com"})
        results = await connector.delete(
            "contacts", [WriteItem("del", {}, id=rid), WriteItem("ghost", {}, id="424242")]
        )
        assert results[0].ok
        assert isinstance(results[1].error, NotFound)
        assert fake.record(rid) is None
        assert [c.json() for c in fake.captured if c.path.endswith("/gdpr-delete")] == [{"objectId": rid}]
    finally:
        await connector.aclose()


@pytest.mark.parametrize("per_second", [19.0, 10.0, 1.0])
async def test_the_request_pace_never_spends_more_than_the_ten_second_budget(per_second: float) -> None:
    # HubSpot counts its budget per rolling 10 s (190 for 19 requests a second): a run that
    # starts at full speed must not overdraw it in its first 10 s by a burst.
    clock = MonotonicClock()
    limiter = ten_second_budget(per_second, clock=clock, sleep=clock.sleep)
    granted: list[float] = []
    for _ in range(int(per_second * 40)):
        await limiter.acquire()
        granted.append(clock())
    budget = round(per_second * 10)
    busiest = max(sum(1 for t in granted if start <= t < start + 10.0) for start in granted)
    assert busiest <= budget
    assert busiest >= budget - 1, "and the pace stays within one request of the budget"
