"""Settings, discovery and check(): the data centre comes from the key; bad settings fail clearly."""

from __future__ import annotations

import pydantic
import pytest
from structlog.testing import capture_logs

import syncd_mailchimp
from syncd.connector import AuthError, ConfigError, load
from syncd_mailchimp import MailchimpConfig, MailchimpConnector

from .conftest import ConnectorFactory


def test_the_connector_is_discovered_through_its_entry_point() -> None:
    assert load("mailchimp") is MailchimpConnector


def test_public_names_are_exactly_the_exported_ones() -> None:
    public = {name for name in dir(syncd_mailchimp) if not name.startswith("_")}
    assert public == set(syncd_mailchimp.__all__)


def test_the_api_root_comes_from_the_data_centre_after_the_last_dash() -> None:
    config = MailchimpConfig(api_key="abc-def-us21", list_id="l1")
    assert config.api_root() == "https://us21.api.mailchimp.com/3.0"


@pytest.mark.parametrize(
    ("base_url", "root"),
    [("http://127.0.0.1:8101", "http://127.0.0.1:8101/3.0"), ("http://h/3.0/", "http://h/3.0")],
)
def test_a_base_url_override_is_the_api_root(base_url: str, root: str) -> None:
    assert MailchimpConfig(api_key="no-dc-here", list_id="l1", base_url=base_url).api_root() == root


def test_a_key_without_a_data_centre_and_no_base_url_is_a_config_error() -> None:
    config = MailchimpConfig(api_key="0123456789abcdef", list_id="l1")
    with pytest.raises(ConfigError, match="data centre"):
        MailchimpConnector(config)


def test_new_members_are_pending_unless_configured_otherwise() -> None:
    assert MailchimpConfig(api_key="k-us1", list_id="l1").status_if_new == "pending"


@pytest.mark.parametrize(
    "bad",
    [
        {"page_size": 1001},
        {"page_size": 0},
        {"delete_mode": "purge"},
        {"status_if_new": "archived"},
        {"max_connections": 11},
    ],
)
def test_out_of_range_settings_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        MailchimpConfig.model_validate({"api_key": "k-us1", "list_id": "l1", **bad})


async def test_check_passes_against_a_healthy_audience(connector: MailchimpConnector) -> None:
    await connector.check()


async def test_check_reports_an_unknown_audience_as_a_config_error(make_connector: ConnectorFactory) -> None:
    with pytest.raises(ConfigError, match="audience 'nope' does not exist"):
        await make_connector(list_id="nope").check()


async def test_check_with_a_rejected_key_raises_auth_error_without_logging_the_key(
    make_connector: ConnectorFactory,
) -> None:
    secret_key = "feedface0123456789-us1"
    with capture_logs() as logs, pytest.raises(AuthError) as raised:
        await make_connector(api_key=secret_key).check()
    assert "API Key Invalid" in str(raised.value)
    assert secret_key not in str(raised.value)
    assert secret_key not in repr(logs)
