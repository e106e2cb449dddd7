"""Webhooks: the secret in the URL authenticates; form-encoded events become re-read hints."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import ValidationError

from syncd.connector import WebhookVerificationError, WriteItem
from syncd.connector.redact import redact_text
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.mailchimp import MailchimpFake, subscriber_hash
from syncd_mailchimp import MailchimpConfig, MailchimpConnector

from .conftest import API_KEY, LIST_ID, WEBHOOK_SECRET, ConnectorFactory, Receiver

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HOOK_URL = "https://syncd.example/webhooks/mailchimp"


def _body(kind: str, **data: str) -> bytes:
    pairs = [("type", kind), ("fired_at", "2026-04-25 14:30:00"), ("data[list_id]", LIST_ID)]
    pairs += [(f"data[{key}]", value) for key, value in data.items()]
    return urlencode(pairs).encode()


# -- verification ---------------------------------------------------------------------------------


def test_webhook_with_the_secret_in_its_url_is_accepted(connector: MailchimpConnector) -> None:
    connector.verify_webhook("POST", f"{HOOK_URL}?secret={WEBHOOK_SECRET}", FORM, b"type=profile")
    connector.verify_webhook("GET", f"{HOOK_URL}?a=1&secret={WEBHOOK_SECRET}", {}, b"")


@pytest.mark.parametrize(
    "query", ["?secret=wrong", "", "?secret=", f"?Secret={WEBHOOK_SECRET}", "?secret=hook-secret"]
)
def test_webhook_with_a_wrong_or_missing_secret_is_rejected(
    connector: MailchimpConnector, query: str
) -> None:
    with pytest.raises(WebhookVerificationError):
        connector.verify_webhook("POST", HOOK_URL + query, FORM, b"type=profile")


def test_the_right_secret_hidden_among_many_secret_parameters_is_rejected(
    connector: MailchimpConnector,
) -> None:
    guesses = "&".join(f"secret=guess{i}" for i in range(229))
    for query in (f"?{guesses}&secret={WEBHOOK_SECRET}", f"?secret={WEBHOOK_SECRET}&secret={WEBHOOK_SECRET}"):
        with pytest.raises(WebhookVerificationError, match="several secret"):
            connector.verify_webhook("POST", HOOK_URL + query, FORM, b"type=profile")
        with pytest.raises(WebhookVerificationError, match="several secret"):
            connector.verify_webhook_request("POST", HOOK_URL + query, FORM)


def test_the_url_secret_is_checked_before_the_body_is_read(connector: MailchimpConnector) -> None:
    connector.verify_webhook_request("POST", f"{HOOK_URL}?secret={WEBHOOK_SECRET}", FORM)
    with pytest.raises(WebhookVerificationError):
        connector.verify_webhook_request("POST", f"{HOOK_URL}?secret=wrong", FORM)


@pytest.mark.parametrize(
    "settings",
    [
        {"webhook_secret": ""},
        {"webhook_secret": "   "},
        {"webhook_secret": "fine-secret", "previous_webhook_secrets": [""]},
        {"webhook_secret": "fine-secret", "previous_webhook_secrets": ["old", " "]},
    ],
)
def test_an_empty_webhook_secret_is_a_configuration_error(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="webhook secret cannot be empty"):
        MailchimpConfig.model_validate({"api_key": API_KEY, "list_id": LIST_ID, **settings})


def test_previous_secrets_stay_valid_during_a_rotation(make_connector: ConnectorFactory) -> None:
    connector = make_connector(webhook_secret="new-secret", previous_webhook_secrets=["old-secret"])
    for secret in ("new-secret", "old-secret"):
        connector.verify_webhook("POST", f"{HOOK_URL}?secret={secret}", FORM, b"")
    with pytest.raises(WebhookVerificationError):
        connector.verify_webhook("POST", f"{HOOK_URL}?secret={WEBHOOK_SECRET}", FORM, b"")


def test_the_webhook_secret_is_masked_in_log_lines(connector: MailchimpConnector) -> None:
    assert redact_text(f"POST {HOOK_URL}?secret={WEBHOOK_SECRET}") == f"POST {HOOK_URL}?secret=***"


def test_without_a_configured_secret_every_webhook_is_rejected(make_connector: ConnectorFactory) -> None:
    connector = make_connector(webhook_secret=None)
    with pytest.raises(WebhookVerificationError, match="no webhook_secret"):
        connector.verify_webhook("POST", f"{HOOK_URL}?secret=", FORM, b"")


# -- parsing -------------------------------------------------------------------------------------


def test_subscribe_event_names_the_member_by_the_hash_of_its_email(connector: MailchimpConnector) -> None:
    body = _body("subscribe", id="8a25ff1d98", email="Ada@Lovelace.io", **{"merges][FNAME": "Ada"})
    (hint,) = connector.parse_webhook(FORM, body)
    assert hint.object == "members"
    assert hint.record_id == subscriber_hash("ada@lovelace.io")
    assert not hint.deleted
    assert hint.record is None, "the payload has no version: the member is re-read"
    assert hint.occurred_at == datetime(2026, 4, 25, 14, 30, tzinfo=UTC)
    assert hint.event_id == hashlib.sha256(body).hexdigest()


def test_profile_and_cleaned_events_ask_for_a_re_read(connector: MailchimpConnector) -> None:
    for body in (
        _body("profile", email="ada@lovelace.io"),
        _body("cleaned", email="ada@lovelace.io", reason="hard"),
    ):
        (hint,) = connector.parse_webhook(FORM, body)
        assert (hint.record_id, hint.deleted) == (subscriber_hash("ada@lovelace.io"), False)


def test_upemail_event_names_the_member_by_its_new_address(connector: MailchimpConnector) -> None:
    body = _body("upemail", new_id="51da8c3259", new_email="ada@byron.io", old_email="ada@lovelace.io")
    (hint,) = connector.parse_webhook(FORM, body)
    assert hint.record_id == subscriber_hash("ada@byron.io")
    assert hint.replaces == (subscriber_hash("ada@lovelace.io"),)


def test_upemail_without_an_old_address_is_malformed(connector: MailchimpConnector) -> None:
    body = _body("upemail", new_id="51da8c3259", new_email="ada@byron.io")
    with pytest.raises(ValueError, match="old_email"):
        connector.parse_webhook(FORM, body)


def test_upemail_that_only_changes_case_replaces_nothing(connector: MailchimpConnector) -> None:
    body = _body("upemail", new_id="51da8c3259", new_email="Ada@Byron.io", old_email="ada@byron.io")
    (hint,) = connector.parse_webhook(FORM, body)
    assert (hint.record_id, hint.replaces) == (subscriber_hash("ada@byron.io"), ())


async def test_email_change_by_the_connector_comes_back_as_upemail_replacing_the_old_id(
    fake: MailchimpFake, connector: MailchimpConnector, receiver: Receiver
) -> None:
    await _register(fake, receiver, {"user": True, "admin": True, "api": True})
    old_id = fake.seed("ada@lovelace.io")
    (result,) = await connector.update(
        "members", [WriteItem(key="k", id=old_id, fields={"email_address": "ada@byron.io"})]
    )
    assert result.record is not None
    await fake.webhooks_idle()
    hints = []
    for request in receiver.posts:
        connector.verify_webhook(request.method, request.url, request.headers, request.body)
        hints += connector.parse_webhook(request.headers, request.body)
    assert [(h.record_id, h.replaces) for h in hints] == [(result.record.id, (old_id,))]


@pytest.mark.parametrize(("action", "deleted"), [("unsub", False), ("delete", True)])
def test_unsubscribe_is_a_delete_only_when_its_action_says_so(
    connector: MailchimpConnector, action: str, deleted: bool
) -> None:
    (hint,) = connector.parse_webhook(FORM, _body("unsubscribe", email="ada@lovelace.io", action=action))
    assert hint.deleted is deleted


def test_campaign_events_yield_no_hints(connector: MailchimpConnector) -> None:
    assert connector.parse_webhook(FORM, _body("campaign", id="c1", subject="Hi", status="sent")) == []


def test_a_redelivery_keeps_its_event_id_and_another_event_gets_a_new_one(
    connector: MailchimpConnector,
) -> None:
    body = _body("profile", email="ada@lovelace.io")
    (first,) = connector.parse_webhook(FORM, body)
    (again,) = connector.parse_webhook(FORM, body)
    (other,) = connector.parse_webhook(
        FORM, _body("profile", email="ada@lovelace.io", **{"merges][FNAME": "A"})
    )
    assert first.event_id == again.event_id != other.event_id


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (
            {"Content-Type": "application/json"},
            b'{"type": "profile"}',
            "expected application/x-www-form-urlencoded",
        ),
        (FORM, b"\xff\xfe", "not UTF-8"),
        (FORM, b"type=profile&&=x", "not a form"),
        (FORM, b"fired_at=2026-04-25+14%3A30%3A00", "'type' is missing"),
        (FORM, b"type=profile&fired_at=2026-04-25T14%3A30%3A00Z", "fired_at"),
        (FORM, _body("bounce", email="a@b.io"), "unknown event type 'bounce'"),
        (FORM, _body("profile"), "'data[email]' is missing"),
        (FORM, _body("profile", email="nobody"), "not an email address"),
        (FORM, _body("unsubscribe", email="a@b.io", action="maybe"), "unknown unsubscribe action"),
        (FORM, _body("profile", email="a@b.io").replace(LIST_ID.encode(), b"other"), "audience 'other'"),
    ],
)
def test_malformed_webhook_bodies_raise_value_error_with_the_reason(
    connector: MailchimpConnector, headers: dict[str, str], body: bytes, reason: str
) -> None:
    with pytest.raises(ValueError, match="mailchimp webhook") as raised:
        connector.parse_webhook(headers, body)
    assert reason in str(raised.value)


# -- end to end with the fake ---------------------------------------------------------------------


async def _register(fake: MailchimpFake, receiver: Receiver, sources: dict[str, bool]) -> str:
    url = f"{receiver.url}?secret={WEBHOOK_SECRET}"
    async with httpx.AsyncClient(base_url=fake.url + "/3.0", auth=("syncd", API_KEY)) as api:
        response = await api.post(f"/lists/{LIST_ID}/webhooks", json={"url": url, "sources": sources})
    assert response.status_code == 200, response.text
    return url


async def test_events_delivered_by_the_fake_verify_and_name_the_changed_member(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector, receiver: Receiver
) -> None:
    await _register(fake, receiver, {"user": True, "admin": True, "api": True})
    assert [r.method for r in receiver.requests] == ["GET"], "Mailchimp validates the URL with a GET"
    member_id = fake.seed("ada@lovelace.io", status="pending")
    fake.edit(member_id, status="subscribed", source="user")
    clock.advance(1)
    fake.edit(member_id, email="ada@byron.io")
    fake.edit("ada@byron.io", status="unsubscribed", source="user")
    fake.remove("ada@byron.io", permanent=True)
    await fake.webhooks_idle()
    hints = []
    for request in receiver.posts:
        connector.verify_webhook(request.method, request.url, request.headers, request.body)
        hints += connector.parse_webhook(request.headers, request.body)
    new_id = subscriber_hash("ada@byron.io")
    assert [(h.record_id, h.deleted) for h in hints] == [
        (member_id, False),
        (new_id, False),
        (new_id, False),
        (new_id, True),
    ]
    assert len({h.event_id for h in hints}) == 4


async def test_the_connectors_own_writes_are_not_echoed_when_api_sources_are_off(
    fake: MailchimpFake, connector: MailchimpConnector, receiver: Receiver
) -> None:
    await _register(fake, receiver, {"user": True, "admin": True, "api": False})
    (created,) = await connector.create(
        "members", [WriteItem(key="k1", fields={"email_address": "ada@lovelace.io", "status": "subscribed"})]
    )
    assert created.record is not None
    await connector.update(
        "members", [WriteItem(key="k2", id=created.record.id, fields={"status": "unsubscribed"})]
    )
    await fake.webhooks_idle()
    assert receiver.posts == [], "changes made through the API must not come back when sources.api is off"
    fake.edit(created.record.id, merge_fields={"FNAME": "Ada"}, source="admin")
    await fake.webhooks_idle()
    (delivery,) = receiver.posts
    (hint,) = connector.parse_webhook(delivery.headers, delivery.body)
    assert hint.record_id == created.record.id
