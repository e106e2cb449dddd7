"""Black-box: trust defects between HubSpot and Mailchimp, through ``syncd sync --once``.

The two fakes run on loopback; the tests change records through the apps' own HTTP APIs (as a
person or another integration would), run the real ``syncd`` command as a subprocess with the
example mapping (mappings/contacts.toml, its delete policy varied) and read the outcome from the
fakes and from the state store.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.testing.fakes.hubspot import HubSpotFake
from syncd.testing.fakes.mailchimp import MailchimpFake

from .apps import API_KEY, LIST_ID, PROPERTIES, hubspot_emails, hubspot_fake, mailchimp_emails, mailchimp_fake

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "pat-na1-trust"

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


class Apps:
    """The two fakes, their HTTP APIs as a client would call them, and the ``syncd`` command."""

    def __init__(self, root: Path, hubspot: HubSpotFake, mailchimp: MailchimpFake, delete: str) -> None:
        self.root, self.hubspot, self.mailchimp = root, hubspot, mailchimp
        shipped = (ROOT / "mappings" / "contacts.toml").read_text()
        text, n = re.subn(r'(\[delete\]\npolicy = )"[a-z]+"', rf'\1"{delete}"', shipped)
        assert n == 1, "the example mapping's [delete] table changed shape"
        (root / "contacts.toml").write_text(text)
        (root / "config.toml").write_text(
            f"""
state = "state.db"
mappings = ["contacts.toml"]
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

    # -- the command ----------------------------------------------------------------------------

    async def syncd(self, *args: str) -> tuple[int, str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        env["SYNCD_APPS__CRM__SETTINGS__TOKEN"] = TOKEN
        env["SYNCD_APPS__EMAIL__SETTINGS__API_KEY"] = API_KEY
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syncd.cli",
            "--config",
            str(self.root / "config.toml"),
            *args,
            cwd=self.root,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
        return proc.returncode or 0, out.decode(), err.decode()

    async def sync(self, *extra: str) -> dict[str, Any]:
        code, out, err = await self.syncd("sync", "--once", "--json", *extra)
        assert code == 0, f"sync exited {code}\n{out}\n{err}"
        stats: dict[str, Any] = json.loads(out)
        return stats

    def linked(self, app: str) -> set[str]:
        conn = sqlite3.connect(self.root / "state.db")
        try:
            return {r[0] for r in conn.execute("SELECT remote_id FROM links WHERE app = ?", (app,))}
        finally:
            conn.close()

    # -- the apps' HTTP APIs ----------------------------------------------------------------------

    async def hubspot_call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.hubspot.url) as client:
            response = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
            )
        assert response.status_code < 300, f"HubSpot {method} {path}: {response.status_code} {response.text}"
        return response

    async def mailchimp_call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.mailchimp.url + "/3.0") as client:
            response = await client.request(method, path, json=body, auth=("anystring", API_KEY))
        assert response.status_code < 300, (
            f"Mailchimp {method} {path}: {response.status_code} {response.text}"
        )
        return response

    def contact_id(self, email: str) -> str:
        return hubspot_emails(self.hubspot)[email]

    def members(self) -> list[str]:
        return sorted(mailchimp_emails(self.mailchimp))

    def contacts(self) -> list[str]:
        return sorted(
            str(self.hubspot.record(r)["properties"]["email"]).lower() for r in self.hubspot.live_ids()
        )

    def audience_size(self) -> int:
        """Every member of the audience, archived ones included."""
        return len(self.mailchimp.audience(LIST_ID).members)

    def member_status(self, email: str) -> str | None:
        member = self.mailchimp.member(email)
        return None if member is None else str(member["status"])


def _people(hubspot: HubSpotFake, n: int = 5) -> None:
    """People in the CRM only: the first sync puts them on the list (bystanders keep shares small)."""
    for i in range(n):
        hubspot.seed(
            {"email": f"person{i}@acme.io", "firstname": f"P{i}", "lastname": "Crm", "lifecyclestage": "lead"}
        )


async def _synced(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake], delete: str = "propagate"
) -> Apps:
    hubspot, mailchimp = fakes
    _people(hubspot)
    apps = Apps(tmp_path, hubspot, mailchimp, delete)
    await apps.sync()
    assert apps.members() == apps.contacts() == [f"person{i}@acme.io" for i in range(5)]
    return apps


# -- 8. natural key change when the remote id derives from the key --------------------------------


