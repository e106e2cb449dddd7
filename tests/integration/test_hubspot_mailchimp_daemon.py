"""HubSpot ↔ Mailchimp through ``syncd run`` (a real subprocess) with webhooks from both fakes.

Both fakes inject 429s and 5xx errors and send webhooks for every change — the daemon's own API
writes included — so echo handling is exercised for real: an edit travels once, and its echo
comes back and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.testing.fakes.hubspot import HubSpotFake
from syncd.testing.fakes.mailchimp import MailchimpFake

from ..daemon.harness import ADMIN_TOKEN, DaemonProcess, base_env, wait_for, write_config
from .apps import API_KEY, LIST_ID, hubspot_emails, hubspot_fake, mailchimp_emails, mailchimp_fake

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "pat-na1-daemon"
HS_SECRET = "hubspot-client-secret-1"
MC_SECRET = "mailchimp-hook-secret-1"

pytestmark = pytest.mark.slow

WRITES = ("POST", "PATCH", "PUT", "DELETE")


def _writes(fake: HubSpotFake | MailchimpFake) -> list[tuple[str, str]]:
    """Write requests the fake received (HubSpot's search and batch reads are POSTs that write nothing)."""
    return [
        (m, p)
        for m, p in fake.requests
        if m in WRITES and "/search" not in p and "/batch/read" not in p and "/webhooks" not in p
    ]


async def test_hubspot_and_mailchimp_stay_in_sync_through_webhooks_without_echo_writes(
    tmp_path: Path,
) -> None:
    hubspot, mailchimp = hubspot_fake(TOKEN, HS_SECRET), mailchimp_fake()
    await hubspot.start()
    await mailchimp.start()
    daemon: DaemonProcess | None = None
    try:
        for i in range(10):
            hubspot.seed(
                {
                    "email": f"person{i}@acme.io",
                    "firstname": f"P{i}",
                    "lastname": "Crm",
                    "lifecyclestage": "lead",
                }
            )
        for i in range(5, 15):
            mailchimp.seed(
                f"Person{i}@acme.io", merge_fields={"FNAME": f"P{i}", "LNAME": "Crm" if i < 10 else "List"}
            )
        for fake in (hubspot, mailchimp):
            fake.inject("429", times=2)
            fake.inject("500", times=2)
        crm = {
            "connector": "hubspot",
            "poll_interval": 3600.0,
            "settings": {
                "base_url": hubspot.url,
                "properties": [
                    "email",
                    "firstname",
                    "lastname",
                    "phone",
                    "lifecyclestage",
                    "newsletter_opt_in",
                ],
            },
        }
        email = {
            "connector": "mailchimp",
            "poll_interval": 3600.0,
            "settings": {"base_url": mailchimp.url, "list_id": LIST_ID},
        }
        config = write_config(
            tmp_path,
            apps={"crm": crm, "email": email},
            mapping=(ROOT / "mappings" / "contacts.toml").read_text(),
        )
        env = base_env(
            SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN,
            SYNCD_APPS__CRM__SETTINGS__TOKEN=TOKEN,
            SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET=HS_SECRET,
            SYNCD_APPS__EMAIL__SETTINGS__API_KEY=API_KEY,
            SYNCD_APPS__EMAIL__SETTINGS__WEBHOOK_SECRET=MC_SECRET,
        )
        daemon = await DaemonProcess(config, env).start()
        await wait_for(
            lambda: (
                len(hubspot_emails(hubspot)) == 15
                and sorted(mailchimp_emails(mailchimp)) == sorted(hubspot_emails(hubspot))
            ),
            60,
            what="the first sync of both apps",
        )
        assert len(set(mailchimp_emails(mailchimp))) == 15
        assert not hubspot.failures
        assert not mailchimp.failures

        async with daemon.client() as admin:

            async def settled() -> bool:
                status = (await admin.get("/api/status")).json()
                return bool(status["outbox_depth"] == 0 and status["inbox_pending"] == 0)

            await wait_for(settled, 30, what="the daemon to settle")
            hubspot.webhook_url = f"{daemon.url}/webhooks/crm"
            mailchimp.webhook_url = f"{daemon.url}/webhooks/email?secret={MC_SECRET}"
            hub_before, mc_before = len(_writes(hubspot)), len(_writes(mailchimp))

            # An edit in HubSpot reaches Mailchimp by webhook (polls are an hour apart).
            hubspot.edit(hubspot_emails(hubspot)["person1@acme.io"], {"firstname": "Edited in CRM"})
            await wait_for(
                lambda: (
                    (mailchimp.member("person1@acme.io") or {}).get("merge_fields", {}).get("FNAME")
                    == "Edited in CRM"
                ),
                10,
                what="the HubSpot edit in Mailchimp",
            )
            # An edit in Mailchimp reaches HubSpot the same way.
            mailchimp.edit("person12@acme.io", merge_fields={"LNAME": "Edited in list"})
            await wait_for(
                lambda: (
                    hubspot.record(hubspot_emails(hubspot)["person12@acme.io"])["properties"]["lastname"]
                    == "Edited in list"
                ),
                10,
                what="the Mailchimp edit in HubSpot",
            )
            # Both fakes also sent webhooks for syncd's own writes: let every one be delivered and processed.
            await hubspot.webhooks_idle()
            await mailchimp.webhooks_idle()
            await wait_for(settled, 30, what="the echoes to be processed")
            await hubspot.webhooks_idle()
            await mailchimp.webhooks_idle()
            await wait_for(settled, 30, what="the echoes to be processed")

        assert len(_writes(mailchimp)) - mc_before == 1, _writes(mailchimp)[mc_before:]
        assert len(_writes(hubspot)) - hub_before == 1, _writes(hubspot)[hub_before:]
        assert all(
            d.status == 200 for d in [*hubspot.deliveries, *mailchimp.deliveries] if d.status is not None
        )
        assert await daemon.stop() == 0
    finally:
        if daemon is not None:
            daemon.kill()
        await hubspot.stop()
        await mailchimp.stop()
