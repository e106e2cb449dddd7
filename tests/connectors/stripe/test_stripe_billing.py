"""The read-only billing fields: MRR arithmetic, the current plan and status, delinquency, lifetime paid.

The arithmetic is checked on hand-written objects in Stripe's shape (prices and legacy plans);
the end-to-end tests make real subscriptions and invoices in localstripe, which bills a card at
once, and read the customer back through the connector.
"""

from __future__ import annotations

from typing import Any

import pytest

from syncd.connector import PermanentError, WriteItem
from syncd_stripe import StripeConnector, monthly_amount, summarise

from .conftest import ConnectorFactory, LocalStripe


def _price(amount: int, interval: str, count: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"price_{interval}{count}",
        "object": "price",
        "unit_amount": amount,
        "currency": "usd",
        "recurring": {"interval": interval, "interval_count": count, "usage_type": "licensed"},
        "product": "prod_1",
        **extra,
    }


def _sub(status: str, *items: dict[str, Any], created: int = 1, sub_id: str = "sub_1") -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "status": status,
        "created": created,
        "items": {"data": list(items)},
    }


def test_a_yearly_price_is_divided_by_twelve_and_multiplied_by_the_quantity() -> None:
    item = {"price": _price(120_00, "year"), "quantity": 3}
    assert monthly_amount(item) == 30_00


@pytest.mark.parametrize(
    ("interval", "count", "monthly_cents"),
    [("month", 1, 1200), ("month", 3, 400), ("year", 2, 50), ("week", 1, 5200), ("day", 1, 36500)],
)
def test_every_interval_is_normalised_to_one_month(interval: str, count: int, monthly_cents: int) -> None:
    assert monthly_amount({"price": _price(1200, interval, count), "quantity": 1}) == monthly_cents


def test_legacy_plans_count_like_prices() -> None:
    plan = {
        "id": "plan_1",
        "object": "plan",
        "amount": 2400,
        "interval": "year",
        "interval_count": 1,
        "currency": "eur",
    }
    assert monthly_amount({"plan": plan, "quantity": 2}) == 400


def test_metered_and_tiered_prices_are_not_counted() -> None:
    metered = _price(100, "month")
    metered["recurring"]["usage_type"] = "metered"
    tiered = _price(100, "month", billing_scheme="tiered", unit_amount=None)
    assert monthly_amount({"price": metered, "quantity": 5}) == 0
    assert monthly_amount({"price": tiered, "quantity": 5}) == 0


def test_mrr_is_in_major_units_and_counts_active_and_past_due_but_not_trials_or_ended() -> None:
    subs = [
        _sub("active", {"price": _price(10_00, "month"), "quantity": 2}, sub_id="sub_a"),
        _sub("past_due", {"price": _price(120_00, "year"), "quantity": 1}, sub_id="sub_b"),
        _sub("trialing", {"price": _price(99_00, "month"), "quantity": 1}, sub_id="sub_c"),
        _sub("canceled", {"price": _price(99_00, "month"), "quantity": 1}, sub_id="sub_d"),
    ]
    billing = summarise({"id": "cus_1"}, subs, [])
    assert billing["mrr"] == 30.0
    assert billing["currency"] == "usd"


def test_zero_decimal_currencies_are_not_divided_by_a_hundred() -> None:
    price = {**_price(12000, "year"), "currency": "jpy"}
    billing = summarise({"id": "cus_1"}, [_sub("active", {"price": price, "quantity": 1})], [])
    assert (billing["mrr"], billing["currency"]) == (1000.0, "jpy")


def test_three_decimal_currencies_keep_three_places() -> None:
    price = {**_price(1_000, "month"), "currency": "kwd"}
    billing = summarise({"id": "cus_1"}, [_sub("active", {"price": price, "quantity": 1})], [])
    assert billing["mrr"] == 1.0


def test_the_current_plan_is_the_best_status_then_the_newest_subscription() -> None:
    old = _sub("active", {"price": _price(100, "month", nickname="Old")}, created=1, sub_id="sub_old")
    new = _sub("active", {"price": _price(100, "year", nickname="New")}, created=2, sub_id="sub_new")
    trial = _sub("trialing", {"price": _price(100, "week", nickname="Trial")}, created=3, sub_id="sub_trial")
    billing = summarise({"id": "cus_1"}, [old, trial, new], [])
    assert (billing["plan"], billing["plan_id"], billing["product"], billing["status"]) == (
        "New",
        "price_year1",
        "prod_1",
        "active",
    )


def test_a_plan_without_nickname_is_named_by_its_id() -> None:
    billing = summarise({"id": "cus_1"}, [_sub("active", {"price": _price(100, "month")})], [])
    assert billing["plan"] == "price_month1"


def test_a_customer_who_never_subscribed_has_no_plan_and_zero_amounts() -> None:
    assert summarise({"id": "cus_1", "currency": None}, [], []) == {
        "plan": None,
        "plan_id": None,
        "product": None,
        "status": None,
        "mrr": 0.0,
        "currency": None,
        "delinquent": False,
        "lifetime_paid": 0.0,
    }


def test_delinquent_follows_stripes_flag_or_an_unpaid_subscription() -> None:
    assert summarise({"id": "c", "delinquent": True}, [], [])["delinquent"] is True
    assert summarise({"id": "c"}, [_sub("unpaid", {"price": _price(1, "month")})], [])["delinquent"] is True
    assert summarise({"id": "c"}, [_sub("active", {"price": _price(1, "month")})], [])["delinquent"] is False


