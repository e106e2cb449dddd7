"""Black-box: ``syncd sync --once`` between two Radicale address books, one holding a card syncd
cannot read. The card is quarantined as a dead letter (op ``read``) and every other card syncs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import vobject

from syncd.testing.radicale import RadicaleServer

from . import cards
from .conftest import PASSWORD, USER
from .test_carddav_sync import CONFIG, MAPPING, emails

#: A card Radicale stores as sent whose FN is base64 of bytes that are not UTF-8 text.
BROKEN = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:odd\r\nFN;ENCODING=b:/w==\r\n"
    "N:Odd;Card;;;\r\nEMAIL:odd@example.org\r\nEND:VCARD\r\n"
)


def syncd(config: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    done = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "--config", str(config), *args],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout, done.stderr


def test_sync_once_quarantines_an_unreadable_card_as_a_dead_letter_and_syncs_the_other_cards(
    tmp_path: Path, radicale_server: RadicaleServer, dav: httpx.Client
) -> None:
    home, work = radicale_server.create_addressbook(USER), radicale_server.create_addressbook(USER)
    for i in range(3):
        text = cards.vcard3(f"h{i}", fn=f"P {i}", given=f"P{i}", family="Home", email=f"p{i}@example.org")
        cards.put(dav, home, f"h{i}.vcf", text)
    cards.put(dav, home, "odd.vcf", BROKEN)
    (tmp_path / "people.toml").write_text(MAPPING)
    (tmp_path / "password.txt").write_text(PASSWORD)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(url=radicale_server.url, home=home, work=work, user=USER))

    code, out, err = syncd(config, "sync", "--once", "--json")
    assert code == 1, f"a quarantined record makes the run exit 1\n{out}\n{err}"
    assert "Traceback" not in err
    stats: dict[str, Any] = json.loads(out)
    assert stats["apps"]["home"]["quarantined"] == 1, stats
    assert emails(dav, work) == [f"p{i}@example.org" for i in range(3)], "the readable cards must sync"

    code, out, err = syncd(config, "deadletters", "list", "--json")
    assert code == 0, err
    (letter,) = json.loads(out)
    assert (letter["app"], letter["op"], letter["remote_id"]) == ("home", "read", "odd.vcf")
    assert "undecodable base64" in letter["last_error"]
    assert "odd@example.org" not in json.dumps(letter), "no field values in a dead letter"

    # Once someone fixes the card, the next sync reads it, and it reaches the other book.
    cards.put(dav, home, "odd.vcf", BROKEN.replace("FN;ENCODING=b:/w==", "FN:Odd Card"))
    code, out, err = syncd(config, "sync", "--once", "--json")
    assert code == 0, f"{out}\n{err}"
    assert emails(dav, work) == ["odd@example.org", *(f"p{i}@example.org" for i in range(3))]
    given = {vobject.readOne(cards.get(dav, work, n)).n.value.given for n in cards.names(dav, work)}
    assert "Card" in given, "the fixed card's values reached the other book"
    code, out, _ = syncd(config, "deadletters", "list", "--json")
    assert json.loads(out) == [], "a card read successfully is released from quarantine"
