"""A CRM (in memory) and Stripe (localstripe) through syncd's runner: no duplicates, no echo,
billing fields flowing one way into the CRM."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from syncd.mapping import load_mapping
from syncd.runner import Runner, RunStats
from syncd.store import AsyncStore
from syncd.testing.memory import MemoryApp, MemoryConnector

from .conftest import ConnectorFactory, LocalStripe

MAPPING = """
name = "people"
key = "email"
initial_conflict = "policy"

[apps.crm]
object = "contacts"

[apps.billing]
object = "customers"

[conflict]
policy = "priority"
priority = ["crm", "billing"]

[delete]
policy = "unlink"

[fields.email]
transforms = ["email"]
apps.crm = "email"
apps.billing = "email"

[fields.name]
transforms = ["trim"]
apps.crm = "name"
apps.billing = "name"

[fields.plan.apps.billing]
path = "billing.plan"
direction = "in"
[fields.plan.apps.crm]
path = "plan"
direction = "out"

[fields.mrr.apps.billing]
path = "billing.mrr"
direction = "in"
[fields.mrr.apps.crm]
path = "mrr"
direction = "out"
"""


async def _cycle(tmp_path: Path, crm: MemoryApp, connector: Any) -> RunStats:
    path = tmp_path / "people.toml"
    path.write_text(textwrap.dedent(MAPPING))
    mapping = load_mapping(path, known_apps=["crm", "billing"])
    store = await AsyncStore(tmp_path / "state.db").open()
    try:
        runner = Runner(
            store, [mapping], {"crm": MemoryConnector.over(crm), "billing": connector}, retry_base=0.0
        )
        return await runner.run_cycle()
    finally:
        await store.close()


async def test_a_crm_and_stripe_converge_without_duplicates_or_echo(
    tmp_path: Path, localstripe: LocalStripe, make_connector: ConnectorFactory
) -> None:
    crm = MemoryApp("crm")
    crm.seed("contacts", {"email": "ada@lovelace.io", "name": "Ada Lovelace"})
    crm.seed("contacts", {"email": "grace@lovelace.io", "name": "Grace Hopper"})
    ada = await localstripe.call(
        "POST",
        "/v1/customers",
        {
            "email": "Ada@Lovelace.io",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
    )
    plan = await localstripe.call(
        "POST",
        "/v1/plans",
        {
            "amount": 120_00,
            "currency": "usd",
            "interval": "year",
            "nickname": "Team",
            "product": {"name": "Team"},
        },
    )
    await localstripe.call(
        "POST", "/v1/subscriptions", {"customer": ada["id"], "items": [{"plan": plan["id"], "quantity": 3}]}
    )
    connector = make_connector(localstripe.url)

    stats = None
    for _ in range(4):
        stats = await _cycle(tmp_path, crm, connector)
        if stats.total("writes") == 0:
            break
    assert stats is not None
    assert stats.total("writes") == 0, f"no quiet cycle: {stats.as_dict()}"

    customers = await localstripe.customers()
    assert sorted(c["email"].lower() for c in customers) == ["ada@lovelace.io", "grace@lovelace.io"]
    grace = next(c for c in customers if c["email"] == "grace@lovelace.io")
    assert grace["name"] == "Grace Hopper"
    assert grace["metadata"]["syncd_id"].startswith("people:")
    by_email = {f["email"]: f for f in crm.live("contacts").values()}
    assert by_email["ada@lovelace.io"]["plan"] == "Team"
    assert by_email["ada@lovelace.io"]["mrr"] == 30.0
    assert by_email["grace@lovelace.io"].get("plan") is None

    # A quiet period later, a further cycle still writes nothing (Stripe's reads echo our writes).
    again = await _cycle(tmp_path, crm, connector)
    assert again.total("writes") == 0
