"""The HubSpot fake behaves like HubSpot where sync code depends on it (api-reference.md section 5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.hubspot import HubSpotFake, sign_v3, signature_uri

from .conftest import SECRET, TOKEN, WebhookReceiver

CONTACTS = "/crm/v3/objects/contacts"


@pytest.fixture
async def client(fake: HubSpotFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield http


def lastmod_filter(operator: str, value: int) -> dict[str, Any]:
    return {"filters": [{"propertyName": "lastmodifieddate", "operator": operator, "value": str(value)}]}


async def search(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(f"{CONTACTS}/search", json=body)


# -- auth and rate limits ---------------------------------------------------------------------------


async def test_wrong_or_missing_token_gets_401_with_hubspot_error_body(fake: HubSpotFake) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            response = await http.get(CONTACTS, headers=headers)
            assert response.status_code == 401
            body = response.json()
            assert body["category"] == "INVALID_AUTHENTICATION"
            assert body["status"] == "error"
            assert body["correlationId"]


async def test_rate_limit_headers_are_sent_on_normal_responses_but_not_on_search(
    client: httpx.AsyncClient,
) -> None:
    listing = await client.get(CONTACTS)
    assert listing.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert listing.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(listing.headers["X-HubSpot-RateLimit-Remaining"]) < 190
    assert "X-HubSpot-RateLimit-Daily-Remaining" in listing.headers
    found = await search(client, limit=1)
    assert found.status_code == 200
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in found.headers)


async def test_injected_429_has_hubspot_rate_limit_body(fake: HubSpotFake, client: httpx.AsyncClient) -> None:
    fake.inject("429", 1, CONTACTS)
    response = await client.get(CONTACTS)
    assert response.status_code == 429
    body = response.json()
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert (await client.get(CONTACTS)).status_code == 200


async def test_ten_second_limit_answers_429_once_exhausted(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    fake.ten_second_limit = 3
    statuses = [(await client.get(CONTACTS)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


# -- listing, reading ---------------------------------------------------------------------------------


async def test_list_pages_with_after_until_paging_disappears(
    client: httpx.AsyncClient, contacts_seeded: list[str]
) -> None:
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "properties": "email"}
        if after:
            params["after"] = after
        body = (await client.get(CONTACTS, params=params)).json()
        pages += 1
        seen += [r["id"] for r in body["results"]]
        after = body.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert pages == 3
    assert seen == contacts_seeded


async def test_list_defaults_to_ten_and_rejects_more_than_one_hundred(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    for i in range(12):
        fake.seed({"email": f"p{i}@example.com"})
    assert len((await client.get(CONTACTS)).json()["results"]) == 10
    assert (await client.get(CONTACTS, params={"limit": 101})).status_code == 400


async def test_requested_properties_come_back_with_nulls_and_system_properties(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    rid = fake.seed({"email": "ada@example.com"})
    body = (await client.get(f"{CONTACTS}/{rid}", params={"properties": "email,phone,nonexistent"})).json()
    assert body["properties"]["email"] == "ada@example.com"
    assert body["properties"]["phone"] is None
    assert "nonexistent" not in body["properties"]
    assert body["properties"]["hs_object_id"] == rid
    assert body["id"] == rid
    assert body["id"].isdigit()
    assert body["createdAt"].endswith("Z")
    assert len(body["createdAt"]) == len("2026-03-02T09:00:00.000Z")
    assert body["properties"]["lastmodifieddate"] == body["updatedAt"]


async def test_get_by_email_id_property_is_case_insensitive(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    rid = fake.seed({"email": "Ada@Example.com"})
    response = await client.get(f"{CONTACTS}/ADA@EXAMPLE.COM", params={"idProperty": "email"})
    assert response.status_code == 200
    assert response.json()["id"] == rid
    assert response.json()["properties"]["email"] == "ada@example.com", "HubSpot stores emails lowercase"
    missing = await client.get(f"{CONTACTS}/999999")
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND"


# -- writes ---------------------------------------------------------------------------------------------


async def test_duplicate_email_create_is_409_naming_the_existing_id(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    rid = fake.seed({"email": "ada@example.com"})
    response = await client.post(CONTACTS, json={"properties": {"email": "  ADA@example.COM "}})
    assert response.status_code == 409
    assert response.json()["category"] == "CONFLICT"
    assert response.json()["message"] == f"Contact already exists. Existing ID: {rid}"


async def test_create_returns_201_and_empty_string_clears_a_property(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    created = await client.post(CONTACTS, json={"properties": {"email": "a@example.com", "phone": "+1 555"}})
    assert created.status_code == 201
    rid = created.json()["id"]
    cleared = await client.patch(f"{CONTACTS}/{rid}", json={"properties": {"phone": ""}})
    assert cleared.status_code == 200
    record = fake.record(rid)
    assert record is not None
    assert "phone" not in record["properties"]
    assert cleared.json()["updatedAt"] > created.json()["updatedAt"]


async def test_unknown_or_read_only_property_is_400_validation_error(client: httpx.AsyncClient) -> None:
    for properties in ({"email": "a@example.com", "shoe_size": "42"}, {"hs_object_id": "5"}):
        response = await client.post(CONTACTS, json={"properties": properties})
        assert response.status_code == 400
        assert response.json()["category"] == "VALIDATION_ERROR"
        assert "Property values were not valid" in response.json()["message"]


async def test_no_op_update_neither_bumps_the_record_nor_fires_a_webhook(
    fake: HubSpotFake, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    rid = fake.seed({"email": "a@example.com", "firstname": "Ada"})
    before = fake.record(rid)
    response = await client.patch(f"{CONTACTS}/{rid}", json={"properties": {"firstname": "Ada"}})
    assert response.status_code == 200
    await fake.webhooks_idle()
    assert fake.record(rid) == before
    assert receiver.received == []


async def test_batch_over_one_hundred_inputs_is_400(client: httpx.AsyncClient) -> None:
    inputs = [{"properties": {"email": f"p{i}@example.com"}, "associations": []} for i in range(101)]
    response = await client.post(f"{CONTACTS}/batch/create", json={"inputs": inputs})
    assert response.status_code == 400
    assert "100" in response.json()["message"]


async def test_batch_create_with_an_invalid_value_is_207_with_a_traced_error(
    client: httpx.AsyncClient,
) -> None:
    inputs = [
        {"properties": {"email": "good@example.com"}, "associations": [], "objectWriteTraceId": "a"},
        {"properties": {"email": "not-an-email"}, "associations": [], "objectWriteTraceId": "b"},
    ]
    response = await client.post(f"{CONTACTS}/batch/create", json={"inputs": inputs})
    assert response.status_code == 207
    body = response.json()
    assert body["numErrors"] == 1
    assert body["errors"][0]["context"]["objectWriteTraceId"] == ["b"]
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["a"]


async def test_batch_create_with_an_existing_email_fails_whole_batch_with_409(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    rid = fake.seed({"email": "taken@example.com"})
    inputs = [
        {"properties": {"email": "new@example.com"}, "associations": []},
        {"properties": {"email": "TAKEN@example.com"}, "associations": []},
    ]
    response = await client.post(f"{CONTACTS}/batch/create", json={"inputs": inputs})
    assert response.status_code == 409
    assert response.json()["message"].endswith(f"Existing ID: {rid}")
    assert fake.live_ids() == [rid], "a failed batch creates nothing"


async def test_batch_read_and_update_report_missing_ids_as_207_errors(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    rid = fake.seed({"email": "a@example.com"})
    read = await client.post(
        f"{CONTACTS}/batch/read",
        json={"inputs": [{"id": rid}, {"id": "424242"}], "properties": [], "propertiesWithHistory": []},
    )
    assert read.status_code == 207
    assert read.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert read.json()["errors"][0]["context"]["ids"] == ["424242"]
    update = await client.post(
        f"{CONTACTS}/batch/update",
        json={"inputs": [{"id": rid, "properties": {"firstname": "A"}}, {"id": "424242", "properties": {}}]},
    )
    assert update.status_code == 207
    assert [r["id"] for r in update.json()["results"]] == [rid]


async def test_batch_upsert_by_email_creates_then_updates(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    payload = {
        "inputs": [{"id": "Up@example.com", "idProperty": "email", "properties": {"firstname": "One"}}]
    }
    first = (await client.post(f"{CONTACTS}/batch/upsert", json=payload)).json()["results"][0]
    payload["inputs"][0]["properties"] = {"firstname": "Two"}
    second = (await client.post(f"{CONTACTS}/batch/upsert", json=payload)).json()["results"][0]
    assert (first["new"], second["new"]) == (True, False)
    assert first["id"] == second["id"]
    assert fake.record(first["id"])["properties"]["firstname"] == "Two"  # type: ignore[index]


async def test_batch_upsert_by_record_id_updates_and_reports_unknown_ids(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    rid = fake.seed({"email": "a@example.com"})
    inputs = [
        {"id": rid, "properties": {"firstname": "Ada"}},
        {"id": "424242", "properties": {"firstname": "X"}},
    ]
    response = await client.post(f"{CONTACTS}/batch/upsert", json={"inputs": inputs})
    assert response.status_code == 207
    assert [(r["id"], r["new"]) for r in response.json()["results"]] == [(rid, False)]
    assert response.json()["errors"][0]["context"]["ids"] == ["424242"]


async def test_archive_is_soft_and_restorable_while_gdpr_delete_is_permanent(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    soft = fake.seed({"email": "soft@example.com"})
    hard = fake.seed({"email": "hard@example.com"})
    assert (
        await client.post(f"{CONTACTS}/batch/archive", json={"inputs": [{"id": soft}]})
    ).status_code == 204
    assert (await client.get(f"{CONTACTS}/{soft}")).status_code == 404
    archived = await client.get(f"{CONTACTS}/{soft}", params={"archived": "true"})
    assert archived.status_code == 200
    assert archived.json()["archived"] is True
    assert archived.json()["archivedAt"]
    listed = (await client.get(CONTACTS, params={"archived": "true"})).json()["results"]
    assert [r["id"] for r in listed] == [soft]
    fake.restore(soft)
    assert (await client.get(f"{CONTACTS}/{soft}")).status_code == 200

    assert (await client.post(f"{CONTACTS}/gdpr-delete", json={"objectId": hard})).status_code == 204
    assert (await client.get(f"{CONTACTS}/{hard}", params={"archived": "true"})).status_code == 404
    assert fake.record(hard) is None
    assert (await client.post(f"{CONTACTS}/gdpr-delete", json={"objectId": hard})).status_code == 404


async def test_gdpr_delete_of_an_unknown_email_blocklists_it(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{CONTACTS}/gdpr-delete", json={"objectId": "gone@example.com", "idProperty": "email"}
    )
    assert response.status_code == 204
    again = await client.post(CONTACTS, json={"properties": {"email": "gone@example.com"}})
    assert again.status_code == 400


async def test_custom_property_can_be_created_once_and_then_written(client: httpx.AsyncClient) -> None:
    definition = {
        "name": "syncd_entity_id",
        "label": "syncd",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
    }
    assert (await client.get("/crm/v3/properties/contacts/syncd_entity_id")).status_code == 404
    assert (await client.post("/crm/v3/properties/contacts", json=definition)).status_code == 201
    assert (await client.post("/crm/v3/properties/contacts", json=definition)).status_code == 409
    names = [p["name"] for p in (await client.get("/crm/v3/properties/contacts")).json()["results"]]
    assert "syncd_entity_id" in names
    created = await client.post(
        CONTACTS, json={"properties": {"email": "e@example.com", "syncd_entity_id": "ent-1"}}
    )
    assert created.status_code == 201


# -- search ---------------------------------------------------------------------------------------------


async def test_search_hides_writes_until_the_index_lag_has_passed(
    fake: HubSpotFake, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    fake.index_lag_seconds = 5
    created = (await client.post(CONTACTS, json={"properties": {"email": "lag@example.com"}})).json()
    assert (await client.get(f"{CONTACTS}/{created['id']}")).status_code == 200, (
        "reads are consistent at once"
    )
    assert (await search(client, limit=10)).json()["total"] == 0
    clock.advance(4.9)
    assert (await search(client, limit=10)).json()["total"] == 0
    clock.advance(0.2)
    assert [r["id"] for r in (await search(client, limit=10)).json()["results"]] == [created["id"]]


async def test_search_serves_the_stale_indexed_version_during_the_lag(
    fake: HubSpotFake, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    rid = fake.seed({"email": "a@example.com", "firstname": "Old"})
    fake.index_lag_seconds = 30
    fake.edit(rid, {"firstname": "New"})
    hit = (await search(client, properties=["firstname"])).json()["results"][0]
    assert hit["properties"]["firstname"] == "Old"
    clock.advance(31)
    hit = (await search(client, properties=["firstname"])).json()["results"][0]
    assert hit["properties"]["firstname"] == "New"


async def test_search_filters_on_lastmodifieddate_in_epoch_ms_with_one_sort(
    fake: HubSpotFake, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    ids = []
    for i in range(4):
        ids.append(fake.seed({"email": f"p{i}@example.com"}))
        clock.advance(10)
    stamps = [int(fake.collections["contacts"].records[int(r)].updated_ms) for r in ids]
    cases = {
        "GTE": (stamps[2], ids[2:]),
        "GT": (stamps[2], ids[3:]),
        "LT": (stamps[1], ids[:1]),
        "LTE": (stamps[1], ids[:2]),
        "EQ": (stamps[3], ids[3:]),
        "NEQ": (stamps[3], ids[:3]),
    }
    for operator, (value, expected) in cases.items():
        body = {
            "filterGroups": [lastmod_filter(operator, value)],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        }
        found = (await search(client, **body)).json()
        assert [r["id"] for r in found["results"]] == expected, operator
        assert found["total"] == len(expected)
    between = {
        "propertyName": "lastmodifieddate",
        "operator": "BETWEEN",
        "value": str(stamps[1]),
        "highValue": str(stamps[2]),
    }
    found = (await search(client, filterGroups=[{"filters": [between]}])).json()
    assert [r["id"] for r in found["results"]] == ids[1:3]
    descending = await search(client, sorts=[{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}])
    assert [r["id"] for r in descending.json()["results"]] == ids[::-1]
    two_sorts = await search(client, sorts=[{"propertyName": "email"}, {"propertyName": "lastmodifieddate"}])
    assert two_sorts.status_code == 400


async def test_search_in_has_property_and_or_groups(fake: HubSpotFake, client: httpx.AsyncClient) -> None:
    a = fake.seed({"email": "a@example.com", "phone": "1"})
    b = fake.seed({"email": "b@example.com"})
    c = fake.seed({"email": "c@example.com", "firstname": "Cy"})
    in_filter = {"propertyName": "email", "operator": "IN", "values": ["A@EXAMPLE.COM", "c@example.com"]}
    found = (await search(client, filterGroups=[{"filters": [in_filter]}])).json()
    assert sorted(r["id"] for r in found["results"]) == sorted([a, c])
    has_phone = {"propertyName": "phone", "operator": "HAS_PROPERTY"}
    no_phone = {"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}
    assert [
        r["id"] for r in (await search(client, filterGroups=[{"filters": [has_phone]}])).json()["results"]
    ] == [a]
    assert [
        r["id"] for r in (await search(client, filterGroups=[{"filters": [no_phone]}])).json()["results"]
    ] == [b, c]
    named = {"propertyName": "firstname", "operator": "EQ", "value": "cy"}
    either = (await search(client, filterGroups=[{"filters": [has_phone]}, {"filters": [named]}])).json()
    assert sorted(r["id"] for r in either["results"]) == sorted([a, c])


async def test_search_limits_and_the_ten_thousand_window_are_enforced(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    for i in range(3):
        fake.seed({"email": f"p{i}@example.com"})
    assert (await search(client)).json()["total"] == 3
    assert len((await search(client, limit=2)).json()["results"]) == 2
    assert (await search(client, limit=201)).status_code == 400
    assert (await search(client, limit=100, after="9900")).status_code == 200
    assert (await search(client, limit=100, after="9901")).status_code == 400
    assert (await search(client, after="abc")).status_code == 400
    page = (await search(client, limit=2, after="0")).json()
    assert page["paging"]["next"]["after"] == "2"
    last = (await search(client, limit=2, after="2")).json()
    assert "paging" not in last
    assert len(last["results"]) == 1


async def test_archived_records_never_appear_in_search(fake: HubSpotFake, client: httpx.AsyncClient) -> None:
    rid = fake.seed({"email": "a@example.com"})
    fake.archive(rid)
    assert (await search(client)).json()["total"] == 0


# -- webhooks -------------------------------------------------------------------------------------------


async def test_api_writes_emit_signed_webhook_batches_for_echo_detection(
    fake: HubSpotFake, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    created = (
        await client.post(CONTACTS, json={"properties": {"email": "e@example.com", "firstname": "E"}})
    ).json()
    await client.patch(f"{CONTACTS}/{created['id']}", json={"properties": {"firstname": "F"}})
    await client.delete(f"{CONTACTS}/{created['id']}")
    await fake.webhooks_idle()
    events = [e for _, _, _, body in receiver.received for e in json.loads(body)]
    kinds = [(e["subscriptionType"], e.get("propertyName")) for e in events]
    assert kinds == [
        ("contact.creation", None),
        ("contact.propertyChange", "email"),
        ("contact.propertyChange", "firstname"),
        ("contact.propertyChange", "firstname"),
        ("contact.deletion", None),
    ]
    assert all(e["objectId"] == int(created["id"]) and e["changeSource"] == "API" for e in events)
    for method, url, headers, body in receiver.received:
        stamp = headers["X-HubSpot-Request-Timestamp"]
        source = method.encode() + signature_uri(url).encode() + body + stamp.encode()
        expected = base64.b64encode(hmac.new(SECRET.encode(), source, hashlib.sha256).digest()).decode()
        assert headers["X-HubSpot-Signature-v3"] == expected
        assert headers["X-HubSpot-Signature"] == hashlib.sha256(SECRET.encode() + body).hexdigest()


async def test_large_changes_are_delivered_in_batches_of_at_most_one_hundred_events(
    fake: HubSpotFake, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    inputs = [{"properties": {"email": f"p{i}@example.com"}, "associations": []} for i in range(60)]
    assert (await client.post(f"{CONTACTS}/batch/create", json={"inputs": inputs})).status_code == 201
    await fake.webhooks_idle()
    sizes = [len(json.loads(body)) for *_, body in receiver.received]
    assert sizes == [100, 20], "60 creations + 60 email changes, split by 100"


async def test_backdoor_edit_and_gdpr_delete_emit_the_right_event_types(
    fake: HubSpotFake, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    rid = fake.seed({"email": "a@example.com"})
    fake.edit(rid, {"lastname": "Lovelace"})
    await client.post(f"{CONTACTS}/gdpr-delete", json={"objectId": rid})
    await fake.webhooks_idle()
    events = [e for *_, body in receiver.received for e in json.loads(body)]
    assert [(e["subscriptionType"], e["changeSource"]) for e in events] == [
        ("contact.propertyChange", "CRM_UI"),
        ("contact.privacyDeletion", "API"),
        ("contact.deletion", "API"),
    ]


def test_signature_uri_decodes_exactly_the_listed_escapes() -> None:
    url = "https://h.example/p%3Aa%2Fb?q=%40x%21%24%27%28%29%2A%2C%3B%20%3a"
    assert signature_uri(url) == "https://h.example/p:a/b?q=@x!$'()*,;%20:"
    assert sign_v3("s", "post", url, b"[]", 1) == sign_v3("s", "POST", signature_uri(url), b"[]", 1)


# -- standalone -----------------------------------------------------------------------------------------


async def test_companies_use_hs_lastmodifieddate_and_allow_duplicate_domains(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post(
        "/crm/v3/objects/companies", json={"properties": {"name": "Acme", "domain": "acme.com"}}
    )
    second = await client.post(
        "/crm/v3/objects/companies", json={"properties": {"name": "Acme 2", "domain": "acme.com"}}
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert "hs_lastmodifieddate" in first.json()["properties"]
    unknown = await client.get("/crm/v3/objects/widgets")
    assert unknown.status_code == 400


# -- merges -------------------------------------------------------------------------------------------


async def test_merge_keeps_primary_values_fills_empty_ones_and_names_the_merged_id(
    fake: HubSpotFake, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    primary = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
    other = fake.seed({"email": "ada.l@example.com", "firstname": "Augusta", "lastname": "Lovelace"})
    response = await client.post(
        f"{CONTACTS}/merge", json={"primaryObjectId": primary, "objectIdToMerge": other}
    )
    assert response.status_code == 200
    assert response.json()["id"] == primary
    survivor = fake.record(primary)
    assert survivor is not None
    props = survivor["properties"]
    assert (props["email"], props["firstname"], props["lastname"]) == ("ada@example.com", "Ada", "Lovelace")
    assert props["hs_additional_emails"] == "ada.l@example.com"
    assert props["hs_merged_object_ids"] == other
    read = await client.get(f"{CONTACTS}/{primary}", params={"properties": "hs_merged_object_ids"})
    assert read.json()["properties"]["hs_merged_object_ids"] == other
    assert (await client.get(f"{CONTACTS}/{other}")).status_code == 404
    assert (await client.get(f"{CONTACTS}/{other}", params={"archived": "true"})).status_code == 404
    assert fake.live_ids() == [primary]
    await fake.webhooks_idle()
    (event,) = [e for *_, body in receiver.received for e in json.loads(body)]
    assert event["subscriptionType"] == "contact.merge"
    assert (event["primaryObjectId"], event["mergedObjectIds"], event["newObjectId"]) == (
        int(primary),
        [int(other)],
        int(primary),
    )
    assert event["numberOfPropertiesMoved"] == 1  # lastname; the email went to additional emails


async def test_merged_away_id_resolves_to_the_survivor_when_the_fake_is_told_so(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    fake.resolve_merged_ids = True
    first = fake.seed({"email": "a@example.com"})
    second = fake.seed({"email": "b@example.com"})
    third = fake.seed({"email": "c@example.com"})
    fake.merge(second, first)
    fake.merge(third, second)  # the chain first -> second -> third resolves to third
    for rid in (first, second):
        assert (await client.get(f"{CONTACTS}/{rid}")).json()["id"] == third
    read = await client.post(
        f"{CONTACTS}/batch/read",
        json={"inputs": [{"id": first}, {"id": second}], "properties": ["hs_merged_object_ids"]},
    )
    (only,) = read.json()["results"]
    assert only["id"] == third
    assert sorted(only["properties"]["hs_merged_object_ids"].split(";")) == sorted([first, second])


async def test_merge_can_mint_a_new_id_for_the_combined_record(
    fake: HubSpotFake, client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    fake.merge_mints_new_id = True
    primary = fake.seed({"email": "a@example.com"})
    other = fake.seed({"email": "b@example.com"})
    merged = (
        await client.post(f"{CONTACTS}/merge", json={"primaryObjectId": primary, "objectIdToMerge": other})
    ).json()
    assert merged["id"] not in (primary, other)
    assert fake.live_ids() == [merged["id"]]
    await fake.webhooks_idle()
    (event,) = [e for *_, body in receiver.received for e in json.loads(body)]
    assert event["newObjectId"] == int(merged["id"])
    assert event["primaryObjectId"] == int(primary)


async def test_merge_of_a_missing_or_the_same_record_is_refused(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    rid = fake.seed({"email": "a@example.com"})
    url = f"{CONTACTS}/merge"
    missing = await client.post(url, json={"primaryObjectId": rid, "objectIdToMerge": "999999"})
    assert missing.status_code == 404
    itself = await client.post(url, json={"primaryObjectId": rid, "objectIdToMerge": rid})
    assert itself.status_code == 400
    assert (await client.post(url, json={"primaryObjectId": rid})).status_code == 400
    assert fake.live_ids() == [rid]


async def test_archived_listing_carries_archived_at_on_the_fake_clock(
    fake: HubSpotFake, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    early = fake.seed({"email": "early@example.com"})
    late = fake.seed({"email": "late@example.com"})
    fake.archive(early)
    clock.advance(60)
    fake.archive(late)
    listed = (await client.get(CONTACTS, params={"archived": "true", "limit": 1})).json()
    assert [r["id"] for r in listed["results"]] == [early]
    assert listed["paging"]["next"]["after"]
    rest = (
        await client.get(CONTACTS, params={"archived": "true", "after": listed["paging"]["next"]["after"]})
    ).json()
    stamps = {r["id"]: r["archivedAt"] for r in [*listed["results"], *rest["results"]]}
    assert set(stamps) == {early, late}
    assert all(r["archived"] for r in rest["results"])
    assert stamps[early] < stamps[late]


async def test_under_load_concurrent_delivery_batches_waiting_events_and_loses_none(
    fake: HubSpotFake, receiver: WebhookReceiver
) -> None:
    fake.delivery_concurrency = 2
    ids = [fake.seed({"email": f"p{i}@example.com", "firstname": "A"}) for i in range(250)]
    for n, record_id in enumerate(ids):  # no await in between: every edit lands while slots are busy
        fake.edit(record_id, {"firstname": f"B{n}"})
    await fake.webhooks_idle()
    batches = [json.loads(body) for _, _, _, body in receiver.received]
    events = [e for batch in batches for e in batch]
    assert sorted(e["objectId"] for e in events) == sorted(int(i) for i in ids)
    assert max(len(b) for b in batches) == 100, "waiting events go out together"
    assert len(batches) < len(ids) / 10
    for method, url, headers, body in receiver.received:
        stamp = headers["X-HubSpot-Request-Timestamp"]
        source = method.encode() + signature_uri(url).encode() + body + stamp.encode()
        expected = base64.b64encode(hmac.new(SECRET.encode(), source, hashlib.sha256).digest()).decode()
        assert headers["X-HubSpot-Signature-v3"] == expected


async def test_lookups_by_email_follow_a_changed_address_and_an_archive(
    fake: HubSpotFake, client: httpx.AsyncClient
) -> None:
    first = fake.seed({"email": "old@example.com"})
    assert (
        await client.get(f"{CONTACTS}/OLD@example.com", params={"idProperty": "email"})
    ).status_code == 200
    fake.edit(first, {"email": "new@example.com"})
    assert (
        await client.get(f"{CONTACTS}/old@example.com", params={"idProperty": "email"})
    ).status_code == 404
    found = await client.get(f"{CONTACTS}/new@example.com", params={"idProperty": "email"})
    assert found.json()["id"] == first
    second = fake.seed({"email": "old@example.com"})
    assert (await client.get(f"{CONTACTS}/old@example.com", params={"idProperty": "email"})).json()[
        "id"
    ] == second
    fake.archive(second)
    assert (
        await client.get(f"{CONTACTS}/old@example.com", params={"idProperty": "email"})
    ).status_code == 404
    upsert = {"inputs": [{"idProperty": "email", "id": "old@example.com", "properties": {"firstname": "T"}}]}
    created = (await client.post(f"{CONTACTS}/batch/upsert", json=upsert)).json()["results"][0]
    assert created["new"] is True
    assert created["id"] not in (first, second)
