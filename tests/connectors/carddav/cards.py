"""Cards as other clients write them, and a backdoor that edits them over plain WebDAV.

The backdoor parses and writes cards with vobject directly, independently of the connector's own
vCard code, so a test does not check the connector against itself.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import httpx
import vobject


def vcard3(uid: str, *, fn: str, given: str, family: str, email: str, extra: str = "") -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nFN:{fn}\r\nN:{family};{given};;;\r\n"
        f"EMAIL;TYPE=INTERNET,HOME:{email}\r\n{extra}"
        "END:VCARD\r\n"
    )


def vcard4(uid: str, *, fn: str, given: str, family: str, email: str, extra: str = "") -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:4.0\r\n"
        f"UID:{uid}\r\nFN:{fn}\r\nN:{family};{given};;;\r\n"
        f"EMAIL;TYPE=home;PREF=1:{email}\r\n{extra}"
        "END:VCARD\r\n"
    )


def put(dav: httpx.Client, book: str, name: str, text: str) -> str:
    """Store a card as another client would; return its ETag."""
    response = dav.put(book + name, content=text.encode(), headers={"Content-Type": "text/vcard"})
    assert response.status_code in (201, 204), response.text
    return response.headers.get("ETag", "")


def get(dav: httpx.Client, book: str, name: str) -> str:
    response = dav.get(book + name)
    assert response.status_code == 200, response.text
    return response.text


def edit(dav: httpx.Client, book: str, name: str, changes: Mapping[str, Any]) -> None:
    """Change top-level text properties (``fn``, ``note``, ``title``...) of a stored card."""
    card = vobject.readOne(get(dav, book, name))
    for key, value in changes.items():
        if key == "n" and isinstance(value, Mapping):
            for part, text in value.items():
                setattr(card.n.value, part, text)
            continue
        existing = card.contents.get(key.lower())
        if existing:
            existing[0].value = value
        else:
            card.add(key.lower()).value = value
    put(dav, book, name, card.serialize())


def remove(dav: httpx.Client, book: str, name: str) -> None:
    response = dav.delete(book + name)
    assert response.status_code in (200, 204), response.text


def names(dav: httpx.Client, book: str) -> list[str]:
    """The resource names of the cards in ``book`` (PROPFIND depth 1)."""
    response = dav.request("PROPFIND", book, headers={"Depth": "1"})
    assert response.status_code == 207, response.text
    root = ET.fromstring(response.content)
    hrefs = [h.text or "" for h in root.iter("{DAV:}href")]
    return sorted(h.rsplit("/", 1)[-1] for h in hrefs if not h.endswith("/"))
