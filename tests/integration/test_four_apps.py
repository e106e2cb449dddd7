"""HubSpot, Mailchimp, Zendesk and Stripe kept in sync by ``syncd run`` (a real subprocess) with the
shipped mapping mappings/customers.toml.

The HubSpot, Mailchimp and Zendesk fakes and localstripe (a fake Stripe from PyPI, in a child
process) all send signed webhooks to the daemon, which also polls each of them every few seconds.
One edit is made in every app; each must reach the others, nobody may be duplicated, a quiet
period must make no write anywhere, the first-match conflicts must be decided by the mapping's
policies, and ``syncd show`` must list a person's record in all four apps.

The first import is ``syncd sync --once`` (every app read, then reconciled): when the daemon
itself makes the first match, each app is linked by its own poll and a first-match value equal
to the canonical one is not a candidate in a later conflict, so the winner depends on which app
was polled first (seen: Mailchimp first, then HubSpot agreeing, then Stripe differing — Stripe
beat Mailchimp and overwrote HubSpot, which the priority list puts first).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from syncd.testing.fakes.hubspot import HubSpotFake, PropertyDef
from syncd.testing.fakes.mailchimp import MailchimpFake, subscriber_hash
from syncd.testing.fakes.zendesk import ZendeskFake
from syncd.testing.localstripe import LocalStripe, LocalStripeUnavailable

from ..daemon.harness import ADMIN_TOKEN, DaemonProcess, base_env, wait_for, write_config
from .apps import API_KEY, LIST_ID, PROPERTIES, hubspot_emails, hubspot_fake, mailchimp_emails, mailchimp_fake

ROOT = Path(__file__).resolve().parents[2]
HS_TOKEN = "pat-na1-four-apps"
HS_SECRET = "hubspot-client-secret-4"
MC_SECRET = "mailchimp-hook-secret-4"
ZD_AGENT = "sync-bot@lovelace.io"
ZD_TOKEN = "zd-four-apps-token"
ZD_SECRET = "zendesk-signing-secret-4"
STRIPE_KEY = "sk_test_syncd_four_apps"
STRIPE_SECRET = "whsec_four_apps"
STRIPE_EVENTS = [
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
]
#: The custom HubSpot properties mappings/customers.toml writes (besides newsletter_opt_in).
BILLING_PROPERTIES = [
    PropertyDef("billing_plan", "Plan", group="billing", hubspot_defined=False),
    PropertyDef("subscription_status", "Subscription status", group="billing", hubspot_defined=False),
    PropertyDef("mrr", "MRR", "number", "number", "billing", hubspot_defined=False),
    PropertyDef(
        "billing_delinquent",
        "Delinquent",
        "bool",
        "booleancheckbox",
        "billing",
        ("true", "false"),
        hubspot_defined=False,
    ),
    PropertyDef("lifetime_paid", "Lifetime paid", "number", "number", "billing", hubspot_defined=False),
]
EVERYONE = sorted(
    ["ada@lovelace.io", "grace@navy.mil", "linus@kernel.org", "margaret@apollo.nasa", "barbara@mit.edu"]
)
WRITES = ("POST", "PATCH", "PUT", "DELETE")

pytestmark = pytest.mark.slow


def _writes(fake: HubSpotFake | MailchimpFake | ZendeskFake) -> list[tuple[str, str]]:
    """Write requests a fake received (searches and batch reads are POSTs that write nothing)."""
    return [
        (m, p)
        for m, p in fake.requests
        if m in WRITES and "/search" not in p and "/batch/read" not in p and "/webhooks" not in p
    ]


def zendesk_users(fake: ZendeskFake) -> dict[str, list[dict[str, Any]]]:
    """Live end users by primary email (a list, so duplicates show)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for uid in list(fake.users):
        user = fake.user(uid)
        if user is not None and user["role"] == "end-user" and user.get("email"):
            out.setdefault(str(user["email"]).lower(), []).append(user)
    return out


def stripe_by_email(customers: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for customer in customers:
        out.setdefault(str(customer.get("email") or "").lower(), []).append(customer)
    return out


def _env() -> dict[str, str]:
    """Credentials and webhook secrets as a deployment would set them: in the environment."""
    return base_env(
        SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN,
        SYNCD_APPS__CRM__SETTINGS__TOKEN=HS_TOKEN,
        SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET=HS_SECRET,
        SYNCD_APPS__EMAIL__SETTINGS__API_KEY=API_KEY,
        SYNCD_APPS__EMAIL__SETTINGS__WEBHOOK_SECRET=MC_SECRET,
        SYNCD_APPS__HELPDESK__SETTINGS__API_TOKEN=ZD_TOKEN,
        SYNCD_APPS__HELPDESK__SETTINGS__WEBHOOK_SECRET=ZD_SECRET,
        SYNCD_APPS__BILLING__SETTINGS__SECRET_KEY=STRIPE_KEY,
        SYNCD_APPS__BILLING__SETTINGS__WEBHOOK_SECRET=STRIPE_SECRET,
    )


async def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A ``syncd`` command in a subprocess, waited for off the event loop (the fakes run on it)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "syncd.cli", *args, "--config", str(config)],
        env=_env(),
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


