"""The vCard layer alone: what is read, what is written, and what must stay byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncd_carddav import Card, VCardError
from syncd_carddav._vcard import parse_rev

V4 = (
    "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:4f2c\r\nFN:Zoë Ñandú\r\nN:Ñandú;Zoë;Ana,María;Dr.;\r\n"
    "EMAIL;TYPE=home:z@home.example\r\nEMAIL;TYPE=work;PREF=1:z@work.example\r\n"
    "PHOTO:data:image/png;base64,iVBORw0KGgo=\r\nX-SOCIALPROFILE;TYPE=x:a,b,c\r\n"
    "CATEGORIES:friends,chess\r\nADR;TYPE=home:;;1 Main St;Town;;123;NL\r\nEND:VCARD\r\n"
)


def unmapped(card: Card) -> list[str]:
    mapped = {"FN", "N", "EMAIL", "TEL", "ORG", "TITLE", "ADR", "NOTE", "UID", "REV"}
    return [line for line in card.serialise().splitlines() if line.split(";")[0].split(":")[0] not in mapped]


def test_unmapped_values_with_commas_and_data_uris_survive_byte_for_byte() -> None:
    card = Card.parse(V4)
    before = unmapped(card)
    card.apply({"note": "n", "email": "new@work.example", "n": {"given": "Zed"}, "tel": "+31 6 1"})
    assert unmapped(card) == before
    assert "PHOTO:data:image/png;base64,iVBORw0KGgo=" in card.serialise()
    assert "X-SOCIALPROFILE;TYPE=x:a,b,c" in card.serialise()


def test_name_parts_not_written_keep_their_lists() -> None:
    card = Card.parse(V4)
    card.apply({"n": {"family": "Nandu"}})
    assert "N:Nandu;Zoë;Ana,María;Dr.;" in card.serialise()
    assert card.fields()["n"]["additional"] == "Ana,María"


def test_primary_is_the_preferred_property_else_the_first() -> None:
    assert Card.parse(V4).fields()["email"] == "z@work.example"
    v3 = V4.replace("VERSION:4.0", "VERSION:3.0").replace("TYPE=work;PREF=1", "TYPE=work")
    assert Card.parse(v3).fields()["email"] == "z@home.example"
    v3_pref = v3.replace("EMAIL;TYPE=work:", "EMAIL;TYPE=work,pref:")
    assert Card.parse(v3_pref).fields()["email"] == "z@work.example"


def test_setting_the_primary_email_to_a_secondary_one_promotes_it_without_duplicating() -> None:
    card = Card.parse(V4)
    card.apply({"email": "Z@HOME.example"})
    fields = card.fields()
    assert fields["email"] == "z@home.example"
    assert sorted(e["value"] for e in fields["emails"]) == ["z@home.example", "z@work.example"]


def test_replacing_the_email_list_keeps_parameters_of_addresses_that_stay() -> None:
    card = Card.parse(V4)
    card.apply({"emails": [{"value": "z@work.example"}, {"value": "third@example.org", "types": ["other"]}]})
    fields = card.fields()
    assert fields["emails"] == [
        {"value": "z@work.example", "types": ["work"]},
        {"value": "third@example.org", "types": ["other"]},
    ]
    assert "EMAIL;PREF=1;TYPE=work:z@work.example" in card.serialise()


def test_clearing_a_field_removes_its_property_but_fn_stays_required() -> None:
    card = Card.parse(V4)
    card.apply({"fn": None, "adr": None})
    fields = card.fields()
    assert fields["fn"] == "Dr. Zoë Ana,María Ñandú", "FN is derived from N when cleared"
    assert fields["adr"]["street"] is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "not a vCard"),
        ("BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n", "no VERSION"),
        ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN x\r\nEND:VCARD\r\n", "a line without a colon"),
        (
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n",
            "two",
        ),
        ("", "empty"),
    ],
)
def test_malformed_cards_raise_a_vcard_error(text: str, why: str) -> None:
    with pytest.raises(VCardError):
        Card.parse(text)


def test_fields_of_the_wrong_shape_or_unknown_are_refused_without_values_in_the_message() -> None:
    card = Card.parse(V4)
    with pytest.raises(VCardError, match="unknown vCard field") as unknown:
        card.apply({"nickname": "secret-value"})
    assert "secret-value" not in str(unknown.value)
    with pytest.raises(VCardError, match="emails"):
        card.apply({"emails": "secret@example.org"})
    with pytest.raises(VCardError, match="UID cannot be changed"):
        card.apply({"uid": "other"})


def test_every_write_stamps_rev() -> None:
    card = Card.parse(V4)
    card.apply({"note": "x"})
    rev = parse_rev(card.fields()["rev"])
    assert rev is not None
    assert rev.tzinfo is not None


@pytest.mark.parametrize(
    "text",
    ["20260102T030405Z", "2026-01-02T03:04:05Z", "20260102T040405+0100", "2026-01-02T03:04:05+00:00"],
)
def test_rev_timestamps_parse_in_basic_and_extended_format(text: str) -> None:
    assert parse_rev(text) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_unreadable_rev_is_no_timestamp() -> None:
    assert parse_rev("yesterday") is None
    assert parse_rev(None) is None
