"""Records known from propertyChange webhooks: a webhook costs no re-read when its values suffice.

Against the fake: the connector reads a contact in full, a person edits it, the signed delivery
is parsed, and ``records_from_webhooks`` answers with the new values, or declines (the record is
then re-read) when the events cannot tell the whole story.
"""

from __future__ import annotations

import json
from typing import Any

from syncd.testing.fakes.hubspot import HubSpotFake
from syncd_hubspot import HubSpotConnector

from .conftest import WebhookReceiver


async def _deliver(fake: HubSpotFake, receiver: WebhookReceiver, connector: HubSpotConnector) -> list[str]:
    """Parse every delivery the fake made since the last call; the ids its hints name."""
    await fake.webhooks_idle()
    ids: list[str] = []
    for _, _, headers, body in receiver.received:
        ids += [h.record_id for h in connector.parse_webhook(headers, body)]
    receiver.received.clear()
    return ids


def _event(object_id: str, name: str, value: str, at_ms: int, event_id: int = 1, **extra: Any) -> bytes:
    return json.dumps(
        [
            {
                "eventId": event_id,
                "subscriptionId": 7,
                "portalId": 62515,
                "occurredAt": at_ms,
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": int(object_id),
                "propertyName": name,
                "propertyValue": value,
                **extra,
            }
        ]
    ).encode()


async def test_a_property_change_of_a_record_read_before_is_known_without_a_re_read(
    fake: HubSpotFake, receiver: WebhookReceiver, connector: HubSpotConnector
) -> None:
    ada = fake.seed({"email": "ada@example.com", "firstname": "Ada", "lastname": "Byron"})
    await connector.get("contacts", [ada])
    fake.edit(ada, {"firstname": "Augusta"})
    ids = await _deliver(fake, receiver, connector)
    reads = len(fake.captured)
    (record,) = connector.records_from_webhooks("contacts", ids)
    assert len(fake.captured) == reads, "no call to HubSpot"
    assert record.fields["properties"]["firstname"] == "Augusta"
    assert record.fields["properties"]["lastname"] == "Byron", "the other properties as read"
    assert record.version is None, "unevented changes may exist: the record claims no version"
    assert record.updated_at is not None
    assert connector.records_from_webhooks("contacts", ids) == [], "each change is told once"


async def test_out_of_order_and_repeated_deliveries_end_on_the_newest_value(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    ada = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
    (read,) = await connector.get("contacts", [ada])
    assert read.updated_at is not None
    base = int(read.updated_at.timestamp() * 1000)
    newer, older = (
        _event(ada, "firstname", "Second", base + 20, 2),
        _event(ada, "firstname", "First", base + 10, 1),
    )
    for body in (newer, older, newer, older):
        connector.parse_webhook({}, body)
    (record,) = connector.records_from_webhooks("contacts", [ada])
    assert record.fields["properties"]["firstname"] == "Second"


async def test_a_change_older_than_the_read_copy_does_not_overwrite_it(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    ada = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
    (read,) = await connector.get("contacts", [ada])
    assert read.updated_at is not None
    connector.parse_webhook(
        {}, _event(ada, "firstname", "Stale", int(read.updated_at.timestamp() * 1000) - 5)
    )
    (record,) = connector.records_from_webhooks("contacts", [ada])
    assert record.fields["properties"]["firstname"] == "Ada"


async def test_a_cleared_property_reads_as_unset_like_a_full_read_says(
    fake: HubSpotFake, receiver: WebhookReceiver, connector: HubSpotConnector
) -> None:
    ada = fake.seed({"email": "ada@example.com", "firstname": "Ada", "lastname": "Byron"})
    await connector.get("contacts", [ada])
    fake.edit(ada, {"lastname": ""})
    (record,) = connector.records_from_webhooks("contacts", await _deliver(fake, receiver, connector))
    (fresh,) = await connector.get("contacts", [ada])
    assert record.fields["properties"]["lastname"] is None
    assert record.fields == fresh.fields


async def test_records_never_read_or_with_other_events_are_left_to_a_re_read(
    fake: HubSpotFake, receiver: WebhookReceiver, connector: HubSpotConnector
) -> None:
    unread = fake.seed({"email": "new@example.com", "firstname": "New"})
    ada = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
    await connector.get("contacts", [ada])
    fake.edit(unread, {"firstname": "Changed"})
    fake.archive(ada)
    fake.restore(ada)
    fake.edit(ada, {"firstname": "Back"})
    ids = await _deliver(fake, receiver, connector)
    assert connector.records_from_webhooks("contacts", ids) == []
    await connector.get("contacts", [ada])  # the re-read
    fake.edit(ada, {"firstname": "Again"})
    (record,) = connector.records_from_webhooks("contacts", await _deliver(fake, receiver, connector))
    assert record.fields["properties"]["firstname"] == "Again", "after the re-read, values suffice again"


async def test_a_change_of_a_property_syncd_does_not_read_is_no_news(
    fake: HubSpotFake, receiver: WebhookReceiver, connector: HubSpotConnector
) -> None:
    ada = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
    await connector.get("contacts", [ada])
    connector.parse_webhook({}, _event(ada, "hs_lead_status", "NEW", 2_000_000_000_000))
    assert connector.records_from_webhooks("contacts", [ada]) == []


async def test_a_property_change_without_its_value_is_re_read_never_taken_as_a_cleared_property(
    fake: HubSpotFake, connector: HubSpotConnector
) -> None:
    ada = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
    (read,) = await connector.get("contacts", [ada])
    assert read.updated_at is not None
    body = json.loads(_event(ada, "firstname", "unused", int(read.updated_at.timestamp() * 1000) + 10))
    del body[0]["propertyValue"]
    connector.parse_webhook({}, json.dumps(body).encode())
    assert connector.records_from_webhooks("contacts", [ada]) == [], "a value it was not told"
