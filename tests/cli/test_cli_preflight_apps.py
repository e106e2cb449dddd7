"""Black-box: ``syncd validate`` and ``syncd run`` ask HubSpot and Mailchimp (fakes) whether the
properties and merge fields a mapping names exist, and refuse to start when one does not."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from syncd.testing.fakes.hubspot import HubSpotFake
from syncd.testing.fakes.mailchimp import MailchimpFake

from ..daemon.harness import base_env, write_config
from ..integration.apps import API_KEY, LIST_ID, PROPERTIES, hubspot_fake, mailchimp_fake

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "pat-na1-preflight"


async def _syncd(config: Path, *args: str) -> tuple[int, str, str]:
    env = base_env(SYNCD_APPS__CRM__SETTINGS__TOKEN=TOKEN, SYNCD_APPS__EMAIL__SETTINGS__API_KEY=API_KEY)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd.cli",
        "--config",
        str(config),
        *args,
        cwd=config.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _config(folder: Path, hubspot: HubSpotFake, mailchimp: MailchimpFake, mapping: str) -> Path:
    folder.mkdir()
    return write_config(
        folder,
        apps={
            "crm": {"connector": "hubspot", "settings": {"base_url": hubspot.url, "properties": PROPERTIES}},
            "email": {"connector": "mailchimp", "settings": {"base_url": mailchimp.url, "list_id": LIST_ID}},
        },
        mapping=mapping,
    )


async def test_validate_names_a_hubspot_property_and_a_merge_field_that_do_not_exist_and_run_refuses(
    tmp_path: Path,
) -> None:
    hubspot, mailchimp = hubspot_fake(TOKEN), mailchimp_fake()
    await hubspot.start()
    await mailchimp.start()
    try:
        example = (ROOT / "mappings" / "contacts.toml").read_text()
        good = _config(tmp_path / "good", hubspot, mailchimp, example)
        code, out, err = await _syncd(good, "validate")
        assert code == 0, err
        assert "ok: " in out

        wrong = example.replace(
            'apps.crm = "properties.firstname"', 'apps.crm = "properties.firstnme"'
        ).replace('apps.email = "merge_fields.LNAME"', 'apps.email = "merge_fields.LNAM"')
        assert wrong.count("firstnme") == 1
        assert wrong.count('LNAM"') == 1
        bad = _config(tmp_path / "bad", hubspot, mailchimp, wrong)
        source = bad.parent / "mappings" / "sync.toml"
        expected = [
            f"{source}: fields.first_name.apps.crm: property 'firstnme' does not exist in HubSpot contacts "
            "(did you mean 'firstname'?)",
            f"{source}: fields.last_name.apps.email: audience '{LIST_ID}' has no merge field 'LNAM' "
            "(did you mean 'LNAME'?)",
        ]
        code, out, err = await _syncd(bad, "validate")
        assert code == 2, out + err
        assert err.splitlines() == expected
        requests_before = len(hubspot.requests) + len(mailchimp.requests)
        code, out, err = await _syncd(bad, "run")
        assert code == 2, out + err
        assert all(line in err for line in expected)
        assert not (bad.parent / "state").exists(), "the daemon must not start"
        reads = [r for r in [*hubspot.requests, *mailchimp.requests][requests_before:] if "/members" in r[1]]
        assert reads == [], "nothing is read or written before the mapping is fixed"
    finally:
        await hubspot.stop()
        await mailchimp.stop()