class World:
    """The four apps, seeded: who is where and what differs is described in ``seed``."""

    def __init__(self) -> None:
        self.hubspot = hubspot_fake(HS_TOKEN, HS_SECRET)
        for prop in BILLING_PROPERTIES:
            self.hubspot.add_property(prop)
        self.mailchimp = mailchimp_fake()
        self.zendesk = ZendeskFake(agent_email=ZD_AGENT, api_token=ZD_TOKEN, webhook_secret=ZD_SECRET)
        self.stripe = LocalStripe(STRIPE_KEY)
        self.started: list[HubSpotFake | MailchimpFake | ZendeskFake] = []

    async def start(self) -> None:
        try:
            await self.stripe.start()
        except LocalStripeUnavailable as exc:
            pytest.skip(f"Stripe side unavailable: {exc}")
        for fake in (self.hubspot, self.mailchimp, self.zendesk):
            await fake.start()
            self.started.append(fake)

    async def stop(self) -> None:
        while self.started:
            await self.started.pop().stop()
        await self.stripe.stop()

    async def seed(self) -> None:
        # Ada is in all four apps. Her surname differs in Stripe (the CRM wins by priority) and her
        # company differs between the CRM and Zendesk's organization (Zendesk owns the company).
        self.hubspot.seed(
            {
                "email": "ada@lovelace.io",
                "firstname": "Ada",
                "lastname": "Lovelace",
                "company": "Babbage & Co",
            }
        )
        self.mailchimp.seed("Ada@Lovelace.io", merge_fields={"FNAME": "Ada", "LNAME": "Lovelace"})
        engines = self.zendesk.seed_organization(name="Analytical Engines")
        self.zendesk.seed_user(name="Ada Lovelace", email="ada@lovelace.io", organization_id=int(engines))
        ada = await self.stripe.create_customer(email="ada@lovelace.io", name="Ada King", card=True)
        await self.stripe.subscribe(ada["id"], amount=120_00, interval="year", nickname="Team", quantity=3)
        # One person in each app only.
        self.hubspot.seed({"email": "grace@navy.mil", "firstname": "Grace", "lastname": "Hopper"})
        self.mailchimp.seed(
            "linus@kernel.org", status="unsubscribed", merge_fields={"FNAME": "Linus", "LNAME": "Torvalds"}
        )
        apollo = self.zendesk.seed_organization(name="Apollo Guidance")
        self.zendesk.seed_user(
            name="Margaret Hamilton", email="margaret@apollo.nasa", organization_id=int(apollo)
        )
        await self.stripe.create_customer(email="barbara@mit.edu", name="Barbara Liskov", card=True)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    apps = World()
    await apps.start()
    try:
        await apps.seed()
        yield apps
    finally:
        await apps.stop()


def _config(folder: Path, world: World) -> Path:
    return write_config(
        folder,
        apps={
            "crm": {
                "connector": "hubspot",
                "poll_interval": 3.0,
                "settings": {
                    "base_url": world.hubspot.url,
                    "properties": [*PROPERTIES, "company"],
                },
            },
            "email": {
                "connector": "mailchimp",
                "poll_interval": 3.0,
                "settings": {"base_url": world.mailchimp.url, "list_id": LIST_ID},
            },
            "helpdesk": {
                # The user export allows 10 requests a minute.
                "connector": "zendesk",
                "poll_interval": 7.0,
                "settings": {
                    "base_url": world.zendesk.url,
                    "email": ZD_AGENT,
                    "objects": ["users"],
                    "job_poll_seconds": 0.1,
                },
            },
            "billing": {
                "connector": "stripe",
                "poll_interval": 3.0,
                "settings": {"base_url": world.stripe.url},
            },
        },
        mapping=(ROOT / "mappings" / "customers.toml").read_text(),
    )


