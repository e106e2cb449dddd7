"""HubSpot ↔ Mailchimp through ``syncd sync --once`` (a real subprocess) against both fake apps.

The fakes run in the test's event loop on loopback ports and inject 429s and 5xx errors; the
shipped example mapping (mappings/contacts.toml) decides what syncs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from syncd.testing.fakes.hubspot import HubSpotFake
from syncd.testing.fakes.mailchimp import MailchimpFake

from .apps import API_KEY, LIST_ID, PROPERTIES, hubspot_emails, hubspot_fake, mailchimp_emails, mailchimp_fake

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "pat-na1-integration"

pytestmark = pytest.mark.slow


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[HubSpotFake, MailchimpFake]]:
    hubspot, mailchimp = hubspot_fake(TOKEN), mailchimp_fake()
    await hubspot.start()
    await mailchimp.start()
    try:
        yield hubspot, mailchimp
    finally:
        await hubspot.stop()
        await mailchimp.stop()


def _config(root: Path, hubspot: HubSpotFake, mailchimp: MailchimpFake) -> Path:
    cfg = root / "config.toml"
    cfg.write_text(
        f"""
state = "state.db"
mappings = ["{ROOT / "mappings" / "contacts.toml"}"]
log_format = "json"
log_level = "warning"

[apps.crm]
connector = "hubspot"
[apps.crm.settings]
base_url = "{hubspot.url}"
properties = {json.dumps(PROPERTIES)}

[apps.email]
connector = "mailchimp"
[apps.email.settings]
base_url = "{mailchimp.url}"
list_id = "{LIST_ID}"
"""
    )
    return cfg


async def _syncd(cfg: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["SYNCD_APPS__CRM__SETTINGS__TOKEN"] = TOKEN
    env["SYNCD_APPS__EMAIL__SETTINGS__API_KEY"] = API_KEY
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd.cli",
        "--config",
        str(cfg),
        *args,
        cwd=cfg.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    return proc.returncode or 0, out.decode(), err.decode()


async def _sync(cfg: Path) -> dict[str, Any]:
    code, out, err = await _syncd(cfg, "sync", "--once", "--json")
    assert code == 0, f"sync exited {code}\n{out}\n{err}"
    return json.loads(out)


async def test_hubspot_and_mailchimp_converge_without_duplicates_through_429s_and_5xx(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    hubspot, mailchimp = fakes
    for i in range(30):
        hubspot.seed(
            {"email": f"Person{i}@Acme.io", "firstname": f"P{i}", "lastname": "Crm", "lifecyclestage": "lead"}
        )
    for i in range(20, 45):
        mailchimp.seed(
            f"person{i}@acme.io", merge_fields={"FNAME": f"P{i}", "LNAME": "Crm" if i < 30 else "List"}
        )
    for fake in (hubspot, mailchimp):
        fake.inject("429", times=2)
        fake.inject("500", times=2)
    cfg = _config(tmp_path, hubspot, mailchimp)

    first = await _sync(cfg)
    assert first["linked"] == 10
    hub, mc = list(hubspot_emails(hubspot)), mailchimp_emails(mailchimp)
    assert len(hub) == len(set(hub)) == 45
    assert len(mc) == len(set(mc)) == 45
    assert not hubspot.failures, "the injected failures were never met"
    assert not mailchimp.failures, "the injected failures were never met"

    second = await _sync(cfg)
    assert second["writes"] == 0, second

    # an edit on each side travels to the other, with no echo write afterwards
    hubspot.edit(hubspot_emails(hubspot)["person3@acme.io"], {"firstname": "Edited in CRM"})
    mailchimp.edit("person40@acme.io", merge_fields={"LNAME": "Edited in list"})
    third = await _sync(cfg)
    assert third["updated"] == 2, third
    assert mailchimp.member("person3@acme.io")["merge_fields"]["FNAME"] == "Edited in CRM"
    contact = hubspot.record(hubspot_emails(hubspot)["person40@acme.io"])
    assert contact["properties"]["lastname"] == "Edited in list"
    assert (await _sync(cfg))["writes"] == 0


async def test_hubspot_value_with_a_lone_surrogate_is_quarantined_and_the_rest_syncs(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    hubspot, mailchimp = fakes
    for i in range(5):
        hubspot.seed({"email": f"p{i}@acme.io", "firstname": f"P{i}", "lifecyclestage": "lead"})
    # HubSpot's JSON can carry an escaped lone surrogate ("\ud800"): valid JSON, not valid text.
    bad = hubspot.seed({"email": "odd@acme.io", "firstname": "A\ud800", "lifecyclestage": "lead"})
    cfg = _config(tmp_path, hubspot, mailchimp)
    code, out, err = await _syncd(cfg, "sync", "--once", "--json")
    assert code == 1, err
    assert "Traceback" not in err
    stats = json.loads(out)
    assert stats["apps"]["crm"]["quarantined"] == 1
    assert sorted(mailchimp_emails(mailchimp)) == [f"p{i}@acme.io" for i in range(5)]
    code, out, _ = await _syncd(cfg, "deadletters", "list", "--json")
    (letter,) = json.loads(out)
    assert (letter["app"], letter["op"], letter["remote_id"]) == ("crm", "read", bad)
    # Later edits in HubSpot still flow.
    hubspot.edit(hubspot_emails(hubspot)["p1@acme.io"], {"firstname": "Edited"})
    code, out, err = await _syncd(cfg, "sync", "--once", "--json")
    assert mailchimp.member("p1@acme.io")["merge_fields"]["FNAME"] == "Edited"


async def test_a_create_whose_answer_was_lost_is_not_resent_over_an_edit_made_since(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    # Ada is on the list only; syncd creates her in the CRM with a batch upsert, which HubSpot
    # carries out but whose answer is lost (502). A salesperson then renames her in the CRM. A
    # blind resend of the upsert would put the old name back over the edit; syncd must instead
    # look the email up on its next attempt, find the contact and keep the salesperson's name.
    hubspot, mailchimp = fakes
    mailchimp.seed("ada@acme.io", merge_fields={"FNAME": "Ada", "LNAME": "List"})
    upsert = "/crm/v3/objects/contacts/batch/upsert"
    hubspot.lose_responses(1, upsert)
    cfg = _config(tmp_path, hubspot, mailchimp)

    code, out, err = await _syncd(cfg, "sync", "--once", "--json")
    assert code == 1, f"a write whose outcome is unknown is an error of this run\n{out}\n{err}"
    upserts = [c for c in hubspot.captured if c.method == "POST" and c.path == upsert]
    assert len(upserts) == 1, "the upsert whose answer was lost was sent again"
    made = hubspot_emails(hubspot)["ada@acme.io"]
    hubspot.edit(made, {"firstname": "Augusta"})

    await _syncd(cfg, "sync", "--once", "--json")
    await _syncd(cfg, "sync", "--once", "--json")
    assert hubspot.record(made)["properties"]["firstname"] == "Augusta"
    assert list(hubspot_emails(hubspot)) == ["ada@acme.io"]
    assert [c for c in hubspot.captured if c.method == "POST" and c.path == upsert] == upserts
