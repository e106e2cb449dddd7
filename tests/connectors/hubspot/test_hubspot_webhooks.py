"""HubSpot webhooks: v3 signature verification and parsing event batches into hints."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from syncd.connector import WebhookVerificationError, WriteItem
from syncd.testing.fakes.hubspot import HubSpotFake, sign_v3
from syncd_hubspot import HubSpotConfig, HubSpotConnector

from .conftest import SECRET, WebhookReceiver

URL = "https://hooks.example.com/webhooks/hubspot?app=crm&team=a%40b"
NOW = 1_772_442_000.0  # 2026-03-02T09:00:00Z


def offline(**settings: Any) -> HubSpotConnector:
    """A connector that never reaches HubSpot: webhook handling is local."""
    config = HubSpotConfig.model_validate({"token": "t", "client_secret": SECRET, **settings})
    return HubSpotConnector(config, now=lambda: NOW)


def signed(body: bytes, *, secret: str = SECRET, url: str = URL, at: float = NOW) -> dict[str, str]:
    stamp = int(at * 1000)
    return {
        "X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, stamp),
        "X-HubSpot-Request-Timestamp": str(stamp),
    }


def event(kind: str, object_id: int = 501, event_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": 7,
        "portalId": 62515,
        "appId": 9,
        "occurredAt": 1_772_441_990_123,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM_UI",
        **extra,
    }


BODY = json.dumps([event("contact.propertyChange", propertyName="email", propertyValue="a@x.io")]).encode()


# -- verification -------------------------------------------------------------------------------------


def test_valid_v3_signature_is_accepted() -> None:
    offline().verify_webhook("POST", URL, signed(BODY), BODY)


def test_tampered_body_is_rejected() -> None:
    with pytest.raises(WebhookVerificationError, match="does not match"):
        offline().verify_webhook("POST", URL, signed(BODY), BODY.replace(b"a@x.io", b"b@x.io"))


def test_signature_made_with_another_secret_is_rejected() -> None:
    with pytest.raises(WebhookVerificationError):
        offline().verify_webhook("POST", URL, signed(BODY, secret="someone-else"), BODY)


@pytest.mark.parametrize("age", [301.0, -301.0, 86_400.0])
def test_timestamp_outside_five_minutes_is_rejected_as_stale_or_replayed(age: float) -> None:
    with pytest.raises(WebhookVerificationError, match="stale or replayed"):
        offline().verify_webhook("POST", URL, signed(BODY, at=NOW - age), BODY)


def test_timestamp_is_read_in_milliseconds_within_the_window() -> None:
    offline().verify_webhook("POST", URL, signed(BODY, at=NOW - 299), BODY)


def test_replayed_signature_with_a_fresh_timestamp_header_is_rejected() -> None:
    headers = signed(BODY, at=NOW - 600)
    headers["X-HubSpot-Request-Timestamp"] = str(int(NOW * 1000))
    with pytest.raises(WebhookVerificationError, match="does not match"):
        offline().verify_webhook("POST", URL, headers, BODY)


def test_previous_secret_is_still_accepted_during_a_rotation() -> None:
    connector = offline(client_secret="new-secret", previous_client_secrets=[SECRET])
    connector.verify_webhook("POST", URL, signed(BODY), BODY)
    connector.verify_webhook("POST", URL, signed(BODY, secret="new-secret"), BODY)


def test_signature_over_the_public_url_verifies_behind_a_proxy_only_when_configured() -> None:
    local = "http://127.0.0.1:8080/webhooks/hubspot"
    with pytest.raises(WebhookVerificationError):
        offline().verify_webhook("POST", local, signed(BODY), BODY)
    offline(webhook_url=URL).verify_webhook("POST", local, signed(BODY), BODY)


def test_listed_percent_escapes_in_the_url_are_decoded_before_checking() -> None:
    escaped = "https://hooks.example.com/webhooks/hubspot?app=crm&team=a%40b&x=%3A%2F%2c"
    decoded = "https://hooks.example.com/webhooks/hubspot?app=crm&team=a@b&x=:/,"
    offline().verify_webhook("POST", escaped, signed(BODY, url=decoded), BODY)


def test_header_names_are_matched_case_insensitively() -> None:
    headers = {k.upper(): v for k, v in signed(BODY).items()}
    offline().verify_webhook("post", URL, headers, BODY)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-HubSpot-Signature-v3": "abc"},
        {"X-HubSpot-Signature-v3": "abc", "X-HubSpot-Request-Timestamp": "soon"},
    ],
)
def test_missing_or_malformed_signature_headers_are_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookVerificationError):
        offline().verify_webhook("POST", URL, headers, BODY)


@pytest.mark.parametrize(
    "settings",
    [{"client_secret": ""}, {"client_secret": " \n"}, {"previous_client_secrets": ["old", ""]}],
)
def test_an_empty_client_secret_is_a_configuration_error(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="webhook secret cannot be empty"):
        HubSpotConfig.model_validate({"token": "t", "client_secret": SECRET, **settings})


def test_signature_headers_are_checked_before_the_body_is_read() -> None:
    connector = offline()
    connector.verify_webhook_request("POST", URL, signed(BODY))
    for headers in ({}, signed(BODY, at=NOW - 600), {"X-HubSpot-Signature-v3": "x"}):
        with pytest.raises(WebhookVerificationError):
            connector.verify_webhook_request("POST", URL, headers)


def test_without_a_client_secret_every_webhook_is_rejected() -> None:
    config = HubSpotConfig.model_validate({"token": "t"})
    with pytest.raises(WebhookVerificationError, match="no client_secret"):
        HubSpotConnector(config, now=lambda: NOW).verify_webhook("POST", URL, signed(BODY), BODY)


# -- parsing --------------------------------------------------------------------------------------------


def test_a_batch_becomes_one_hint_per_event_with_deletions_marked() -> None:
    body = json.dumps(
        [
            event("contact.creation", 501, 1),
            event("contact.propertyChange", 501, 2, propertyName="firstname", propertyValue="Ada"),
            event("contact.deletion", 502, 3),
            event("contact.privacyDeletion", 503, 4),
            event("contact.restore", 504, 5),
            event("contact.associationChange", 505, 6),
            event("deal.creation", 506, 7),
            event("company.creation", 507, 8),
        ]
    ).encode()
    hints = offline().parse_webhook({}, body)
    assert [(h.object, h.record_id, h.deleted) for h in hints] == [
        ("contacts", "501", False),
        ("contacts", "501", False),
        ("contacts", "502", True),
        ("contacts", "503", True),
        ("contacts", "504", False),
    ]
    assert len({h.event_id for h in hints}) == len(hints)
    assert hints[0].occurred_at == datetime(2026, 3, 2, 8, 59, 50, 123000, tzinfo=UTC)


def test_company_events_are_parsed_when_companies_are_served() -> None:
    body = json.dumps(
        [event("company.propertyChange", 77, 1, propertyName="domain", propertyValue="a.io")]
    ).encode()
    (hint,) = offline(objects=["contacts", "companies"]).parse_webhook({}, body)
    assert (hint.object, hint.record_id, hint.deleted) == ("companies", "77", False)


def test_redelivery_keeps_the_event_id_and_other_events_get_other_ids() -> None:
    first = offline().parse_webhook({}, json.dumps([event("contact.creation", attemptNumber=0)]).encode())
    retry = offline().parse_webhook(
        {}, json.dumps([{**event("contact.creation"), "attemptNumber": 3}]).encode()
    )
    other = offline().parse_webhook({}, json.dumps([event("contact.creation", event_id=2)]).encode())
    assert first[0].event_id == retry[0].event_id
    assert first[0].event_id != other[0].event_id


def test_legacy_event_type_field_is_understood() -> None:
    legacy = {k: v for k, v in event("contact.deletion").items() if k != "subscriptionType"}
    (hint,) = offline().parse_webhook({}, json.dumps([{**legacy, "eventType": "contact.deletion"}]).encode())
    assert hint.deleted


def test_merge_webhook_names_merged_away_ids() -> None:
    merge = event("contact.merge", 600, primaryObjectId=600, mergedObjectIds=[601, 602], newObjectId=600)
    (hint,) = offline().parse_webhook({}, json.dumps([merge]).encode())
    assert (hint.record_id, hint.replaces, hint.deleted) == ("600", ("601", "602"), False)


def test_merge_webhook_with_a_new_id_replaces_the_primary_too() -> None:
    merge = event("contact.merge", 600, primaryObjectId=600, mergedObjectIds=[601], newObjectId=700)
    (hint,) = offline().parse_webhook({}, json.dumps([merge]).encode())
    assert (hint.record_id, hint.replaces) == ("700", ("600", "601"))


def test_merge_webhook_without_new_object_id_hints_the_primary() -> None:
    merge = event("contact.merge", 601, primaryObjectId=600, mergedObjectIds=[601])
    (hint,) = offline().parse_webhook({}, json.dumps([merge]).encode())
    assert (hint.record_id, hint.replaces) == ("600", ("601",))


def test_deletion_of_a_merged_away_id_in_the_same_delivery_is_not_a_delete() -> None:
    batch = [
        event("contact.merge", 600, 1, primaryObjectId=600, mergedObjectIds=[601], newObjectId=600),
        event("contact.deletion", 601, 2),
        event("contact.deletion", 602, 3),
    ]
    hints = offline().parse_webhook({}, json.dumps(batch).encode())
    assert [(h.record_id, h.deleted, h.replaces) for h in hints] == [
        ("600", False, ("601",)),
        ("602", True, ()),
    ]


def test_merge_webhook_with_malformed_merged_ids_is_a_clear_error() -> None:
    merge = event("contact.merge", 600, primaryObjectId=600, mergedObjectIds="601")
    with pytest.raises(ValueError, match="mergedObjectIds"):
        offline().parse_webhook({}, json.dumps([merge]).encode())


async def test_merge_through_the_api_comes_back_as_a_verified_hint_for_the_survivor(
    fake: HubSpotFake, receiver: WebhookReceiver, connector: HubSpotConnector
) -> None:
    primary = fake.seed({"email": "ada@example.com"})
    other = fake.seed({"email": "ada.l@example.com"})
    await connector.api.http.post(
        "/crm/v3/objects/contacts/merge", json={"primaryObjectId": primary, "objectIdToMerge": other}
    )
    await fake.webhooks_idle()
    hints = []
    for method, url, headers, body in receiver.received:
        connector.verify_webhook(method, url, headers, body)
        hints += connector.parse_webhook(headers, body)
    assert [(h.record_id, h.replaces, h.deleted) for h in hints] == [(primary, (other,), False)]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"objectId": 1}', "JSON array"),
        (b"[1]", "not an object"),
        (json.dumps([{**event("contact.creation"), "subscriptionType": None}]).encode(), "subscriptionType"),
        (json.dumps([{**event("contact.creation"), "objectId": "abc"}]).encode(), "objectId"),
        (json.dumps([{**event("contact.creation"), "occurredAt": "noon"}]).encode(), "occurredAt"),
        (
            json.dumps([{k: v for k, v in event("contact.creation").items() if k != "eventId"}]).encode(),
            "eventId",
        ),
    ],
)
def test_malformed_body_raises_value_error_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        offline().parse_webhook({}, body)


# -- end to end: our own write comes back as a webhook (the echo path) --------------------------------


async def test_our_api_write_comes_back_as_a_verifiable_webhook_naming_the_record(
    fake: HubSpotFake, receiver: WebhookReceiver, connector: HubSpotConnector
) -> None:
    (result,) = await connector.create(
        "contacts", [WriteItem("k", {"properties": {"email": "echo@example.com"}})]
    )
    assert result.record is not None
    await fake.webhooks_idle()
    assert receiver.received, "the fake delivers webhooks for API writes too"
    hints = []
    for method, url, headers, body in receiver.received:
        connector.verify_webhook(method, url, headers, body)
        hints += connector.parse_webhook(headers, body)
    assert {h.record_id for h in hints} == {result.record.id}
    assert all(
        abs(int(h["X-HubSpot-Request-Timestamp"]) / 1000 - time.time()) < 60
        for _, _, h, _ in receiver.received
    )
