"""Black-box: `syncd forget EMAIL` erases a person in HubSpot and Mailchimp (the fakes on loopback,
their real erasure routes) and in syncd's state, keeps a receipt without personal data, retries an
app that failed, and never lets a later sync bring the person back."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from syncd.testing.fakes.hubspot import HubSpotFake
from syncd.testing.fakes.mailchimp import MailchimpFake

from .apps import LIST_ID, hubspot_emails, mailchimp_emails
from .test_hubspot_mailchimp import _config, _sync, _syncd, fakes

__all__ = ["fakes"]

pytestmark = pytest.mark.slow

PERSON = "ada.lovelace@acme.io"


def _state_text(cfg: Path) -> str:
    """Everything syncd's state database holds, as text (to look for the person in it)."""
    conn = sqlite3.connect(cfg.parent / "state.db")
    try:
        return "\n".join(
            "\n".join(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall()))
            for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        )
    finally:
        conn.close()


async def _seeded(tmp_path: Path, hubspot: HubSpotFake, mailchimp: MailchimpFake) -> Path:
    hubspot.seed({"email": PERSON, "firstname": "Ada", "lastname": "Lovelace", "lifecyclestage": "lead"})
    hubspot.seed({"email": "grace@acme.io", "firstname": "Grace", "lifecyclestage": "lead"})
    mailchimp.seed("bob@acme.io", merge_fields={"FNAME": "Bob"})
    cfg = _config(tmp_path, hubspot, mailchimp)
    await _sync(cfg)
    hubspot.edit(hubspot_emails(hubspot)[PERSON], {"lastname": "King"})  # some history to erase
    await _sync(cfg)
    assert PERSON in mailchimp_emails(mailchimp)
    return cfg


async def test_forget_erases_the_person_in_every_app_and_in_the_state(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    hubspot, mailchimp = fakes
    cfg = await _seeded(tmp_path, hubspot, mailchimp)
    assert "Lovelace" in _state_text(cfg)

    code, out, err = await _syncd(cfg, "forget", PERSON, "--dry-run", "--json")
    assert code == 0, err
    preview = json.loads(out)
    assert preview["apps"] == {"crm": {"records": 1}, "email": {"records": 1}}
    assert PERSON in hubspot_emails(hubspot)  # a dry run erases nothing

    code, out, err = await _syncd(cfg, "forget", PERSON, "--yes", "--json")
    assert code == 0, err
    receipt = json.loads(out)
    assert receipt["status"] == "done"
    assert {app: r["erased"] for app, r in receipt["apps"].items()} == {"crm": 1, "email": 1}
    assert PERSON not in out
    # The apps' erasure routes were used: HubSpot's GDPR delete, Mailchimp's permanent delete.
    assert any(path.endswith("/gdpr-delete") for _, path in hubspot.requests)
    assert any(path.endswith("/actions/delete-permanent") for _, path in mailchimp.requests)
    assert PERSON not in hubspot_emails(hubspot)
    assert mailchimp.member(PERSON) is None
    # Nothing of the person is left in the state: no value, no change-log line, no outbox row.
    text = _state_text(cfg)
    for trace in ("Lovelace", "King", "ada.lovelace"):
        assert trace not in text, trace
    code, _, _ = await _syncd(cfg, "show", PERSON)
    assert code != 0
    # The others are untouched and keep syncing.
    assert sorted(hubspot_emails(hubspot)) == ["bob@acme.io", "grace@acme.io"]
    assert (await _sync(cfg))["writes"] == 0

    # A record of the person that turns up again in one app is never synced to the others.
    mailchimp.seed(PERSON, merge_fields={"FNAME": "Ada"})
    stats = await _sync(cfg)
    assert stats["writes"] == 0
    assert PERSON not in hubspot_emails(hubspot)
    assert "Lovelace" not in _state_text(cfg)


async def test_forget_with_an_app_down_is_partial_and_the_next_sync_finishes_it(
    tmp_path: Path, fakes: tuple[HubSpotFake, MailchimpFake]
) -> None:
    hubspot, mailchimp = fakes
    cfg = await _seeded(tmp_path, hubspot, mailchimp)
    member = hashlib.md5(PERSON.encode()).hexdigest()
    mailchimp.inject("500", times=50, path_prefix=f"/3.0/lists/{LIST_ID}/members/{member}/actions")
    code, out, err = await _syncd(cfg, "forget", PERSON, "--yes", "--json")
    assert code == 1, err
    receipt = json.loads(out)
    assert receipt["status"] == "partial"
    assert receipt["apps"]["crm"]["erased"] == 1
    assert len(receipt["apps"]["email"]["failed"]) == 1
    assert PERSON not in out
    assert PERSON not in hubspot_emails(hubspot)
    mailchimp.failures.clear()
    # The member Mailchimp still holds is neither synced back to HubSpot nor left behind.
    await _sync(cfg)
    assert mailchimp.member(PERSON) is None
    assert PERSON not in hubspot_emails(hubspot)
    conn = sqlite3.connect(cfg.parent / "state.db")
    try:
        assert conn.execute("SELECT status FROM erasures").fetchall() == [("done",)]
    finally:
        conn.close()
