"""The demo's two apps: the bundled HubSpot and Mailchimp fakes on loopback ports, seeded.

The fakes accept fixed demo credentials (``CRM_TOKEN``, ``EMAIL_API_KEY``) and sign or
authenticate their webhooks with fixed demo secrets, which the demo's config reads from
``*_file`` secret files, exactly as a production config would.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd.testing.fakes.hubspot import HubSpotFake, PropertyDef
from syncd.testing.fakes.mailchimp import MailchimpFake, subscriber_hash

from .dataset import OPT_IN_PROPERTY, Dataset

CRM_TOKEN = "pat-na1-syncd-demo"
CRM_CLIENT_SECRET = "syncd-demo-hubspot-client-secret"
EMAIL_API_KEY = "5d3c0de5d3c0de5d3c0de5d3c0de5d3c-us1"
EMAIL_WEBHOOK_SECRET = "syncd-demo-mailchimp-webhook-secret"
LIST_ID = "d3m0l1st01"

#: HubSpot contact properties the demo reads (the example mapping's paths, plus the custom one).
CRM_PROPERTIES = ("email", "firstname", "lastname", "phone", "lifecyclestage", OPT_IN_PROPERTY)


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One HTTP request against a fake's real API, printable as a ``curl`` command line."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: Any = None
    #: HTTP Basic credentials (user, password), sent as ``curl -u``.
    basic_auth: tuple[str, str] | None = None

    def curl(self) -> str:
        """The request as one shell-safe ``curl`` line."""
        parts = ["curl", "-sS"] + ([] if self.method == "GET" else ["-X", self.method])
        if self.basic_auth is not None:
            parts += ["-u", ":".join(self.basic_auth)]
        for name, value in self.headers.items():
            parts += ["-H", f"{name}: {value}"]
        if self.body is not None:
            parts += ["-H", "Content-Type: application/json", "-d", json.dumps(self.body)]
        parts.append(self.url)
        return " ".join(shlex.quote(p) for p in parts)


class DemoApps:
    """Both fakes: start, seed, point their webhooks at the daemon, stop."""

    def __init__(self) -> None:
        self.hubspot = HubSpotFake(token=CRM_TOKEN, client_secret=CRM_CLIENT_SECRET)
        self.hubspot.add_property(
            PropertyDef(
                OPT_IN_PROPERTY,
                "Newsletter opt-in",
                type="bool",
                field_type="booleancheckbox",
                options=("true", "false"),
                hubspot_defined=False,
            )
        )
        self.mailchimp = MailchimpFake(api_key=EMAIL_API_KEY, list_ids=(LIST_ID,))
        self._started: list[HubSpotFake | MailchimpFake] = []

    async def start(self) -> None:
        for fake in (self.hubspot, self.mailchimp):
            await fake.start()
            self._started.append(fake)

    async def stop(self) -> None:
        while self._started:
            await self._started.pop().stop()

    def seed(self, data: Dataset) -> None:
        """Put the data set in place as the apps' history (no webhooks: the daemon is not up yet)."""
        for props in data.contacts:
            self.hubspot.seed(props)
        for member in data.members:
            self.mailchimp.seed(member.email, status=member.status, merge_fields=member.merge_fields)

    def connect_webhooks(self, daemon_url: str) -> None:
        """Point both apps' webhooks at the daemon, as their admin screens would."""
        self.hubspot.webhook_url = f"{daemon_url}/webhooks/crm"
        self.mailchimp.webhook_url = f"{daemon_url}/webhooks/email?secret={EMAIL_WEBHOOK_SECRET}"

    def disconnect_webhooks(self) -> None:
        self.hubspot.webhook_url = None
        self.mailchimp.webhook_url = None

    # -- what the user is told to try ----------------------------------------------------------

    def contact_id(self, email: str) -> str | None:
        """The HubSpot id of the live contact with exactly this (lowercase) address."""
        for rid in self.hubspot.live_ids():
            record = self.hubspot.record(rid)
            if record is not None and record["properties"].get("email") == email:
                return rid
        return None

    def crm_edit(self, contact_id: str, properties: Mapping[str, str]) -> HttpCall:
        """A real HubSpot API call: PATCH one contact's properties."""
        return HttpCall(
            "PATCH",
            f"{self.hubspot.url}/crm/v3/objects/contacts/{contact_id}",
            {"Authorization": f"Bearer {CRM_TOKEN}"},
            {"properties": dict(properties)},
        )

    def member_read(self, email: str) -> HttpCall:
        """A real Mailchimp API call: GET one audience member (any user name, the key as password)."""
        return HttpCall(
            "GET",
            f"{self.mailchimp.url}/3.0/lists/{LIST_ID}/members/{subscriber_hash(email)}",
            {},
            basic_auth=("demo", EMAIL_API_KEY),
        )
