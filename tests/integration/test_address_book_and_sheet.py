"""Black-box: HubSpot (its fake on loopback), a real Radicale address book and an XLSX file kept
by a person, synced by the ``syncd`` command: ``sync --once`` for the first sync, then
``syncd run`` carrying edits from the file and from the address book to the other two apps."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import vobject

from syncd.testing import radicale
from syncd.testing.fakes.hubspot import HubSpotFake

from ..connectors.carddav import cards
from ..daemon.harness import ADMIN_TOKEN, DaemonProcess, base_env, wait_for
from .apps import hubspot_emails

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not radicale.available(), reason="Radicale is not installed (pip install radicale)"),
]

TOKEN = "pat-na1-book-and-sheet"
USER, PASSWORD = "sales", "radicale-password-1"

MAPPING = """
name = "people"
key = "email"
initial_conflict = "policy"
[apps.crm]
object = "contacts"
[apps.book]
object = "contacts"
[apps.sheet]
object = "rows"
[conflict]
policy = "priority"
priority = ["crm", "book", "sheet"]
[delete]
policy = "unlink"
[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.book = "email"
apps.sheet = "Email"
[fields.first_name]
transforms = ["trim"]
apps.crm = "properties.firstname"
apps.book = "n.given"
apps.sheet = "First name"
[fields.last_name]
transforms = ["trim"]
apps.crm = "properties.lastname"
apps.book = "n.family"
apps.sheet = "Last name"
[fields.phone]
transforms = [{ e164 = "US" }]
apps.crm = "properties.phone"
apps.book = "tel"
apps.sheet = "Phone"
"""


def _config(root: Path, hubspot: HubSpotFake, book_url: str) -> Path:
    (root / "people.toml").write_text(MAPPING)
    (root / "dav-password").write_text(PASSWORD)
    config = root / "config.toml"
    config.write_text(
        f"""
state = "state/syncd.db"
mappings = ["people.toml"]
log_format = "json"
log_level = "info"

[daemon]
host = "127.0.0.1"
port = 0
full_reconcile_interval = 86400

[apps.crm]
connector = "hubspot"
poll_interval = 1.0
[apps.crm.settings]
base_url = "{hubspot.url}"
properties = ["email", "firstname", "lastname", "phone"]

[apps.book]
connector = "carddav"
poll_interval = 1.0
[apps.book.settings]
url = "{book_url}"
username = "{USER}"
password_file = "{root / "dav-password"}"

[apps.sheet]
connector = "sheet"
poll_interval = 1.0
[apps.sheet.settings]
path = "{root / "people.xlsx"}"
"""
    )
    return config


def _workbook(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "People"
    sheet.append(["Email", "First name", "Last name", "Phone", "Notes"])
    for row in rows:
        sheet.append([*row, "kept by a person"])
    book.save(path)


def _sheet_rows(path: Path) -> dict[str, dict[str, Any]]:
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    out: dict[str, dict[str, Any]] = {}
    for values in rows[1:]:
        row = dict(zip(header, values, strict=False))
        if row.get("Email"):
            email = str(row["Email"]).strip().lower()
            assert email not in out, f"duplicate row for {email}"
            out[email] = row
    return out


def _book_cards(dav: httpx.Client, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in cards.names(dav, path):
        card = vobject.readOne(cards.get(dav, path, name))
        email = card.email.value.strip().lower()
        assert email not in out, f"duplicate card for {email}"
        out[email] = (name, card)
    return out


@pytest.fixture
def server() -> Iterator[radicale.RadicaleServer]:
    with radicale.RadicaleServer({USER: PASSWORD}) as running:
        yield running


@pytest.fixture
async def hubspot() -> AsyncIterator[HubSpotFake]:
    fake = HubSpotFake(token=TOKEN)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def _syncd(config: Path, *args: str) -> dict[str, Any]:
    env = base_env(SYNCD_APPS__CRM__SETTINGS__TOKEN=TOKEN)
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
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, (
        f"syncd {' '.join(args)} exited {proc.returncode}\n{out.decode()}\n{err.decode()}"
    )
    result: dict[str, Any] = json.loads(out)
    return result


async def test_hubspot_an_address_book_and_a_spreadsheet_converge_and_keep_converging(
    tmp_path: Path, server: radicale.RadicaleServer, hubspot: HubSpotFake
) -> None:
    path = server.create_addressbook(USER, "sales")
    dav = server.client(USER)
    hubspot.seed(
        {"email": "ada@acme.io", "firstname": "Ada", "lastname": "Lovelace", "phone": "+14155550100"}
    )
    hubspot.seed({"email": "grace@acme.io", "firstname": "Grace", "lastname": "Hopper"})
    cards.put(
        dav,
        path,
        "ada.vcf",
        cards.vcard3("u-ada", fn="Ada Lovelace", given="Ada", family="Lovelace", email="ADA@acme.io"),
    )
    cards.put(
        dav,
        path,
        "alan.vcf",
        cards.vcard3(
            "u-alan",
            fn="Alan Turing",
            given="Alan",
            family="Turing",
            email="alan@acme.io",
            extra="X-SOCIALPROFILE:alan\r\n",
        ),
    )
    _workbook(
        tmp_path / "people.xlsx",
        [("grace@acme.io", "Grace", "Hopper", ""), ("edsger@acme.io", "Edsger", "Dijkstra", "")],
    )
    config = _config(tmp_path, hubspot, f"{server.url}{path}")

    first = await _syncd(config, "sync", "--once", "--json")
    assert first["errors"] == 0, first
    everyone = ["ada@acme.io", "alan@acme.io", "edsger@acme.io", "grace@acme.io"]
    assert sorted(hubspot_emails(hubspot)) == everyone
    assert sorted(_book_cards(dav, path)) == everyone
    assert sorted(_sheet_rows(tmp_path / "people.xlsx")) == everyone
    # What a person keeps beside the synced columns and properties survives the writes.
    assert {r["Notes"] for r in _sheet_rows(tmp_path / "people.xlsx").values()} >= {"kept by a person"}
    assert "X-SOCIALPROFILE" in cards.get(dav, path, "alan.vcf")
    assert (await _syncd(config, "sync", "--once", "--json"))["writes"] == 0

    daemon = DaemonProcess(
        config, base_env(SYNCD_APPS__CRM__SETTINGS__TOKEN=TOKEN, SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN)
    )
    await daemon.start(within=60)
    try:
        # A person edits the spreadsheet (saved as a new file, as Excel does)...
        book = openpyxl.load_workbook(tmp_path / "people.xlsx")
        sheet = book.active
        assert sheet is not None
        for row in sheet.iter_rows(min_row=2):
            if str(row[0].value).lower() == "edsger@acme.io":
                row[3].value = "(415) 555-0199"
        book.save(tmp_path / "people.xlsx")
        # ...and a sales person edits a card on the phone.
        cards.edit(dav, path, "alan.vcf", {"tel": "+1 415 555 0142"})

        def crm_phone(email: str) -> Any:
            rid = hubspot_emails(hubspot).get(email)
            return (hubspot.record(rid) or {}).get("properties", {}).get("phone") if rid else None

        def book_phone(email: str) -> Any:
            entry = _book_cards(dav, path).get(email)
            return getattr(entry[1], "tel", None) and entry[1].tel.value if entry else None

        def converged() -> bool:
            rows = _sheet_rows(tmp_path / "people.xlsx")
            return (
                crm_phone("edsger@acme.io") == "+14155550199"
                and str(book_phone("edsger@acme.io") or "").replace(" ", "").endswith("4155550199")
                and crm_phone("alan@acme.io") == "+14155550142"
                and "4155550142"
                in "".join(c for c in str(rows["alan@acme.io"].get("Phone") or "") if c.isdigit())
            )

        await wait_for(converged, 60, what="the edits to reach the other two apps", every=0.5)
        assert await daemon.stop(within=30) == 0
    finally:
        daemon.kill()
    assert sorted(hubspot_emails(hubspot)) == everyone
    assert sorted(_book_cards(dav, path)) == everyone
    assert sorted(_sheet_rows(tmp_path / "people.xlsx")) == everyone
    assert (await _syncd(config, "sync", "--once", "--json"))["writes"] == 0
    assert os.path.exists(tmp_path / "people.xlsx")
