"""Two Radicale address books kept in sync by syncd's runner, end to end through the connector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import vobject

from syncd.app import open_runner
from syncd.settings import load_settings
from syncd.testing.radicale import RadicaleServer

from . import cards
from .conftest import PASSWORD, USER

MAPPING = """
name = "people"
key = "email"
initial_conflict = "policy"
[apps.home]
object = "contacts"
[apps.work]
object = "contacts"
[conflict]
policy = "priority"
priority = ["home", "work"]
[delete]
policy = "propagate"
[fields.email]
transforms = ["email"]
apps.home = "email"
apps.work = "email"
[fields.first_name]
transforms = ["trim"]
apps.home = "n.given"
apps.work = "n.given"
[fields.last_name]
transforms = ["trim"]
apps.home = "n.family"
apps.work = "n.family"
[fields.note]
apps.home = "note"
apps.work = "note"
"""

CONFIG = """
state = "state.db"
mappings = ["people.toml"]
log_level = "error"
[apps.home]
connector = "carddav"
[apps.home.settings]
url = "{url}{home}"
username = "{user}"
password_file = "password.txt"
[apps.work]
connector = "carddav"
[apps.work.settings]
url = "{url}{work}"
username = "{user}"
password_file = "password.txt"
sync_mode = "etag"
"""


async def cycle(config: Path) -> dict[str, Any]:
    async with open_runner(load_settings(config), source=str(config)) as runner:
        stats = await runner.run_cycle()
        return stats.as_dict()


def emails(dav: httpx.Client, book: str) -> list[str]:
    found = [vobject.readOne(cards.get(dav, book, name)).email.value for name in cards.names(dav, book)]
    return sorted(e.lower() for e in found)


async def test_two_address_books_converge_without_duplicates_or_echo_and_keep_unmapped_properties(
    tmp_path: Path, radicale_server: RadicaleServer, dav: httpx.Client
) -> None:
    home, work = radicale_server.create_addressbook(USER), radicale_server.create_addressbook(USER)
    for i in range(4):
        text = cards.vcard3(f"h{i}", fn=f"P {i}", given=f"P{i}", family="Home", email=f"p{i}@example.org")
        cards.put(dav, home, f"h{i}.vcf", text)
    shared = cards.vcard4(
        "w3", fn="P 3", given="P3", family="Home", email="P3@Example.org", extra="X-SOCIALPROFILE:p3\r\n"
    )
    cards.put(dav, work, "w3.vcf", shared)
    (tmp_path / "people.toml").write_text(MAPPING)
    (tmp_path / "password.txt").write_text(PASSWORD)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(url=radicale_server.url, home=home, work=work, user=USER))

    await cycle(config)
    assert emails(dav, work) == [f"p{i}@example.org" for i in range(4)], "missing or duplicated cards"
    assert emails(dav, home) == [f"p{i}@example.org" for i in range(4)]
    quiet = await cycle(config)
    assert quiet["writes"] == 0, f"a quiet cycle wrote: {quiet}"
    # Both books' cursors were moved past syncd's own writes (sync token, ETags): nothing to read back.
    assert quiet["read"] == 0, f"a quiet cycle read syncd's own writes back: {quiet}"

    cards.edit(dav, work, "w3.vcf", {"note": "met at the conference"})
    await cycle(config)
    assert vobject.readOne(cards.get(dav, home, "h3.vcf")).note.value == "met at the conference"
    kept = vobject.readOne(cards.get(dav, work, "w3.vcf"))
    assert kept.x_socialprofile.value == "p3", "an unmapped property was lost by a sync"
    assert kept.version.value == "4.0"
    settled = await cycle(config)
    assert settled["writes"] == 0, f"the edit echoed back: {settled}"
