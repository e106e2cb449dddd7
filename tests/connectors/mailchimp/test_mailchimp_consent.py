"""Consent: an unsubscribe always wins; syncd never re-subscribes anyone through the API."""

from __future__ import annotations

import pytest

from syncd.connector import PermanentError, WriteItem
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.mailchimp import MailchimpFake
from syncd_mailchimp import ConsentRefused, MailchimpConnector
from syncd_mailchimp._consent import status_to_write


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("unsubscribed", "subscribed"),
        ("unsubscribed", "pending"),
        ("cleaned", "subscribed"),
        ("cleaned", "pending"),
    ],
)
def test_opted_out_members_are_never_moved_back_to_the_marketing_list(current: str, wanted: str) -> None:
    with pytest.raises(ConsentRefused, match="an unsubscribe always wins"):
        status_to_write("abc", current, wanted)


@pytest.mark.parametrize(
    ("current", "wanted", "sent"),
    [
        (None, "subscribed", "subscribed"),
        (None, "pending", "pending"),
        ("subscribed", "unsubscribed", "unsubscribed"),
        ("pending", "subscribed", "subscribed"),
        ("unsubscribed", "unsubscribed", None),
        ("pending", "pending", None),
        ("cleaned", "unsubscribed", "unsubscribed"),
    ],
)
def test_other_status_changes_are_sent_and_unchanged_statuses_are_not(
    current: str | None, wanted: str, sent: str | None
) -> None:
    assert status_to_write("abc", current, wanted) == sent


@pytest.mark.parametrize("wanted", ["archived", "SUBSCRIBED", None, 1])
def test_statuses_mailchimp_cannot_take_are_refused(wanted: object) -> None:
    with pytest.raises(PermanentError, match="cannot be written"):
        status_to_write("abc", "subscribed", wanted)


async def test_update_never_resubscribes_an_unsubscribed_member_and_changes_nothing(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io", status="unsubscribed", merge_fields={"FNAME": "Ada"})
    item = WriteItem(
        key="k1", id=member_id, fields={"status": "subscribed", "merge_fields": {"FNAME": "Augusta"}}
    )
    (result,) = await connector.update("members", [item])
    assert isinstance(result.error, ConsentRefused)
    assert "signup form" in str(result.error)
    stored = fake.member(member_id)
    assert stored is not None
    assert (stored["status"], stored["merge_fields"]["FNAME"]) == ("unsubscribed", "Ada")
    assert fake.confirmations == []


async def test_a_stale_subscribed_write_loses_to_an_unsubscribe_made_after_the_read(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io", status="subscribed")
    await connector.get("members", [member_id])
    clock.advance(5)
    fake.edit(member_id, status="unsubscribed", source="user")
    item = WriteItem(key="k1", id=member_id, fields={"status": "subscribed"})
    (result,) = await connector.update("members", [item])
    assert isinstance(result.error, ConsentRefused)
    stored = fake.member(member_id)
    assert stored is not None
    assert stored["status"] == "unsubscribed"


async def test_create_adopting_an_unsubscribed_member_does_not_resubscribe_it(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    fake.seed("ada@lovelace.io", status="unsubscribed")
    item = WriteItem(key="k1", fields={"email_address": "ada@lovelace.io", "status": "subscribed"})
    (result,) = await connector.create("members", [item])
    assert isinstance(result.error, ConsentRefused)
    stored = fake.member("ada@lovelace.io")
    assert stored is not None
    assert stored["status"] == "unsubscribed"


async def test_create_without_a_status_leaves_an_existing_members_status_alone(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    fake.seed("ada@lovelace.io", status="cleaned")
    item = WriteItem(key="k1", fields={"email_address": "ada@lovelace.io", "merge_fields": {"FNAME": "Ada"}})
    (result,) = await connector.create("members", [item])
    assert result.ok
    assert result.record is not None
    assert result.record.fields["status"] == "cleaned", "status_if_new applies to new members only"
    assert fake.confirmations == []


async def test_repeated_pending_writes_send_a_single_confirmation_email(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    item = WriteItem(key="k1", fields={"email_address": "ada@lovelace.io", "status": "pending"})
    (created,) = await connector.create("members", [item])
    assert created.record is not None
    (retried,) = await connector.create("members", [item])  # as after a lost response
    assert retried.ok
    for n in range(3):
        again = WriteItem(key=f"u{n}", id=created.record.id, fields={"status": "pending"})
        (result,) = await connector.update("members", [again])
        assert result.ok
    assert fake.confirmations == ["ada@lovelace.io"]


async def test_unsubscribing_through_the_api_is_always_allowed(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io", status="subscribed")
    (result,) = await connector.update(
        "members", [WriteItem(key="k1", id=member_id, fields={"status": "unsubscribed"})]
    )
    assert result.ok
    assert result.record is not None
    assert result.record.fields["status"] == "unsubscribed"
