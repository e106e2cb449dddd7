"""Read-only billing facts a CRM wants, derived from a customer's subscriptions and invoices.

``summarise`` is pure: given the customer, its subscriptions (all statuses) and its invoices,
it returns the ``billing`` object of the record:

* ``plan`` / ``plan_id`` / ``product``: the current subscription's first item — the price's (or
  legacy plan's) nickname, else its id; its id; its product id. The current subscription is the
  best by status (active, past_due, trialing, unpaid, incomplete, paused, then ended ones),
  newest first among equals.
* ``status``: the current subscription's status; None when the customer never subscribed.
* ``mrr``: monthly recurring revenue of the active and past-due subscriptions, in the currency's
  major units: each per-unit item's ``unit_amount × quantity`` normalised to one month from its
  ``interval`` × ``interval_count`` (a year is 12 months, a week 52/12 of a month, a day 365/12).
  Trials, discounts, taxes, metered and tiered prices are not counted.
* ``currency``: the currency ``mrr`` and ``lifetime_paid`` are in (the current subscription's,
  else the customer's); amounts in other currencies are left out.
* ``delinquent``: Stripe's own flag on the customer, or a subscription that is past due or unpaid.
* ``lifetime_paid``: the sum of ``amount_paid`` of the customer's paid invoices (refunds and
  credit notes are not subtracted), in major units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

#: Currencies Stripe counts in whole units, and those with three decimals.
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

#: (periods per year, months per year) of each interval: a month's share is the ratio.
_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}
_STATUS_RANK = {
    "active": 0,
    "past_due": 1,
    "trialing": 2,
    "unpaid": 3,
    "incomplete": 4,
    "paused": 5,
    "canceled": 6,
    "incomplete_expired": 7,
}
_EARNING = frozenset({"active", "past_due"})
_DELINQUENT = frozenset({"past_due", "unpaid"})

#: The paths ``summarise`` fills under ``billing`` (all read-only).
BILLING_FIELDS = ("plan", "plan_id", "product", "status", "mrr", "currency", "delinquent", "lifetime_paid")


def exponent(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_major(minor: Decimal, currency: str) -> float:
    """``minor`` units of ``currency`` in major units, rounded to the currency's precision."""
    places = exponent(currency)
    value = (minor / (Decimal(10) ** places)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return float(value)


def _price(item: Mapping[str, Any]) -> Mapping[str, Any]:
    price = item.get("price") or item.get("plan") or {}
    return price if isinstance(price, Mapping) else {}


def _items(subscription: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else items
    return [i for i in data or [] if isinstance(i, Mapping)]


def _recurring(price: Mapping[str, Any]) -> tuple[str | None, int]:
    recurring = price.get("recurring")
    source = recurring if isinstance(recurring, Mapping) else price
    interval = source.get("interval")
    count = source.get("interval_count") or 1
    return (str(interval) if interval else None), int(count)


def _unit_amount(price: Mapping[str, Any]) -> Decimal | None:
    if price.get("billing_scheme") == "tiered":
        return None
    recurring = price.get("recurring")
    usage = (recurring if isinstance(recurring, Mapping) else price).get("usage_type")
    if usage == "metered":
        return None
    for key in ("unit_amount_decimal", "unit_amount", "amount"):
        value = price.get(key)
        if value is not None and value != "":
            return Decimal(str(value))
    return None


def monthly_amount(item: Mapping[str, Any]) -> Decimal:
    """One subscription item's amount per month, in minor units (0 for what cannot be priced)."""
    price = _price(item)
    interval, count = _recurring(price)
    unit = _unit_amount(price)
    if unit is None or interval not in _PER_YEAR or count < 1:
        return Decimal(0)
    quantity = Decimal(str(item.get("quantity") or 1))
    # Multiply before dividing, so whole amounts stay whole (a week is 52/12 of a month).
    return unit * quantity * _PER_YEAR[interval] / (12 * count)


def subscription_currency(subscription: Mapping[str, Any]) -> str | None:
    if subscription.get("currency"):
        return str(subscription["currency"]).lower()
    for item in _items(subscription):
        currency = _price(item).get("currency")
        if currency:
            return str(currency).lower()
    return None


def current_subscription(subscriptions: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    ranked = sorted(
        subscriptions,
        key=lambda s: (
            _STATUS_RANK.get(str(s.get("status")), 8),
            -int(s.get("created") or 0),
            str(s.get("id")),
        ),
    )
    return ranked[0] if ranked else None


def _product_id(price: Mapping[str, Any]) -> str | None:
    product = price.get("product")
    if isinstance(product, Mapping):
        product = product.get("id")
    return str(product) if product else None


def summarise(
    customer: Mapping[str, Any],
    subscriptions: Iterable[Mapping[str, Any]],
    invoices: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """The ``billing`` object of one customer (see the module docstring)."""
    subs = list(subscriptions)
    current = current_subscription(subs)
    currency = (subscription_currency(current) if current is not None else None) or (
        str(customer["currency"]).lower() if customer.get("currency") else None
    )
    paid = [i for i in invoices if i.get("status") == "paid"]
    if currency is None and paid:
        currency = str(paid[0].get("currency") or "").lower() or None
    plan = plan_id = product = None
    if current is not None:
        first = _items(current)
        price = _price(first[0]) if first else {}
        plan_id = str(price["id"]) if price.get("id") else None
        plan = str(price.get("nickname") or "") or plan_id
        product = _product_id(price)
    mrr = Decimal(0)
    for sub in subs:
        if sub.get("status") in _EARNING and subscription_currency(sub) == currency:
            mrr += sum((monthly_amount(i) for i in _items(sub)), Decimal(0))
    lifetime = sum(
        (
            Decimal(str(i.get("amount_paid") or 0))
            for i in paid
            if str(i.get("currency") or "").lower() == currency
        ),
        Decimal(0),
    )
    return {
        "plan": plan,
        "plan_id": plan_id,
        "product": product,
        "status": str(current["status"]) if current is not None else None,
        "mrr": to_major(mrr, currency) if currency else 0.0,
        "currency": currency,
        "delinquent": bool(customer.get("delinquent")) or any(s.get("status") in _DELINQUENT for s in subs),
        "lifetime_paid": to_major(lifetime, currency) if currency else 0.0,
    }