async def test_four_apps_converge_through_webhooks_and_polls_without_duplicates_or_echo_writes(
    tmp_path: Path, world: World
) -> None:
    config = _config(tmp_path, world)
    checked = await _cli(config, "validate", "--offline")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The first import is one cycle over the four apps (read in the mapping's order, then
    # reconciled), as a deployment would run it before starting the daemon: that is where the
    # first-match differences are decided by the policies (see the report on poll order below).
    first = await _cli(config, "sync", "--once", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["errors"] == 0, first.stdout
    daemon = DaemonProcess(config, _env())
    hubspot, mailchimp, zendesk, stripe = world.hubspot, world.mailchimp, world.zendesk, world.stripe
    try:
        await daemon.start()
        hubspot.webhook_url = f"{daemon.url}/webhooks/crm"
        mailchimp.webhook_url = f"{daemon.url}/webhooks/email?secret={MC_SECRET}"
        zendesk.webhook_url = f"{daemon.url}/webhooks/helpdesk"
        await stripe.send_webhooks(f"{daemon.url}/webhooks/billing", STRIPE_SECRET, STRIPE_EVENTS)

        async def everyone_everywhere() -> bool:
            customers = stripe_by_email(await stripe.customers())
            return (
                sorted(hubspot_emails(hubspot)) == EVERYONE
                and sorted(set(mailchimp_emails(mailchimp))) == EVERYONE
                and sorted(zendesk_users(zendesk)) == EVERYONE
                and sorted(customers) == EVERYONE
            )

        await wait_for(everyone_everywhere, 40, what="every customer in all four apps", every=0.2)

        async with daemon.client() as admin:

            async def status() -> dict[str, Any]:
                body: dict[str, Any] = (await admin.get("/api/status")).json()
                return body

            async def settled() -> bool:
                now = await status()
                return bool(now["outbox_depth"] == 0 and now["inbox_pending"] == 0)

            def crm(email: str) -> dict[str, Any]:
                record = hubspot.record(hubspot_emails(hubspot)[email]) or {}
                return dict(record.get("properties", {}))

            # -- the first match, decided by the mapping's policies ------------------------------
            async def ada_settled() -> bool:
                names = [c["name"] for c in stripe_by_email(await stripe.customers())["ada@lovelace.io"]]
                return names == ["Ada Lovelace"] and crm("ada@lovelace.io").get("billing_plan") == "Team"

            await wait_for(ada_settled, 20, what="Ada's name in Stripe and her plan in HubSpot", every=0.2)
            await wait_for(settled, 30, what="the daemon to settle")
            ada = crm("ada@lovelace.io")
            assert ada["mrr"] == "30.0"
            assert ada["subscription_status"] == "active"
            assert ada["lifetime_paid"] == "360.0"
            assert ada["billing_delinquent"] == "false"
            assert ada["company"] == "Analytical Engines"  # Zendesk owns the company
            assert ada["newsletter_opt_in"] == "true"  # consent from Mailchimp
            assert crm("margaret@apollo.nasa")["company"] == "Apollo Guidance"
            assert crm("linus@kernel.org")["newsletter_opt_in"] == "false"
            stripe_ada = stripe_by_email(await stripe.customers())["ada@lovelace.io"]
            assert [c["name"] for c in stripe_ada] == ["Ada Lovelace"]  # the CRM's surname won
            grace = zendesk_users(zendesk)["grace@navy.mil"]
            assert [u["name"] for u in grace] == ["Grace Hopper"]  # first and last joined

            # -- one edit in every app -----------------------------------------------------------
            hubspot.edit(hubspot_emails(hubspot)["grace@navy.mil"], {"phone": "(415) 555-0199"})
            mailchimp.edit("ada@lovelace.io", status="unsubscribed")
            margaret = zendesk_users(zendesk)["margaret@apollo.nasa"][0]
            zendesk.edit_user(margaret["id"], name="Margaret Heafield Hamilton")
            barbara = stripe_by_email(await stripe.customers())["barbara@mit.edu"][0]
            await stripe.call("POST", f"/v1/customers/{barbara['id']}", {"phone": "+16175550142"})
            await stripe.subscribe(barbara["id"], amount=9_00, interval="month", nickname="Starter")

            async def edits_arrived() -> bool:
                customers = stripe_by_email(await stripe.customers())
                grace_zd = zendesk_users(zendesk)["grace@navy.mil"][0]
                member = mailchimp.member("grace@navy.mil") or {}
                return (
                    member.get("merge_fields", {}).get("PHONE") == "+14155550199"
                    and grace_zd.get("phone") == "+14155550199"
                    and customers["grace@navy.mil"][0].get("phone") == "+14155550199"
                    and crm("ada@lovelace.io").get("newsletter_opt_in") == "false"
                    and crm("margaret@apollo.nasa").get("lastname") == "Heafield Hamilton"
                    and customers["margaret@apollo.nasa"][0].get("name") == "Margaret Heafield Hamilton"
                    and (mailchimp.member("margaret@apollo.nasa") or {}).get("merge_fields", {}).get("LNAME")
                    == "Heafield Hamilton"
                    and crm("barbara@mit.edu").get("phone") == "+16175550142"
                    and zendesk_users(zendesk)["barbara@mit.edu"][0].get("phone") == "+16175550142"
                    and crm("barbara@mit.edu").get("billing_plan") == "Starter"
                    and crm("barbara@mit.edu").get("mrr") == "9.0"
                )

            await wait_for(edits_arrived, 30, what="every app's edit in the other apps", every=0.2)

            # -- a quiet period: every app polled again, webhooks delivered, nothing written ------
            for fake in (hubspot, mailchimp, zendesk):
                await fake.webhooks_idle()
            await wait_for(settled, 30, what="the daemon to settle")
            mark = await status()
            before = {
                "crm": len(_writes(hubspot)),
                "email": len(_writes(mailchimp)),
                "helpdesk": len(_writes(zendesk)),
            }
            events_before = await _stripe_writes(stripe)

            async def polled_again() -> bool:
                now = await status()
                return all(
                    now["apps"][name]["last_poll_at"] not in (None, mark["apps"][name]["last_poll_at"])
                    for name in ("crm", "email", "helpdesk", "billing")
                )

            await wait_for(polled_again, 20, what="a poll of every app after convergence", every=0.1)
            for fake in (hubspot, mailchimp, zendesk):
                await fake.webhooks_idle()
            await wait_for(settled, 30, what="the daemon to settle")
            after = await status()
            assert {n: a["written"] for n, a in after["apps"].items()} == {
                n: a["written"] for n, a in mark["apps"].items()
            }
            assert len(_writes(hubspot)) == before["crm"], _writes(hubspot)[before["crm"] :]
            assert len(_writes(mailchimp)) == before["email"], _writes(mailchimp)[before["email"] :]
            assert len(_writes(zendesk)) == before["helpdesk"], _writes(zendesk)[before["helpdesk"] :]
            assert await _stripe_writes(stripe) == events_before
            assert after["dead_letters"] == 0

        # -- no duplicates anywhere ------------------------------------------------------------------
        assert sorted(mailchimp_emails(mailchimp)) == EVERYONE
        assert all(len(users) == 1 for users in zendesk_users(zendesk).values())
        assert all(len(found) == 1 for found in stripe_by_email(await stripe.customers()).values())
        assert len(hubspot.live_ids()) == len(EVERYONE)
        assert all(
            d.status == 200 for fake in (hubspot, mailchimp, zendesk) for d in fake.deliveries if d.status
        )
        assert await daemon.stop() == 0
    finally:
        daemon.kill()

    # -- conflicts recorded as the policies decided them ----------------------------------------
    listed = await _cli(config, "conflicts", "list", "--all", "--json")
    assert listed.returncode == 0, listed.stderr
    decided = {(c["entity_key"], c["field"]): c for c in json.loads(listed.stdout)}
    surname, company = decided[("ada@lovelace.io", "last_name")], decided[("ada@lovelace.io", "company")]
    assert (surname["status"], surname["policy"], surname["winner"]) == ("auto", "priority", "crm")
    assert {c["app"]: c["value"] for c in surname["candidates"]} == {"crm": "Lovelace", "billing": "King"}
    assert (company["status"], company["policy"], company["winner"]) == ("auto", "owner", "helpdesk")
    assert {c["app"]: c["value"] for c in company["candidates"]} == {
        "crm": "Babbage & Co",
        "helpdesk": "Analytical Engines",
    }
    assert sorted(decided) == [("ada@lovelace.io", "company"), ("ada@lovelace.io", "last_name")]

    # -- one person, four records ----------------------------------------------------------------
    shown = await _cli(config, "show", "ada@lovelace.io", "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    links = {link["app"]: link["remote_id"] for link in view["links"]}
    assert links == {
        "crm": hubspot_emails(hubspot)["ada@lovelace.io"],
        "email": subscriber_hash("ada@lovelace.io"),
        "helpdesk": str(zendesk_users(zendesk)["ada@lovelace.io"][0]["id"]),
        "billing": stripe_by_email(await stripe.customers())["ada@lovelace.io"][0]["id"],
    }
    assert view["values"]["last_name"] == "Lovelace"
    assert view["values"]["plan"] == "Team"

    # -- and a cycle of its own finds nothing to write --------------------------------------------
    once = await _cli(config, "sync", "--once", "--json")
    assert once.returncode == 0, once.stdout + once.stderr
    assert json.loads(once.stdout)["writes"] == 0, once.stdout


async def _stripe_writes(stripe: LocalStripe) -> int:
    """Customer writes localstripe has seen: every create or update leaves an event behind."""
    total = 0
    for kind in ("customer.created", "customer.updated", "customer.deleted"):
        body = await stripe.call("GET", f"/v1/events?type={kind}&limit=100")
        total += len(body["data"])
    return total
