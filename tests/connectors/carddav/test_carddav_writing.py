"""Writing cards: what syncd does not map survives, conditional writes, idempotent creates, parallelism."""

from __future__ import annotations

import httpx
import pytest
import vobject

from syncd.connector import NotFound, PermanentError, PreconditionFailed, WriteItem
from syncd_carddav import CardDavConnector

from . import cards
from .conftest import ConnectorFactory
from .tap import Tap

PHOTO = "PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\r\n"
UNMAPPED = (
    "X-SOCIALPROFILE;TYPE=twitter:adalovelace\r\n"
    f"{PHOTO}"
    "EMAIL;TYPE=work:ada@engines.example\r\n"
    "item1.URL:https://example.org/ada\r\n"
    "item1.X-ABLabel:Homepage\r\n"
    "BDAY:1815-12-10\r\n"
)


def ada(extra: str = UNMAPPED) -> str:
    return cards.vcard3(
        "ada-1", fn="Ada Lovelace", given="Ada", family="Lovelace", email="ada@home.example", extra=extra
    )


async def test_properties_syncd_does_not_map_survive_an_update(
    connector: CardDavConnector, dav: httpx.Client, book: str
) -> None:
    cards.put(dav, book, "ada.vcf", ada())
    before = vobject.readOne(cards.get(dav, book, "ada.vcf"))
    item = WriteItem(key="u1", id="ada.vcf", fields={"note": "Countess", "n": {"given": "Augusta Ada"}})
    (result,) = await connector.update("contacts", [item])
    assert result.ok, result.error
    after = vobject.readOne(cards.get(dav, book, "ada.vcf"))
    assert after.note.value == "Countess"
    assert after.n.value.given == "Augusta Ada"
    assert after.n.value.family == "Lovelace"
    assert after.x_socialprofile.value == "adalovelace"
    assert after.x_socialprofile.params["TYPE"] == ["twitter"]
    assert after.photo.value == before.photo.value, "the photo's bytes changed"
    assert after.bday.value == "1815-12-10"
    emails = sorted((e.value, tuple(t.lower() for t in e.params.get("TYPE", []))) for e in after.email_list)
    assert emails == [("ada@engines.example", ("work",)), ("ada@home.example", ("internet", "home"))]
    labels = [line for line in after.getChildren() if line.group == "item1"]
    assert sorted(line.name for line in labels) == ["URL", "X-ABLABEL"], "grouped properties were lost"
    assert after.uid.value == "ada-1"


async def test_changing_the_primary_email_keeps_the_other_emails(
    connector: CardDavConnector, dav: httpx.Client, book: str
) -> None:
    cards.put(dav, book, "ada.vcf", ada())
    item = WriteItem(key="u1", id="ada.vcf", fields={"email": "countess@home.example"})
    (result,) = await connector.update("contacts", [item])
    assert result.ok
    assert result.record is not None
    assert result.record.fields["email"] == "countess@home.example"
    assert [e["value"] for e in result.record.fields["emails"]] == [
        "countess@home.example",
        "ada@engines.example",
    ]
    (read,) = await connector.get("contacts", ["ada.vcf"])
    assert read.fields == result.record.fields, "what update returned differs from what the server holds"
    assert read.version == result.record.version


