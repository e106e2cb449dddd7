"""``syncd run`` as a subprocess: empty secrets stop it, rotated secrets keep webhooks working."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.testing.fakes.hubspot import HubSpotFake, sign_v3

from .harness import (
    ADMIN_TOKEN,
    CRM_MAPPING,
    DaemonProcess,
    SqlTable,
    base_env,
    sql_app,
    wait_for,
    write_config,
)

ROOT = Path(__file__).resolve().parents[2]
HS_TOKEN = "pat-na1-daemon-secrets-7730"
NEW_SECRET = "hubspot-client-secret-new-4410"
OLD_SECRET = "hubspot-client-secret-old-9921"
MC_KEY = "0123456789abcdef0123456789abcdef-us1"


def _crm(url: str = "http://127.0.0.1:9", **settings: Any) -> dict[str, Any]:
    return {
        "connector": "hubspot",
        "poll_interval": 3600.0,
        "settings": {"base_url": url, "properties": ["email", "firstname"], **settings},
    }


async def _refused(config: Path, env: Mapping[str, str]) -> str:
    """Run ``syncd run``, expect exit code 2 before it serves; its output."""
    daemon = DaemonProcess(config, dict(env))
    daemon.spawn()
    try:
        assert await daemon.wait_exit(30) == 2, daemon.log_text()
    finally:
        daemon.kill()
    assert not daemon.ready_file.exists()
    return daemon.log_text()


@pytest.mark.parametrize(
    ("token", "reason"),
    [("", "the admin token is empty"), ("   ", "the admin token is empty"), ("abc123", "6 characters")],
)
async def test_syncd_run_refuses_to_start_with_an_empty_or_short_admin_token(
    tmp_path: Path, token: str, reason: str
) -> None:
    product = SqlTable.create(tmp_path / "product.db")
    config = write_config(
        tmp_path, apps={"crm": _crm(), "product": sql_app(product, 3600.0)}, mapping=CRM_MAPPING
    )
    env = base_env(
        SYNCD_DAEMON__ADMIN_TOKEN=token,
        SYNCD_APPS__CRM__SETTINGS__TOKEN=HS_TOKEN,
        SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET=NEW_SECRET,
    )
    text = await _refused(config, env)
    assert f"{config}: daemon.admin_token: " in text
    assert reason in text


async def test_syncd_run_refuses_to_start_with_a_blank_admin_token_file(tmp_path: Path) -> None:
    product = SqlTable.create(tmp_path / "product.db")
    (tmp_path / "admin-token").write_text(" \n\n")
    config = write_config(
        tmp_path,
        apps={"crm": _crm(), "product": sql_app(product, 3600.0)},
        mapping=CRM_MAPPING,
        daemon={"admin_token_file": "admin-token"},
    )
    env = base_env(
        SYNCD_APPS__CRM__SETTINGS__TOKEN=HS_TOKEN, SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET=NEW_SECRET
    )
    text = await _refused(config, env)
    assert f"{config}: daemon.admin_token: the admin token is empty" in text


@pytest.mark.parametrize("secret", ["", "  "])
async def test_syncd_run_refuses_empty_webhook_secrets_of_every_connector(
    tmp_path: Path, secret: str
) -> None:
    email = {"connector": "mailchimp", "poll_interval": 3600.0, "settings": {"list_id": "a1b2c3d4e5"}}
    config = write_config(
        tmp_path,
        apps={"crm": _crm(), "email": email},
        mapping=(ROOT / "mappings" / "contacts.toml").read_text(),
    )
    env = base_env(
        SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN,
        SYNCD_APPS__CRM__SETTINGS__TOKEN=HS_TOKEN,
        SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET=secret,
        SYNCD_APPS__EMAIL__SETTINGS__API_KEY=MC_KEY,
        SYNCD_APPS__EMAIL__SETTINGS__WEBHOOK_SECRET=secret,
    )
    text = await _refused(config, env)
    assert f"{config}: apps.crm.settings.client_secret: " in text
    assert f"{config}: apps.email.settings.webhook_secret: " in text
    assert "webhook secret cannot be empty" in text


@pytest.fixture
async def hubspot() -> AsyncIterator[HubSpotFake]:
    fake = HubSpotFake(token=HS_TOKEN, client_secret=OLD_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.mark.parametrize("how", ["env-json-list", "file-one-per-line"])
async def test_webhook_signed_with_a_previous_client_secret_verifies_and_is_applied(
    tmp_path: Path, hubspot: HubSpotFake, how: str
) -> None:
    ada = hubspot.seed({"email": "ada@example.com", "firstname": "Ada"})
    product = SqlTable.create(tmp_path / "product.db")
    env = base_env(
        SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN,
        SYNCD_APPS__CRM__SETTINGS__TOKEN=HS_TOKEN,
        SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET=NEW_SECRET,
    )
    settings: dict[str, Any] = {}
    if how == "env-json-list":
        env["SYNCD_APPS__CRM__SETTINGS__PREVIOUS_CLIENT_SECRETS"] = json.dumps(
            ["retired-long-ago-1", OLD_SECRET]
        )
    else:
        (tmp_path / "old-secrets").write_text(f"retired-long-ago-1\n{OLD_SECRET}\n")
        settings["previous_client_secrets_file"] = "old-secrets"
    config = write_config(
        tmp_path,
        apps={"crm": _crm(hubspot.url, **settings), "product": sql_app(product, 3600.0)},
        mapping=CRM_MAPPING,
    )
    daemon = await DaemonProcess(config, env).start()
    try:
        await wait_for(lambda: product.names() == {"ada@example.com": "Ada"}, 15, what="the first sync")
        # HubSpot still signs with the old secret: its webhook must verify and be applied.
        hubspot.edit(ada, {"firstname": "Augusta"})
        hook = f"{daemon.url}/webhooks/crm"
        ms = int(time.time() * 1000)
        event = {
            "eventId": 5101,
            "subscriptionId": 4002,
            "portalId": hubspot.portal_id,
            "occurredAt": ms,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": int(ada),
            "propertyName": "firstname",
        }
        body = json.dumps([event]).encode()
        async with httpx.AsyncClient(timeout=10) as client:
            for secret, status in ((OLD_SECRET, 200), ("never-configured-secret", 401)):
                headers = {
                    "X-HubSpot-Signature-v3": sign_v3(secret, "POST", hook, body, ms),
                    "X-HubSpot-Request-Timestamp": str(ms),
                    "Content-Type": "application/json",
                }
                response = await client.post(hook, content=body, headers=headers)
                assert response.status_code == status, response.text
        await wait_for(
            lambda: product.name_of("ada@example.com") == "Augusta", 10, what="the webhook's write"
        )
        assert await daemon.stop() == 0
        assert OLD_SECRET not in daemon.log_text()
    finally:
        daemon.kill()