async def test_email_changed_in_hubspot_moves_the_mailchimp_member_instead_of_adding_one(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    apps = await _synced(tmp_path, fakes)
    contact = apps.contact_id("person1@acme.io")
    await apps.hubspot_call(
        "PATCH", f"/crm/v3/objects/contacts/{contact}", {"properties": {"email": "renamed@acme.io"}}
    )
    await apps.sync()
    assert "renamed@acme.io" in apps.members(), f"the new email did not reach Mailchimp: {apps.members()}"
    assert "person1@acme.io" not in apps.members(), "the member with the old email is still on the list"
    assert apps.audience_size() == 5, "a second member was added (the old one archived) instead of a move"
    assert apps.contacts().count("renamed@acme.io") == 1
    assert len(apps.contacts()) == 5

    await apps.hubspot_call(
        "PATCH", f"/crm/v3/objects/contacts/{contact}", {"properties": {"firstname": "Later"}}
    )
    await apps.sync()
    member = apps.mailchimp.member("renamed@acme.io")
    assert member is not None
    assert member["merge_fields"]["FNAME"] == "Later", "later edits no longer reach the moved member"
    assert (await apps.sync())["writes"] == 0


async def test_email_changed_in_mailchimp_reaches_hubspot_without_a_second_contact(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    apps = await _synced(tmp_path, fakes)
    contact = apps.contact_id("person2@acme.io")
    member = apps.mailchimp.member("person2@acme.io")
    assert member is not None
    await apps.mailchimp_call(
        "PATCH", f"/lists/{LIST_ID}/members/{member['id']}", {"email_address": "moved@acme.io"}
    )
    await apps.sync()
    assert len(apps.contacts()) == 5, f"a second contact was created: {apps.contacts()}"
    assert apps.contacts().count("moved@acme.io") == 1, f"HubSpot contacts: {apps.contacts()}"
    assert "person2@acme.io" not in apps.contacts()
    assert apps.contact_id("moved@acme.io") == contact
    assert apps.members().count("moved@acme.io") == 1
    assert len(apps.members()) == 5
    assert (await apps.sync())["writes"] == 0


# -- 9. deletes seen promptly, and each delete policy honoured --------------------------------------


async def test_hubspot_contact_archived_through_the_api_is_propagated_by_an_incremental_sync(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    apps = await _synced(tmp_path, fakes, delete="propagate")
    await apps.hubspot_call("DELETE", f"/crm/v3/objects/contacts/{apps.contact_id('person3@acme.io')}")
    await apps.sync()  # incremental: no --full
    assert "person3@acme.io" not in apps.members(), "the archived contact's member is still on the list"
    assert len(apps.members()) == 4
    assert "person3@acme.io" not in apps.contacts(), "the archived contact was recreated"


async def test_archive_policy_archives_the_mailchimp_member_of_an_archived_hubspot_contact(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    apps = await _synced(tmp_path, fakes, delete="archive")
    await apps.hubspot_call("DELETE", f"/crm/v3/objects/contacts/{apps.contact_id('person3@acme.io')}")
    await apps.sync()
    assert apps.member_status("person3@acme.io") == "archived", "the member was not archived"
    assert "person3@acme.io" not in apps.contacts(), "the archived contact was recreated"
    assert (await apps.sync())["writes"] == 0


async def test_archive_policy_archives_the_hubspot_contact_of_an_archived_mailchimp_member(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    apps = await _synced(tmp_path, fakes, delete="archive")
    member = apps.mailchimp.member("person4@acme.io")
    assert member is not None
    await apps.mailchimp_call("DELETE", f"/lists/{LIST_ID}/members/{member['id']}")
    await apps.sync()
    assert "person4@acme.io" not in apps.contacts(), "the HubSpot contact was not archived"
    assert apps.member_status("person4@acme.io") == "archived", "the archived member was re-subscribed"
    assert (await apps.sync())["writes"] == 0


async def test_ignore_policy_does_not_recreate_an_archived_hubspot_contact(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    apps = await _synced(tmp_path, fakes, delete="ignore")
    await apps.hubspot_call("DELETE", f"/crm/v3/objects/contacts/{apps.contact_id('person0@acme.io')}")
    await apps.sync()
    await apps.sync("--full")
    assert "person0@acme.io" not in apps.contacts(), "the archived contact was recreated in HubSpot"
    assert apps.member_status("person0@acme.io") not in (None, "archived"), "the Mailchimp member was removed"
    code, out, err = await apps.syncd("show", "person0@acme.io", "--json")
    assert code == 0, err
    assert "email" in {link["app"] for link in json.loads(out)["links"]}, "the Mailchimp link was dropped"
    assert (await apps.sync())["writes"] == 0


# -- 10. HubSpot merges ----------------------------------------------------------------------------


@pytest.mark.parametrize("delete", ["propagate", "unlink", "archive", "ignore"])
async def test_hubspot_merge_recreates_nothing_and_keeps_the_merged_away_member(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake], delete: str
) -> None:
    apps = await _synced(tmp_path, fakes, delete=delete)
    primary, merged = apps.contact_id("person0@acme.io"), apps.contact_id("person1@acme.io")
    await apps.hubspot_call(
        "POST", "/crm/v3/objects/contacts/merge", {"primaryObjectId": primary, "objectIdToMerge": merged}
    )
    contacts_after_merge = apps.contacts()
    await apps.sync()
    await apps.sync("--full")
    assert apps.contacts() == contacts_after_merge, "syncd recreated a contact after the merge"
    assert apps.member_status("person1@acme.io") not in (None, "archived"), (
        "the merged-away contact's member was deleted"
    )
    assert apps.member_status("person0@acme.io") not in (None, "archived")
    assert len(apps.members()) == 5
    assert apps.audience_size() == 5, "syncd added a member after the merge"
    assert merged not in apps.linked("crm"), "the merged-away contact id is still linked"
    assert (await apps.sync())["writes"] == 0
