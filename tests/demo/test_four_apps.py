"""``syncd demo --apps all``: the help desk and billing apps, their workspace and the customer view."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from syncd.demo.fourapps import ExtraApps, packaged_mapping, without_app
from syncd.demo.workspace import Workspace
from syncd.mapping import parse_mapping
from syncd.settings import load_settings
from syncd.testing.localstripe import unavailable

from .test_command import run_syncd

ROOT = Path(__file__).resolve().parents[2]


def test_the_packaged_four_app_mapping_is_the_shipped_customers_mapping() -> None:
    # the demo ships its own copy so that it works from an installed package
    assert packaged_mapping() == (ROOT / "mappings" / "customers.toml").read_text(encoding="utf-8")


def test_taking_billing_out_of_the_mapping_leaves_a_valid_three_app_mapping() -> None:
    text = without_app(packaged_mapping(), "billing")
    mapping = parse_mapping(text, source="customers.toml", known_apps={"crm", "email", "helpdesk"})
    assert mapping.apps == ("crm", "email", "helpdesk")
    assert "apps.billing" not in text
    assert '"billing"' not in text
    # the fields only Stripe fed are gone; the shared ones keep their other apps
    for gone in ("plan", "subscription_status", "mrr", "delinquent", "lifetime_paid"):
        assert gone not in mapping.fields
    assert mapping.to_remote("helpdesk", {"first_name": "Ada", "last_name": "Lovelace"}) == {
        "name": "Ada Lovelace"
    }
    assert mapping.conflict_policy("last_name").priority == ("crm", "helpdesk", "email")


async def test_the_four_app_workspace_loads_with_secrets_from_files_and_validates_offline(
    tmp_path: Path,
) -> None:
    extra = ExtraApps()
    assert extra.billing is not None
    extra.billing.url = "http://127.0.0.1:4"  # not started: the config only names it
    await extra.helpdesk.start()
    try:
        workspace = Workspace.create(tmp_path / "w")
        workspace.write(
            hubspot_url="http://127.0.0.1:1", mailchimp_url="http://127.0.0.1:2", port=0, extra=extra
        )
    finally:
        await extra.helpdesk.stop()
    raw = tomllib.loads(workspace.config.read_text())
    assert raw["mappings"] == ["mappings/customers.toml"]
    assert sorted(raw["apps"]) == ["billing", "crm", "email", "helpdesk"]
    assert "company" in raw["apps"]["crm"]["settings"]["properties"]
    settings = load_settings(workspace.config)
    secret = settings.apps["helpdesk"].settings["api_token"]
    assert secret == "syncd-demo-zendesk-api-token"
    assert settings.apps["billing"].settings["secret_key"].startswith("sk_test_")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "syncd.cli", "validate", "--offline", "--config", str(workspace.config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_without_localstripe_the_workspace_has_no_billing_app(tmp_path: Path) -> None:
    extra = ExtraApps(billing=None, billing_missing="localstripe is not installed")
    await extra.helpdesk.start()
    try:
        workspace = Workspace.create(tmp_path / "w")
        workspace.write(
            hubspot_url="http://127.0.0.1:1", mailchimp_url="http://127.0.0.1:2", port=0, extra=extra
        )
    finally:
        await extra.helpdesk.stop()
    assert sorted(load_settings(workspace.config).apps) == ["crm", "email", "helpdesk"]
    text = workspace.mapping.read_text()
    assert "apps.billing" not in text
    assert '"billing"' not in text
    assert parse_mapping(text, known_apps={"crm", "email", "helpdesk"}).apps == ("crm", "email", "helpdesk")


@pytest.mark.slow
def test_demo_with_all_apps_converges_and_prints_one_customer_linked_in_all_four(tmp_path: Path) -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    proc = run_syncd(["demo", "--once", "--apps", "all", "--customers", "40", "--seed", "3"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"Fake Zendesk at \S+: 4 end users \(3 also in HubSpot and Mailchimp", out)
    assert re.search(r"localstripe \(a fake Stripe\) at \S+: 4 customers \(3 also in the other apps\)", out)
    assert "all 4 apps send their webhooks to it. It polled all 4 apps and found 0 writes to make" in out
    assert "  mappings/customers.toml  what syncs: the example mapping" in out
    view = re.search(r"One customer, 4 apps .*\n  syncd show (\S+) --config \S+\n  linked: (.*)\n", out)
    assert view is not None, out
    linked = dict(part.split(" ", 1) for part in view.group(2).split(";")[0].split(", "))
    assert sorted(linked) == ["billing", "crm", "email", "helpdesk"]
    assert linked["billing"].startswith("cus_")
    assert "plan 'Team', mrr 30.0" in view.group(2)
    assert "--once: converged with 0 errors; stopping." in out
    assert proc.stderr == "", "the demo logs nothing at warning level or above when all goes well"
