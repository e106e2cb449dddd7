"""Settings, discovery, authentication (API token vs OAuth) and check()."""

from __future__ import annotations

import pydantic
import pytest
from structlog.testing import capture_logs

import syncd_zendesk
from syncd.connector import AuthError, load
from syncd.testing.fakes.zendesk import ZendeskFake
from syncd_zendesk import ZendeskConfig, ZendeskConnector

from .conftest import AGENT, OAUTH, TOKEN, ConnectorFactory


def test_the_connector_is_discovered_through_its_entry_point() -> None:
    assert load("zendesk") is ZendeskConnector


def test_public_names_are_exactly_the_exported_ones() -> None:
    public = {name for name in vars(syncd_zendesk) if not name.startswith("_")}
    assert public == set(syncd_zendesk.__all__)


def test_the_api_root_comes_from_the_subdomain_or_the_base_url() -> None:
    config = ZendeskConfig(subdomain="lovelace", email=AGENT, api_token=TOKEN)
    assert config.api_root() == "https://lovelace.zendesk.com/api/v2"
    proxied = ZendeskConfig(base_url="http://127.0.0.1:9/", oauth_token=OAUTH)
    assert proxied.api_root() == "http://127.0.0.1:9/api/v2"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"subdomain": "x"}, "email \\+ api_token"),
        ({"subdomain": "x", "email": AGENT}, "both email and api_token"),
        ({"subdomain": "x", "email": AGENT, "api_token": TOKEN, "oauth_token": OAUTH}, "not both"),
        ({"email": AGENT, "api_token": TOKEN}, "subdomain"),
        ({"subdomain": "https://x.zendesk.com", "oauth_token": OAUTH}, "first label"),
        ({"subdomain": "x", "oauth_token": OAUTH, "overlap_seconds": 30}, "overlap_seconds"),
    ],
)
def test_incomplete_or_contradictory_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        ZendeskConfig.model_validate(settings)


@pytest.mark.parametrize("auth", ["basic", "bearer"])
async def test_check_authenticates_with_an_api_token_or_an_oauth_token(
    fake: ZendeskFake, make_connector: ConnectorFactory, auth: str
) -> None:
    await make_connector(auth=auth).check()
    assert fake.hits[-1].auth == auth
    assert fake.hits[-1].path == "/api/v2/users/me"


@pytest.mark.parametrize("auth", ["basic", "bearer"])
async def test_rejected_credentials_raise_auth_error_without_retrying(
    fake: ZendeskFake, make_connector: ConnectorFactory, auth: str
) -> None:
    if auth == "basic":
        fake.api_token = "rotated-token"
    else:
        fake.oauth_token = "revoked-token"
    with pytest.raises(AuthError) as caught:
        await make_connector(auth=auth).check()
    assert caught.value.status == 401
    assert fake.hits == [], "a rejected request must not be counted as served"


async def test_the_api_token_never_reaches_the_logs(
    fake: ZendeskFake, make_connector: ConnectorFactory
) -> None:
    fake.api_token = "rotated-token"
    with capture_logs() as logs, pytest.raises(AuthError) as caught:
        await make_connector().check()
    assert TOKEN not in repr(logs)
    assert TOKEN not in str(caught.value)


async def test_an_end_user_token_is_refused_by_check(
    fake: ZendeskFake, make_connector: ConnectorFactory
) -> None:
    owner = next(u for u in fake.users.values() if u.role == "admin")
    owner.role = "end-user"
    with pytest.raises(AuthError, match="agent or admin"):
        await make_connector().check()
