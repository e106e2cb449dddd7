"""Webhooks: Zendesk's signature (timestamp + body), freshness, rotation, parsing, and real deliveries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web

from syncd.connector import WebhookVerificationError
from syncd.testing.fakes.zendesk import ZendeskFake, sign
from syncd_zendesk import SIGNATURE_HEADER, TIMESTAMP_HEADER, ZendeskConnector

from .conftest import SECRET, ConnectorFactory

URL = "https://syncd.example/webhooks/zendesk"


def _stamp(offset: float = 0.0) -> str:
    return datetime.fromtimestamp(int(time.time() + offset), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(user_id: str = "1000002", kind: str = "user.name_changed", event_id: str = "evt-1") -> bytes:
    return json.dumps(
        {
            "account_id": 1,
            "detail": {"id": user_id, "email": "ada@lovelace.io", "role": "end-user"},
            "event": {"current": "Ada", "previous": "A."},
            "id": event_id,
            "subject": f"zen:user:{user_id}",
            "time": "2026-03-02T09:00:00Z",
            "type": f"zen:event-type:{kind}",
            "zendesk_event_version": "2022-11-06",
        }
    ).encode()


def _headers(body: bytes, *, secret: str = SECRET, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or _stamp()
    return {
        "X-Zendesk-Webhook-Signature": sign(secret, stamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }


def test_a_correctly_signed_event_is_accepted_and_names_the_user(connector: ZendeskConnector) -> None:
    body = _event()
    connector.verify_webhook("POST", URL, _headers(body), body)
    (hint,) = connector.parse_webhook({}, body)
    assert (hint.object, hint.record_id, hint.deleted, hint.event_id) == (
        "users",
        "1000002",
        False,
        "zendesk:evt-1",
    )


def test_a_tampered_body_is_rejected(connector: ZendeskConnector) -> None:
    body = _event()
    headers = _headers(body)
    with pytest.raises(WebhookVerificationError, match="signature"):
        connector.verify_webhook("POST", URL, headers, body.replace(b"Ada", b"Eve"))


def test_a_signature_over_the_body_alone_without_the_timestamp_is_rejected(
    connector: ZendeskConnector,
) -> None:
    body = _event()
    headers = _headers(body)
    headers["X-Zendesk-Webhook-Signature"] = sign(SECRET, "", body)
    with pytest.raises(WebhookVerificationError):
        connector.verify_webhook("POST", URL, headers, body)


@pytest.mark.parametrize("offset", [-600.0, 600.0])
def test_a_stale_or_future_timestamp_is_rejected_even_when_correctly_signed(
    connector: ZendeskConnector, offset: float
) -> None:
    body = _event()
    with pytest.raises(WebhookVerificationError, match="stale or replayed"):
        connector.verify_webhook("POST", URL, _headers(body, stamp=_stamp(offset)), body)


def test_missing_signature_headers_are_rejected(connector: ZendeskConnector) -> None:
    with pytest.raises(WebhookVerificationError, match="missing"):
        connector.verify_webhook("POST", URL, {}, _event())


def test_the_previous_secret_is_accepted_during_rotation_and_others_are_not(
    make_connector: ConnectorFactory,
) -> None:
    rotated = make_connector(webhook_secret="new-secret", previous_webhook_secrets=[SECRET])
    body = _event()
    rotated.verify_webhook("POST", URL, _headers(body, secret=SECRET), body)
    rotated.verify_webhook("POST", URL, _headers(body, secret="new-secret"), body)
    with pytest.raises(WebhookVerificationError):
        rotated.verify_webhook("POST", URL, _headers(body, secret="some-other-secret"), body)


def test_without_a_configured_secret_every_webhook_is_refused(make_connector: ConnectorFactory) -> None:
    body = _event()
    with pytest.raises(WebhookVerificationError, match="no webhook_secret"):
        make_connector(webhook_secret=None).verify_webhook("POST", URL, _headers(body), body)


def test_deletion_events_become_deleted_hints(connector: ZendeskConnector) -> None:
    (deleted,) = connector.parse_webhook({}, _event(kind="user.deleted"))
    assert deleted.deleted
    inactive = json.loads(_event(kind="user.active_changed"))
    inactive["event"] = {"current": False, "previous": True}
    (hint,) = connector.parse_webhook({}, json.dumps(inactive).encode())
    assert hint.deleted


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"type": "something"}', b'{"type": "zen:event-type:user.created", "id": "e"}'],
)
def test_malformed_bodies_raise_value_error(connector: ZendeskConnector, body: bytes) -> None:
    with pytest.raises(ValueError, match="zendesk webhook"):
        connector.parse_webhook({}, body)


def test_events_about_unserved_objects_yield_no_hints(make_connector: ConnectorFactory) -> None:
    users_only = make_connector(objects=["users"])
    org_event = json.loads(_event())
    org_event.update(type="zen:event-type:organization.created", subject="zen:organization:5")
    org_event["detail"] = {"id": "5"}
    assert users_only.parse_webhook({}, json.dumps(org_event).encode()) == []


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]], asyncio.Event]]:
    received: list[tuple[dict[str, str], bytes]] = []
    arrived = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        arrived.set()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks/zendesk", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/webhooks/zendesk", received, arrived
    finally:
        await runner.cleanup()


async def test_the_fake_delivers_signed_events_the_connector_verifies_for_create_update_and_delete(
    fake: ZendeskFake,
    connector: ZendeskConnector,
    receiver: tuple[str, list[tuple[dict[str, str], bytes]], asyncio.Event],
) -> None:
    url, received, _ = receiver
    fake.webhook_url = url
    from syncd.connector import WriteItem

    (created,) = await connector.create(
        "users", [WriteItem(key="k", fields={"name": "Ada", "email": "a@lovelace.io"})]
    )
    assert created.record is not None
    uid = created.record.id
    await connector.update("users", [WriteItem(key="u", fields={"name": "Ada L."}, id=uid)])
    await connector.delete("users", [WriteItem(key="d", fields={}, id=uid)])
    await fake.webhooks_idle()
    kinds = []
    for headers, body in received:
        assert SIGNATURE_HEADER in {k.lower() for k in headers}
        assert TIMESTAMP_HEADER in {k.lower() for k in headers}
        connector.verify_webhook("POST", url, headers, body)
        (hint,) = connector.parse_webhook(headers, body)
        assert hint.record_id == uid
        kinds.append((json.loads(body)["type"].rsplit(":", 1)[1], hint.deleted))
    assert kinds[0] == ("user.created", False)
    assert ("user.name_changed", False) in kinds
    assert kinds[-1] == ("user.deleted", True)