async def test_update_racing_an_edit_fails_with_precondition_failed_and_spares_its_batch(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    cards.put(dav, book, "ada.vcf", ada())
    cards.put(
        dav, book, "bob.vcf", cards.vcard3("bob-1", fn="Bob", given="Bob", family="B", email="bob@x.example")
    )
    tap = Tap()

    def person_edits_ada_first(request: httpx.Request) -> None:
        if request.method == "PUT" and request.url.path.endswith("/ada.vcf"):
            tap.before = None
            cards.edit(dav, book, "ada.vcf", {"note": "edited by a person"})

    tap.before = person_edits_ada_first
    connector = make_connector(transport=tap)
    items = [
        WriteItem(key="a", id="ada.vcf", fields={"note": "from syncd"}),
        WriteItem(key="b", id="bob.vcf", fields={"note": "from syncd"}),
    ]
    first, second = await connector.update("contacts", items)
    assert isinstance(first.error, PreconditionFailed), f"expected a 412 as PreconditionFailed, got {first!r}"
    assert second.ok, second.error
    assert vobject.readOne(cards.get(dav, book, "ada.vcf")).note.value == "edited by a person"
    assert vobject.readOne(cards.get(dav, book, "bob.vcf")).note.value == "from syncd"


async def test_update_with_a_stale_expected_version_sends_no_write(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    stale = cards.put(dav, book, "ada.vcf", ada())
    cards.edit(dav, book, "ada.vcf", {"note": "newer"})
    tap = Tap()
    connector = make_connector(transport=tap)
    item = WriteItem(key="a", id="ada.vcf", fields={"note": "older plan"}, expected_version=stale)
    (result,) = await connector.update("contacts", [item])
    assert isinstance(result.error, PreconditionFailed)
    assert "PUT" not in tap.methods()


async def test_update_that_changes_nothing_sends_no_write(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    etag = cards.put(dav, book, "ada.vcf", ada())
    tap = Tap()
    connector = make_connector(transport=tap)
    (result,) = await connector.update(
        "contacts", [WriteItem(key="a", id="ada.vcf", fields={"fn": "Ada Lovelace"})]
    )
    assert result.ok
    assert result.record is not None
    assert result.record.version == etag
    assert "PUT" not in tap.methods()


async def test_delete_with_a_stale_version_is_refused_and_a_current_one_deletes(
    connector: CardDavConnector, dav: httpx.Client, book: str
) -> None:
    stale = cards.put(dav, book, "ada.vcf", ada())
    cards.edit(dav, book, "ada.vcf", {"note": "newer"})
    (refused,) = await connector.delete(
        "contacts", [WriteItem(key="d", id="ada.vcf", fields={}, expected_version=stale)]
    )
    assert isinstance(refused.error, PreconditionFailed)
    (current,) = await connector.get("contacts", ["ada.vcf"])
    (done,) = await connector.delete(
        "contacts", [WriteItem(key="d", id="ada.vcf", fields={}, expected_version=current.version)]
    )
    assert done.ok
    assert done.record is not None
    assert done.record.deleted
    (again,) = await connector.delete("contacts", [WriteItem(key="d2", id="ada.vcf", fields={})])
    assert isinstance(again.error, NotFound)


async def test_create_names_the_card_after_its_uid_and_sending_it_again_makes_no_duplicate(
    connector: CardDavConnector, book: str
) -> None:
    item = WriteItem(key="intent-42", fields={"fn": "Grace Hopper", "email": "grace@navy.example"})
    (first,) = await connector.create("contacts", [item])
    assert first.ok
    assert first.record is not None
    uid = first.record.fields["uid"]
    assert first.record.id == f"{uid}.vcf"
    (again,) = await connector.create("contacts", [item])
    assert again.ok, again.error
    assert again.record is not None
    assert again.record.id == first.record.id
    found = await connector.find("contacts", "email", ["grace@navy.example"])
    assert [r.id for r in found] == [first.record.id]


async def test_create_in_vcard_4_writes_a_version_4_card(
    make_connector: ConnectorFactory, dav: httpx.Client, book: str
) -> None:
    connector = make_connector(vcard_version="4.0")
    fields = {
        "n": {"given": "Alan", "family": "Turing"},
        "emails": [{"value": "alan@bletchley.example", "types": ["work"]}],
    }
    (result,) = await connector.create("contacts", [WriteItem(key="k", fields=fields)])
    assert result.ok
    assert result.record is not None
    stored = vobject.readOne(cards.get(dav, book, result.record.id))
    assert stored.version.value == "4.0"
    assert stored.fn.value == "Alan Turing", "FN is derived from the name when not given"
    assert result.record.fields["email"] == "alan@bletchley.example"


async def test_a_card_syncd_cannot_build_fails_alone(connector: CardDavConnector) -> None:
    items = [
        WriteItem(key="bad", fields={"emails": "not a list"}),
        WriteItem(key="good", fields={"fn": "Fine", "email": "fine@example.org"}),
    ]
    bad, good = await connector.create("contacts", items)
    assert isinstance(bad.error, PermanentError)
    assert "emails" in bad.error.message
    assert good.ok


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_writes_run_in_parallel_up_to_the_concurrency_setting(
    make_connector: ConnectorFactory, concurrency: int
) -> None:
    tap = Tap()
    connector = make_connector(transport=tap, concurrency=concurrency)
    items = [WriteItem(key=f"k{i}", fields={"fn": f"P{i}", "email": f"p{i}@example.org"}) for i in range(8)]
    results = await connector.create("contacts", items)
    assert all(r.ok for r in results)
    assert tap.methods().count("PUT") == 8
    assert tap.max_in_flight <= concurrency
    if concurrency > 1:
        assert tap.max_in_flight > 1, "writes were sent one at a time"
