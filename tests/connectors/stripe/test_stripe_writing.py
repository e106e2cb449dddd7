"""Writes: idempotent creates, 429 handling, partial updates, deletes and erasure, lookups by email."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from syncd.connector import AuthError, NotFound, PermanentError, TransientError, WriteItem
from syncd.connector.http import RetryPolicy
from syncd_stripe import IdempotencyError, StripeConnector, form, idempotency_key

from .conftest import ConnectorFactory, LocalStripe, LoseResponses
from .edge import StripeEdge

KEY = "contacts:42:stripe:create:5f0c2a"


# -- idempotent creates ----------------------------------------------------------------------


async def test_a_create_retried_after_a_lost_response_makes_one_customer(
    edge: StripeEdge, localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    lose = LoseResponses("POST", "/v1/customers")
    connector = make_connector(edge.url, transport=lose)
    (result,) = await connector.create(
        "customers", [WriteItem(key=KEY, fields={"email": "once@lovelace.io"})]
    )
    assert lose.lost == 1, "the first attempt's response should have been lost"
    assert result.ok
    assert result.record is not None
    assert edge.creates() == [idempotency_key(KEY)] * 2, "the retry must resend the same Idempotency-Key"
    (stored,) = await localstripe.customers("once@lovelace.io")
    assert stored["id"] == result.record.id


async def test_without_idempotency_replay_the_same_retry_would_make_two_customers(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    # localstripe ignores Idempotency-Key: this shows the test above guards a real hazard.
    connector = make_connector(localstripe.url, transport=LoseResponses("POST", "/v1/customers"))
    (result,) = await connector.create(
        "customers", [WriteItem(key=KEY, fields={"email": "twice@lovelace.io"})]
    )
    assert result.ok
    assert len(await localstripe.customers("twice@lovelace.io")) == 2


async def test_a_write_resent_with_the_same_key_gets_the_same_customer(
    edge: StripeEdge, localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(edge.url)
    item = WriteItem(key=KEY, fields={"email": "same@lovelace.io", "name": "Ada"})
    (first,) = await connector.create("customers", [item])
    (again,) = await connector.create("customers", [item])
    other = await connector.create(
        "customers", [WriteItem(key=KEY + "x", fields={"email": "other@lovelace.io"})]
    )
    assert first.record is not None
    assert again.record is not None
    assert other[0].record is not None
    assert again.record.id == first.record.id
    assert other[0].record.id != first.record.id
    assert len(await localstripe.customers("same@lovelace.io")) == 1


def test_idempotency_keys_are_stable_distinct_and_within_stripes_255_characters() -> None:
    assert idempotency_key(KEY) == idempotency_key(KEY) == f"syncd-{KEY}"
    assert idempotency_key(KEY) != idempotency_key(KEY + "1")
    long_key = "x" * 400
    assert len(idempotency_key(long_key)) <= 255
    assert idempotency_key(long_key) != idempotency_key(long_key + "y")
    assert idempotency_key("clé-ü").isascii()


async def test_a_create_stamps_its_write_key_in_metadata(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    fields = {"email": "meta@lovelace.io", "metadata": {"crm_id": "42"}}
    (result,) = await connector.create("customers", [WriteItem(key=KEY, fields=fields)])
    (stored,) = await localstripe.customers("meta@lovelace.io")
    assert stored["metadata"] == {"crm_id": "42", "syncd_id": KEY}
    assert result.record is not None
    assert result.record.fields["metadata"] == stored["metadata"]


# -- rate limits -----------------------------------------------------------------------------


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def test_a_429_with_retry_after_is_waited_out_then_the_call_succeeds(
    edge: StripeEdge, make_connector: ConnectorFactory
) -> None:
    waits = Waits()
    retry = RetryPolicy(attempts=4, base_delay=0.5, max_delay=30.0, jitter=0.0)
    connector = make_connector(edge.url, sleep=waits, retry=retry)
    edge.throttle(2, retry_after="7")
    (result,) = await connector.create(
        "customers", [WriteItem(key=KEY, fields={"email": "slow@lovelace.io"})]
    )
    assert result.ok
    assert [s for s in waits.seconds if s >= 1] == [7.0, 7.0]


async def test_a_429_without_retry_after_backs_off_exponentially(
    edge: StripeEdge, make_connector: ConnectorFactory
) -> None:
    waits = Waits()
    retry = RetryPolicy(attempts=4, base_delay=0.5, max_delay=30.0, jitter=0.0)
    connector = make_connector(edge.url, sleep=waits, retry=retry)
    edge.throttle(3)
    assert await connector.get("customers", ["cus_Nobody"]) == []
    assert [s for s in waits.seconds if s >= 0.5] == [0.5, 1.0, 2.0]


async def test_persistent_429s_surface_as_a_transient_error(
    edge: StripeEdge, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(
        edge.url, sleep=Waits(), retry=RetryPolicy(attempts=2, base_delay=0.1, jitter=0.0)
    )
    edge.throttle(5)
    with pytest.raises(TransientError, match="429"):
        await connector.check()


def test_the_default_rate_limit_is_stripes_25_requests_per_second() -> None:
    from syncd_stripe import StripeConfig

    connector = StripeConnector(StripeConfig(secret_key="sk_test_x"))
    assert connector.config.requests_per_second == 25.0
    limiter = connector.api.http.rate_limiter
    assert limiter is not None
    assert limiter.rate == 25.0
    assert connector.capabilities.requests_per_second == 25.0


# -- updates ---------------------------------------------------------------------------------


async def test_an_update_sends_only_changed_fields_and_keeps_other_address_lines(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    customer = await localstripe.call(
        "POST",
        "/v1/customers",
        {
            "email": "addr@lovelace.io",
            "name": "Ada",
            "address": {"line1": "1 Main St", "city": "Oslo", "country": "NO"},
        },
    )
    (result,) = await connector.update(
        "customers",
        [WriteItem(key="u1", id=customer["id"], fields={"address": {"city": "Bergen"}, "name": "Ada"})],
    )
    assert result.ok
    assert result.record is not None
    assert result.record.fields["address"] == {"line1": "1 Main St", "city": "Bergen", "country": "NO"}
    (stored,) = await localstripe.customers("addr@lovelace.io")
    assert stored["address"]["line1"] == "1 Main St"
    assert stored["name"] == "Ada"


async def test_cleared_fields_and_metadata_keys_read_back_as_cleared(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    customer = await localstripe.call(
        "POST",
        "/v1/customers",
        {"email": "clear@lovelace.io", "phone": "+4720000000", "metadata": {"a": "1", "b": "2"}},
    )
    (result,) = await connector.update(
        "customers", [WriteItem(key="u1", id=customer["id"], fields={"phone": None, "metadata": {"a": None}})]
    )
    assert result.record is not None
    (read,) = await connector.get("customers", [customer["id"]])
    assert read.fields["phone"] is None
    assert read.fields["metadata"] == {"b": "2"}
    assert read.version == result.record.version


async def test_an_update_with_nothing_to_change_sends_no_write(
    edge: StripeEdge, localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(edge.url)
    customer = await localstripe.call("POST", "/v1/customers", {"email": "same2@lovelace.io", "name": "Ada"})
    (result,) = await connector.update(
        "customers", [WriteItem(key="u1", id=customer["id"], fields={"name": "Ada"})]
    )
    assert result.ok
    assert not [r for r in edge.requests if r[0] == "POST"]


async def test_a_stale_expected_version_is_refused_before_writing(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    customer = await localstripe.call("POST", "/v1/customers", {"email": "race@lovelace.io", "name": "Ada"})
    (before,) = await connector.get("customers", [customer["id"]])
    await localstripe.call("POST", f"/v1/customers/{customer['id']}", {"name": "Changed by hand"})
    item = WriteItem(key="u1", id=customer["id"], fields={"name": "Ours"}, expected_version=before.version)
    (result,) = await connector.update("customers", [item])
    assert result.error is not None
    assert type(result.error).__name__ == "PreconditionFailed"
    (stored,) = await localstripe.customers("race@lovelace.io")
    assert stored["name"] == "Changed by hand"


# -- deletes and erasure ---------------------------------------------------------------------


async def test_delete_is_refused_per_item_unless_allowed(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    customer = await localstripe.call("POST", "/v1/customers", {"email": "keep@lovelace.io"})
    (result,) = await connector.delete("customers", [WriteItem(key="d1", id=customer["id"], fields={})])
    assert isinstance(result.error, PermanentError)
    assert "allow_delete" in result.error.message
    assert len(await localstripe.customers("keep@lovelace.io")) == 1


async def test_erase_deletes_for_good_and_counts_a_missing_customer_as_erased(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    customer = await localstripe.call("POST", "/v1/customers", {"email": "gone@lovelace.io"})
    results = await connector.erase(
        "customers",
        [WriteItem(key=f"erase:{i}", id=i, fields={}) for i in (customer["id"], "cus_NeverExisted")],
    )
    assert [(r.key, r.ok) for r in results] == [
        (f"erase:{customer['id']}", True),
        ("erase:cus_NeverExisted", True),
    ]
    assert all(r.record is not None and r.record.deleted for r in results)
    assert await localstripe.customers("gone@lovelace.io") == []


# -- find by email ---------------------------------------------------------------------------


async def test_find_returns_every_customer_sharing_an_email_by_default(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    ids = [
        (await localstripe.call("POST", "/v1/customers", {"email": "dup@lovelace.io"}))["id"]
        for _ in range(2)
    ]
    await localstripe.call("POST", "/v1/customers", {"email": "Dup@Lovelace.io"})
    await localstripe.call("POST", "/v1/customers", {"email": "other@lovelace.io"})
    found = await connector.find("customers", "email", [" DUP@lovelace.IO "])
    # Stripe's email filter is case-sensitive: the value as given and its lower case are asked for.
    assert sorted(r.id for r in found) == sorted(ids)


def _customer(cid: str, created: int, email: str = "dup@lovelace.io") -> dict[str, Any]:
    return {"id": cid, "object": "customer", "email": email, "created": created, "metadata": {}}


@respx.mock
async def test_find_with_duplicate_email_newest_returns_only_the_latest_created(
    make_connector: ConnectorFactory,
) -> None:
    # localstripe stamps creation to the second, so the order of creation is set here.
    listing = {
        "object": "list",
        "has_more": False,
        "data": [_customer("cus_B", 300), _customer("cus_C", 200), _customer("cus_A", 100)],
    }
    respx.get("https://api.stripe.test/v1/customers").mock(return_value=httpx.Response(200, json=listing))
    for cid in ("cus_A", "cus_B", "cus_C"):
        empty = {"object": "list", "has_more": False, "data": []}
        respx.get("https://api.stripe.test/v1/subscriptions", params={"customer": cid}).mock(
            return_value=httpx.Response(200, json=empty)
        )
        respx.get("https://api.stripe.test/v1/invoices", params={"customer": cid}).mock(
            return_value=httpx.Response(200, json=empty)
        )
    every = make_connector("https://api.stripe.test")
    newest = make_connector("https://api.stripe.test", duplicate_email="newest")
    assert sorted(r.id for r in await every.find("customers", "email", ["dup@lovelace.io"])) == [
        "cus_A",
        "cus_B",
        "cus_C",
    ]
    assert [r.id for r in await newest.find("customers", "email", ["dup@lovelace.io"])] == ["cus_B"]


async def test_find_by_another_path_is_a_config_error(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    from syncd.connector import ConfigError

    with pytest.raises(ConfigError, match="email only"):
        await make_connector(localstripe.url).find("customers", "name", ["Ada"])


# -- wire format and errors ------------------------------------------------------------------


def test_nested_fields_are_form_encoded_with_brackets() -> None:
    fields = {
        "email": "a@b.io",
        "metadata": {"plan": "pro", "gone": None},
        "preferred_locales": ["en", "fr"],
        "address": {},
    }
    assert form(fields) == {
        "email": "a@b.io",
        "metadata[plan]": "pro",
        "metadata[gone]": "",
        "preferred_locales[0]": "en",
        "preferred_locales[1]": "fr",
        "address": "",
    }


def _error(
    status: int, type_: str, code: str | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"error": {"type": type_, "message": f"{type_} happened", **({"code": code} if code else {})}}
    return httpx.Response(status, json=body, headers=headers or {})


@respx.mock
async def test_stripe_errors_become_the_right_typed_errors(make_connector: ConnectorFactory) -> None:
    route = respx.post("https://api.stripe.test/v1/customers")
    connector = make_connector("https://api.stripe.test", sleep=Waits())
    cases = [
        (_error(400, "idempotency_error"), IdempotencyError),
        (_error(402, "card_error", "card_declined"), PermanentError),
        (_error(400, "invalid_request_error", "parameter_unknown"), PermanentError),
        (_error(500, "api_error", headers={"Stripe-Should-Retry": "false"}), PermanentError),
    ]
    for response, expected in cases:
        route.mock(return_value=response)
        (result,) = await connector.create(
            "customers", [WriteItem(key=KEY, fields={"email": "e@lovelace.io"})]
        )
        assert type(result.error) is expected, f"{response.status_code}: {result.error!r}"
        assert result.error is not None
        assert "happened" in result.error.message


@respx.mock
async def test_a_409_and_should_retry_true_are_retried(make_connector: ConnectorFactory) -> None:
    created = {"id": "cus_Z", "object": "customer", "email": "e@lovelace.io", "created": 1, "metadata": {}}
    route = respx.post("https://api.stripe.test/v1/customers").mock(
        side_effect=[
            _error(409, "idempotency_error", "idempotency_key_in_use"),
            _error(400, "invalid_request_error", "lock_timeout", headers={"Stripe-Should-Retry": "true"}),
            httpx.Response(200, json=created),
        ]
    )
    connector = make_connector("https://api.stripe.test", sleep=Waits(), billing_fields=False)
    (result,) = await connector.create("customers", [WriteItem(key=KEY, fields={"email": "e@lovelace.io"})])
    assert result.ok
    assert route.call_count == 3
    assert {c.request.headers["Idempotency-Key"] for c in route.calls} == {idempotency_key(KEY)}


async def test_a_key_localstripe_refuses_is_an_auth_error(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url, secret_key="rk_test_restricted")
    with pytest.raises(AuthError):
        await connector.check()


async def test_update_of_a_missing_customer_is_not_found(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    (result,) = await make_connector(localstripe.url).update(
        "customers", [WriteItem(key="u", id="cus_Missing", fields={"name": "x"})]
    )
    assert isinstance(result.error, NotFound)


async def test_the_metadata_stamp_can_be_switched_off(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url, key_metadata="")
    (result,) = await connector.create(
        "customers", [WriteItem(key=KEY, fields={"email": "nostamp@lovelace.io"})]
    )
    assert result.ok
    (stored,) = await localstripe.customers("nostamp@lovelace.io")
    assert stored["metadata"] == {}
