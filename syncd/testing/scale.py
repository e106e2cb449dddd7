"""The multi-daemon scenario, shared by its test and its benchmark: HubSpot ↔ Mailchimp fakes
with ``records`` people between them, a config for ``syncd run`` on a given state, and readers
that say what each app holds and what it was sent.

People ``p0..p(3q-1)`` (``q = records // 4``): HubSpot holds ``0..2q-1``, Mailchimp ``q..3q-1``;
``q`` are in both, so a converged sync has ``3q`` people in each app and created ``q`` in each.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.testing.fakes.hubspot import HubSpotFake
from syncd.testing.fakes.mailchimp import MailchimpFake

TOKEN = "pat-na1-scale"
API_KEY = "0123456789abcdef0123456789abcdef-us1"
LIST_ID = "a1b2c3d4e5"
#: HubSpot's documented requests per rolling ten seconds for a private app.
HUBSPOT_LIMIT = 190

# People are edited in both apps while the initial sync runs, so a person can be edited before
# syncd has read both of their records: those first matches are settled by the policy (newest),
# as a team migrating live data would choose, not parked for review (the default).
MAPPING = """
name = "contacts"
key = "email"
initial_conflict = "policy"
[apps.crm]
object = "contacts"
[apps.email]
object = "members"
[conflict]
policy = "newest"
priority = ["crm", "email"]
[delete]
policy = "unlink"
[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.email = "email_address"
[fields.first_name]
transforms = ["trim"]
apps.crm = "properties.firstname"
apps.email = "merge_fields.FNAME"
"""


@dataclass
class Scenario:
    """Two started fakes seeded with ``records`` people (see the module docstring)."""

    records: int
    hubspot: HubSpotFake = field(init=False)
    mailchimp: MailchimpFake = field(init=False)

    @property
    def quarter(self) -> int:
        return self.records // 4

    @property
    def people(self) -> int:
        """People in each app once converged."""
        return 3 * self.quarter

    async def start(self) -> Scenario:
        self.hubspot = HubSpotFake(token=TOKEN, ten_second_limit=HUBSPOT_LIMIT)
        self.mailchimp = MailchimpFake(api_key=API_KEY, list_ids=(LIST_ID,))
        await self.hubspot.start()
        await self.mailchimp.start()
        q = self.quarter
        for i in range(2 * q):
            self.hubspot.seed({"email": f"p{i}@acme.io", "firstname": f"First {i}", "lastname": "Scale"})
        for i in range(q, 3 * q):
            self.mailchimp.seed(f"p{i}@acme.io", merge_fields={"FNAME": f"First {i}", "LNAME": "Scale"})
        return self

    async def stop(self) -> None:
        await self.hubspot.stop()
        await self.mailchimp.stop()

    def initial_names(self) -> dict[str, str]:
        return {f"p{i}@acme.io": f"First {i}" for i in range(self.people)}

    def write_config(
        self, folder: Path, state: str, *, poll_interval: float = 1.0, lease_ttl: float = 4.0
    ) -> Path:
        """``config.toml`` and ``mappings/contacts.toml`` in ``folder``; secrets come from ``env()``."""
        (folder / "mappings").mkdir(parents=True, exist_ok=True)
        (folder / "mappings" / "contacts.toml").write_text(MAPPING)
        config = folder / "config.toml"
        config.write_text(
            f"""state = {json.dumps(state)}
mappings = ["mappings"]
log_format = "json"
log_level = "info"
batch_size = 500

[daemon]
host = "127.0.0.1"
port = 0
lease_ttl = {lease_ttl!r}
drain_timeout = 2.0
full_reconcile_interval = 86400.0

[apps.crm]
connector = "hubspot"
poll_interval = {poll_interval!r}
[apps.crm.settings]
base_url = {json.dumps(self.hubspot.url)}
properties = ["email", "firstname", "lastname"]

[apps.email]
connector = "mailchimp"
poll_interval = {poll_interval!r}
[apps.email.settings]
base_url = {json.dumps(self.mailchimp.url)}
list_id = {json.dumps(LIST_ID)}
"""
        )
        return config

    @staticmethod
    def env() -> dict[str, str]:
        return {"SYNCD_APPS__CRM__SETTINGS__TOKEN": TOKEN, "SYNCD_APPS__EMAIL__SETTINGS__API_KEY": API_KEY}

    # -- what the apps hold ----------------------------------------------------------------------

    def hubspot_ids(self) -> dict[str, str]:
        """Live contacts: lower-cased email → id."""
        out = {}
        for rid in self.hubspot.live_ids():
            rec = self.hubspot.record(rid)
            if rec is not None:
                out[str(rec["properties"]["email"]).lower()] = rid
        return out

    def hubspot_names(self) -> dict[str, str]:
        out = {}
        for rid in self.hubspot.live_ids():
            rec = self.hubspot.record(rid)
            if rec is not None:
                out[str(rec["properties"]["email"]).lower()] = str(rec["properties"].get("firstname") or "")
        return out

    def mailchimp_names(self) -> dict[str, str]:
        return {
            m.email.lower(): str(m.merge_fields.get("FNAME") or "")
            for m in self.mailchimp.audience(LIST_ID).members.values()
            if m.status != "archived"
        }

    def held(self) -> int:
        """Records in both apps together (``2 * people`` once converged)."""
        return len(self.hubspot.live_ids()) + len(self.mailchimp.audience(LIST_ID).members)

    def converged(self, expected: dict[str, str]) -> bool:
        return self.hubspot_names() == expected and self.mailchimp_names() == expected

    # -- what the apps were sent -----------------------------------------------------------------

    def hubspot_inputs(self, kind: str) -> list[dict[str, Any]]:
        """The inputs of every ``batch/{kind}`` request HubSpot received (create, update)."""
        out: list[dict[str, Any]] = []
        for req in self.hubspot.captured:
            if req.method == "POST" and req.path.endswith(f"/batch/{kind}"):
                out += json.loads(req.body).get("inputs", [])
        return out

    def hubspot_creates(self) -> Counter[str]:
        """Per email, how many times HubSpot was asked to create the contact (``batch/create``,
        or ``batch/upsert`` by email, which creates a contact the first time)."""
        inputs = self.hubspot_inputs("create") + self.hubspot_inputs("upsert")
        return Counter(str(i["properties"]["email"]).lower() for i in inputs)

    def mailchimp_member_posts(self) -> int:
        """Members Mailchimp created: single ``POST …/members`` plus batch-subscribe creations."""
        single = sum(
            1
            for m, p in self.mailchimp.requests
            if m == "POST" and p.split("?")[0].rstrip("/").endswith("/members")
        )
        return single + sum(1 for _, what in self.mailchimp.batch_members if what == "created")

    def mailchimp_member_updates(self) -> Counter[str]:
        """Per email, the member updates Mailchimp received in batch subscribes."""
        return Counter(email for email, what in self.mailchimp.batch_members if what == "updated")

    def requests(self) -> dict[str, int]:
        return {"crm": len(self.hubspot.requests), "email": len(self.mailchimp.requests)}