def test_lifetime_paid_sums_paid_invoices_in_the_billing_currency_only() -> None:
    invoices = [
        {"id": "in_1", "status": "paid", "currency": "usd", "amount_paid": 36_00},
        {"id": "in_2", "status": "paid", "currency": "usd", "amount_paid": 12_50},
        {"id": "in_3", "status": "open", "currency": "usd", "amount_paid": 0, "amount_due": 500},
        {"id": "in_4", "status": "void", "currency": "usd", "amount_paid": 0},
        {"id": "in_5", "status": "paid", "currency": "eur", "amount_paid": 99_00},
    ]
    billing = summarise({"id": "c"}, [_sub("active", {"price": _price(1, "month")})], invoices)
    assert billing["lifetime_paid"] == 48.5


# -- against localstripe ---------------------------------------------------------------------


async def _subscribe(
    server: LocalStripe, customer: str, interval: str, amount: int, quantity: int
) -> dict[str, Any]:
    plan = await server.call(
        "POST",
        "/v1/plans",
        {
            "amount": amount,
            "currency": "usd",
            "interval": interval,
            "nickname": f"Pro {interval}ly",
            "product": {"name": "Pro"},
        },
    )
    return dict(
        await server.call(
            "POST",
            "/v1/subscriptions",
            {"customer": customer, "items": [{"plan": plan["id"], "quantity": quantity}]},
        )
    )


async def _paying_customer(server: LocalStripe, email: str) -> str:
    customer = await server.call(
        "POST",
        "/v1/customers",
        {
            "email": email,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
    )
    return str(customer["id"])


async def test_billing_fields_of_a_yearly_subscription_with_quantity_three(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    cid = await _paying_customer(localstripe, "yearly@lovelace.io")
    sub = await _subscribe(localstripe, cid, "year", 120_00, 3)
    assert sub["status"] == "active", "localstripe should have billed the card at once"
    (record,) = await connector.get("customers", [cid])
    billing = record.fields["billing"]
    assert billing["plan"] == "Pro yearly"
    assert billing["plan_id"] == sub["plan"]["id"]
    assert billing["status"] == "active"
    assert billing["mrr"] == 30.0  # 120.00 a year × 3 seats / 12 months
    assert billing["currency"] == "usd"
    assert billing["lifetime_paid"] == 360.0  # the first yearly invoice, paid
    assert billing["delinquent"] is False


async def test_full_listing_and_single_reads_agree_on_billing_fields(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    payer = await _paying_customer(localstripe, "payer@lovelace.io")
    await _subscribe(localstripe, payer, "month", 25_00, 2)
    other = await localstripe.call("POST", "/v1/customers", {"email": "free@lovelace.io"})
    listed = {
        r.id: r for p in [p async for p in connector.read_changes("customers", None)] for r in p.records
    }
    single = {r.id: r for r in await connector.get("customers", [payer, other["id"]])}
    assert listed[payer].fields["billing"]["mrr"] == 50.0
    assert listed[other["id"]].fields["billing"]["status"] is None
    assert {k: r.version for k, r in listed.items()} == {k: r.version for k, r in single.items()}


async def test_a_failed_renewal_makes_the_subscription_past_due_and_the_customer_delinquent(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    cid = await _paying_customer(localstripe, "late@lovelace.io")
    sub = await _subscribe(localstripe, cid, "month", 10_00, 1)
    # The card now declines; moving the subscription to a yearly plan bills it again at once.
    await localstripe.call(
        "POST",
        f"/v1/customers/{cid}",
        {"invoice_settings": {"default_payment_method": "pm_card_chargeCustomerFail"}},
    )
    yearly = await localstripe.call(
        "POST",
        "/v1/plans",
        {"amount": 100_00, "currency": "usd", "interval": "year", "product": {"name": "Pro"}},
    )
    item = sub["items"]["data"][0]["id"]
    updated = await localstripe.call(
        "POST", f"/v1/subscriptions/{sub['id']}", {"items": [{"id": item, "plan": yearly["id"]}]}
    )
    assert updated["status"] == "past_due"
    (record,) = await connector.get("customers", [cid])
    billing = record.fields["billing"]
    assert (billing["status"], billing["delinquent"]) == ("past_due", True)
    assert billing["mrr"] == round(100_00 / 12 / 100, 2)
    assert billing["lifetime_paid"] == 10.0  # only the first monthly invoice was paid


async def test_writes_to_billing_fields_are_refused_per_item_and_the_others_go_through(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(localstripe.url)
    customer = await localstripe.call("POST", "/v1/customers", {"email": "ro@lovelace.io", "name": "Before"})
    results = await connector.update(
        "customers",
        [
            WriteItem(key="k1", id=customer["id"], fields={"billing": {"mrr": 1000}}),
            WriteItem(key="k2", id=customer["id"], fields={"name": "After"}),
            WriteItem(key="k3", fields={"email": "new@lovelace.io", "delinquent": False}),
        ],
    )
    assert isinstance(results[0].error, PermanentError)
    assert "billing is read-only" in results[0].error.message
    assert results[1].ok
    assert results[1].record is not None
    assert results[1].record.fields["name"] == "After"
    assert isinstance(results[2].error, PermanentError)
    created = await connector.create(
        "customers", [WriteItem(key="k4", fields={"email": "x@lovelace.io", "currency": "usd"})]
    )
    assert isinstance(created[0].error, PermanentError)
    assert "currency is read-only" in created[0].error.message
    assert await localstripe.customers("x@lovelace.io") == []


async def test_billing_fields_can_be_switched_off(
    localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    connector: StripeConnector = make_connector(localstripe.url, billing_fields=False)
    customer = await localstripe.call("POST", "/v1/customers", {"email": "plain@lovelace.io"})
    (record,) = await connector.get("customers", [customer["id"]])
    assert "billing" not in record.fields
