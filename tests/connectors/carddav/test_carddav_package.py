"""The package surface: what syncd and third parties may rely on."""

from __future__ import annotations

import pytest

import syncd_carddav
from syncd.connector import CONNECTOR_API_VERSION, WebhookVerificationError, available, load
from syncd_carddav import CardDavConfig, CardDavConnector


def test_public_names_are_exactly_the_sorted_all() -> None:
    public = sorted(name for name in vars(syncd_carddav) if not name.startswith("_"))
    assert syncd_carddav.__all__ == sorted(syncd_carddav.__all__)
    assert public == syncd_carddav.__all__


def test_connector_is_registered_as_carddav_and_speaks_the_current_interface() -> None:
    assert "carddav" in available()
    assert load("carddav") is CardDavConnector
    assert CardDavConnector.api_version == CONNECTOR_API_VERSION
    assert CardDavConnector.config_model is CardDavConfig


def test_capabilities_claim_conditional_writes_and_tombstones_but_no_webhooks() -> None:
    caps = CardDavConnector.capabilities
    assert (caps.incremental, caps.full_listing, caps.conditional_writes, caps.tombstones) == (True,) * 4
    assert not caps.webhooks


def test_webhooks_are_refused_because_carddav_has_none() -> None:
    connector = CardDavConnector(CardDavConfig(url="http://127.0.0.1:9/", username="a", password="b"))
    with pytest.raises(WebhookVerificationError):
        connector.verify_webhook("POST", "http://127.0.0.1/webhooks/carddav", {}, b"{}")
    with pytest.raises(ValueError, match="does not accept webhooks"):
        connector.parse_webhook({}, b"{}")


def test_settings_default_to_eight_parallel_requests() -> None:
    assert CardDavConfig(url="http://127.0.0.1/", username="a", password="b").concurrency == 8
