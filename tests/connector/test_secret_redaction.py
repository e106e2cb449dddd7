"""Secret redaction: credential-named keys and registered secrets never reach a log line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from syncd.connector.http import HttpClient
from syncd.connector.redact import MASK, forget_secret, redact_secrets, redact_text, register_secret


@pytest.fixture
def secret() -> Iterator[str]:
    value = "pat-na1-7b1c2d3e4f"
    register_secret(value)
    yield value
    forget_secret(value)


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "x-api-key",
        "api_key",
        "apikey",
        "client_secret",
        "password",
        "access_token",
        "Cookie",
    ],
)
def test_values_of_credential_named_keys_are_masked(key: str) -> None:
    event = redact_secrets(None, "info", {"event": "call", key: "anything-at-all"})
    assert event[key] == MASK


def test_nested_headers_and_lists_are_masked_too() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "call",
            "request": {"headers": {"Authorization": "Bearer abc"}, "attempts": [{"token": "t1"}]},
        },
    )
    assert event["request"] == {"headers": {"Authorization": MASK}, "attempts": [{"token": MASK}]}


def test_ordinary_fields_pass_through_unchanged() -> None:
    event = {"event": "sync", "email": "ann@example.com", "count": 3, "token_count": 12, "empty_token": ""}
    assert redact_secrets(None, "info", dict(event)) == event


def test_a_registered_secret_is_masked_wherever_it_appears(secret: str) -> None:
    event = redact_secrets(
        None,
        "warning",
        {
            "event": f"request failed with {secret}",
            "url": f"https://api.test/?hapikey={secret}",
            "detail": ("prefix", [secret]),
            "error": ValueError(f"bad key {secret}"),
        },
    )
    assert secret not in repr(event)
    assert event["url"] == f"https://api.test/?hapikey={MASK}"
    assert event["error"] == f"ValueError: bad key {MASK}"


def test_a_short_secret_is_masked_only_as_a_whole_value() -> None:
    register_secret("ab1")
    try:
        assert redact_text("ab1") == MASK
        assert redact_text("tab1e") == "tab1e", "masking every 3-letter substring would garble logs"
    finally:
        forget_secret("ab1")


def test_a_forgotten_secret_is_no_longer_masked() -> None:
    register_secret("rotated-out-secret")
    forget_secret("rotated-out-secret")
    assert redact_text("rotated-out-secret") == "rotated-out-secret"


async def test_client_credentials_are_registered_so_a_careless_log_line_is_masked() -> None:
    token = "hubspot-private-app-token-93ab"
    password = "mailchimp-api-key-us21-x7"
    async with (
        HttpClient(app="a", base_url="http://a.test", headers={"Authorization": f"Bearer {token}"}),
        HttpClient(app="b", base_url="http://b.test", auth=("anystring", password)),
    ):
        log = structlog.get_logger("syncd.connector")
        with capture_logs(processors=[redact_secrets]) as logs:
            log.info("debugging", note=f"using {token} and {password}", header=f"Bearer {token}")
    assert logs == [
        {
            "event": "debugging",
            "note": f"using {MASK} and {MASK}",
            "header": MASK,
            "log_level": "info",
        }
    ]
