"""``syncd demo --apps all``: the help desk (the Zendesk fake) and billing (localstripe) as well.

The two-app demo's customers stay in HubSpot and Mailchimp; a few of them are also put in Zendesk
(with their company as the organization) and in Stripe (the first one with a paid subscription),
plus one person only in Zendesk and one only in Stripe. The mapping is the shipped
``customers.toml``. localstripe is optional: when it cannot start, the demo says so and runs
with the three other apps, the billing app taken out of the mapping.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from syncd.testing.fakes.hubspot import HubSpotFake, PropertyDef
from syncd.testing.fakes.zendesk import ZendeskFake
from syncd.testing.localstripe import LocalStripe, LocalStripeUnavailable

from .dataset import Dataset

#: The four-app mapping shipped inside this package (a copy of mappings/customers.toml).
MAPPING_NAME = "customers.toml"
HELPDESK_AGENT = "sync-bot@syncd-demo.example"
HELPDESK_TOKEN = "syncd-demo-zendesk-api-token"
HELPDESK_WEBHOOK_SECRET = "syncd-demo-zendesk-signing-secret"
BILLING_KEY = "sk_test_syncd_demo_0123456789"
BILLING_WEBHOOK_SECRET = "whsec_syncd_demo"
#: HubSpot contact properties the four-app mapping reads (its out-only billing ones are written only).
CRM_READ = ("company",)
#: Custom HubSpot properties the four-app mapping writes billing state into.
BILLING_PROPERTIES = (
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
)
#: The Stripe events the daemon is told about (customers, and what feeds the billing fields).
BILLING_EVENTS = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
)
#: How many of the dataset's customers in both HubSpot and Mailchimp are also put in Zendesk and Stripe.
SHARED = 3


def packaged_mapping() -> str:
    return resources.files("syncd.demo").joinpath(MAPPING_NAME).read_text(encoding="utf-8")


def without_app(text: str, app: str) -> str:
    """The mapping ``text`` with ``app`` taken out: its app table, its paths, its place in priority
    lists, and the fields only it fed (one-way fields whose only reader it was)."""
    data = tomllib.loads(text)
    dropped = set()
    for name, spec in data.get("fields", {}).items():
        readers = [
            a
            for a, entry in spec.get("apps", {}).items()
            if not isinstance(entry, dict) or entry.get("direction", "both") in ("both", "in")
        ]
        if readers == [app]:
            dropped.add(name)
    out: list[str] = []
    keep = True
    for line in text.splitlines():
        header = re.match(r"\s*\[+([^\]]+)\]+", line)
        if header is not None:
            parts = header.group(1).strip().split(".")
            keep = not (
                parts[:2] == ["apps", app]
                or (parts[0] == "fields" and len(parts) > 1 and parts[1] in dropped)
                or (parts[0] == "fields" and parts[2:4] == ["apps", app])
            )
            if not keep:
                while out and out[-1].lstrip().startswith("#"):
                    out.pop()  # the comment introducing a dropped table
        if not keep or line.strip().startswith(f"apps.{app} ") or line.strip().startswith(f"apps.{app}="):
            continue
        out.append(re.sub(rf'(priority\s*=\s*\[[^\]]*)"{app}",\s*', r"\1", line).replace(f', "{app}"]', "]"))
    return "\n".join(out) + "\n"


@dataclass
class ExtraApps:
    """The Zendesk fake and localstripe; ``billing_missing`` says why Stripe is left out, if it is."""

    helpdesk: ZendeskFake = field(
        default_factory=lambda: ZendeskFake(
            agent_email=HELPDESK_AGENT, api_token=HELPDESK_TOKEN, webhook_secret=HELPDESK_WEBHOOK_SECRET
        )
    )
    billing: LocalStripe | None = field(default_factory=lambda: LocalStripe(BILLING_KEY))
    billing_missing: str | None = None
    #: A customer seeded in all four apps (three without billing).
    everywhere: str = ""
    _started: bool = False

    def names(self) -> dict[str, str]:
        """The extra apps by their config name, with the product each stands for."""
        return {"helpdesk": "Zendesk", **({"billing": "Stripe"} if self.billing is not None else {})}

    @staticmethod
    def prepare_crm(hubspot: HubSpotFake) -> None:
        for prop in BILLING_PROPERTIES:
            hubspot.add_property(prop)

    async def start(self) -> None:
        await self.helpdesk.start()
        self._started = True
        if self.billing is not None:
            try:
                await self.billing.start()
            except LocalStripeUnavailable as exc:
                self.billing_missing = str(exc)
                self.billing = None

    async def stop(self) -> None:
        if self.billing is not None:
            await self.billing.stop()
        if self._started:
            await self.helpdesk.stop()
            self._started = False

    async def seed(self, data: Dataset) -> list[str]:
        """Seed both apps from the data set; returns what was planted, for the intro."""
        suspects = {e for e, _ in data.conflicts} | set(data.consent_disagreements)
        suspects |= set(data.invisible_variants) | set(data.case_variants) | set(data.duplicates)
        people = {str(c["email"]): c for c in data.contacts}
        shared = [e for e in data.overlap if e not in suspects and e in people][:SHARED]
        self.everywhere = shared[0]
        organizations: dict[str, int] = {}
        for email in shared:
            person = people[email]
            company = email.split("@", 1)[1].split(".", 1)[0].title()
            if company not in organizations:
                organizations[company] = int(self.helpdesk.seed_organization(name=company))
            self.helpdesk.seed_user(
                name=f"{person.get('firstname', '')} {person.get('lastname', '')}".strip(),
                email=email,
                organization_id=organizations[company],
            )
        self.helpdesk.seed_user(name="Hedy Lamarr", email="hedy.lamarr@proton.me", phone="+12125550188")
        lines = [
            f"Fake Zendesk at {self.helpdesk.url}/api/v2: {len(shared) + 1} end users "
            f"({len(shared)} also in HubSpot and Mailchimp, in {len(organizations)} organizations).",
        ]
        if self.billing is None:
            lines.append(f"No billing app: {self.billing_missing}; running with the other three.")
            return lines
        for i, email in enumerate(shared):
            person = people[email]
            customer = await self.billing.create_customer(
                email=email,
                name=f"{person.get('firstname', '')} {person.get('lastname', '')}".strip(),
                card=i == 0,
            )
            if i == 0:
                await self.billing.subscribe(
                    customer["id"], amount=120_00, interval="year", nickname="Team", quantity=3
                )
        await self.billing.create_customer(email="alan.turing@fastmail.com", name="Alan Turing")
        lines.append(
            f"localstripe (a fake Stripe) at {self.billing.url}: {len(shared) + 1} customers "
            f"({len(shared)} also in the other apps), {self.everywhere} on the Team plan."
        )
        return lines

    async def connect_webhooks(self, daemon_url: str) -> None:
        self.helpdesk.webhook_url = f"{daemon_url}/webhooks/helpdesk"
        if self.billing is not None:
            await self.billing.send_webhooks(
                f"{daemon_url}/webhooks/billing", BILLING_WEBHOOK_SECRET, list(BILLING_EVENTS)
            )

    def disconnect_webhooks(self) -> None:
        self.helpdesk.webhook_url = None

    def config(self, poll_interval: float) -> str:
        """The two extra apps' tables for ``config.toml`` (secrets from files, like the others)."""
        text = _HELPDESK.format(url=self.helpdesk.url, poll=max(poll_interval, 7), agent=HELPDESK_AGENT)
        if self.billing is not None:
            text += _BILLING.format(url=self.billing.url, poll=poll_interval)
        return text

    def secrets(self) -> dict[str, str]:
        found = {"helpdesk_api_token": HELPDESK_TOKEN, "helpdesk_webhook_secret": HELPDESK_WEBHOOK_SECRET}
        if self.billing is not None:
            found |= {"billing_secret_key": BILLING_KEY, "billing_webhook_secret": BILLING_WEBHOOK_SECRET}
        return found

    def mapping(self) -> str:
        text = packaged_mapping()
        return text if self.billing is not None else without_app(text, "billing")


_HELPDESK = """
[apps.helpdesk]
connector = "zendesk"
poll_interval = {poll}              # Zendesk's user export allows 10 requests a minute
[apps.helpdesk.settings]
base_url = "{url}"
email = "{agent}"
api_token_file = "secrets/helpdesk_api_token"
webhook_secret_file = "secrets/helpdesk_webhook_secret"
objects = ["users"]
job_poll_seconds = 0.2
"""

_BILLING = """
[apps.billing]
connector = "stripe"
poll_interval = {poll}
[apps.billing.settings]
base_url = "{url}"
secret_key_file = "secrets/billing_secret_key"
webhook_secret_file = "secrets/billing_webhook_secret"
requests_per_second = 100           # localstripe on loopback; Stripe's own limit is 25
"""
