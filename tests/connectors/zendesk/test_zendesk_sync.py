"""Zendesk through syncd's engine: an in-memory CRM and the Zendesk fake kept in sync by ``Runner``.

Proves the connector's pieces hold together where they are used: creates land (and are linked,
not duplicated), the derived organization name flows one way, a quiet cycle writes nothing (echoes
of our own writes are recognised), and an email change in the CRM really changes the Zendesk
user's primary email.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncd.mapping import load_mapping
from syncd.runner import Runner
from syncd.store import AsyncStore
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.zendesk import ZendeskFake
from syncd.testing.memory import MemoryApp, MemoryConnector
from syncd_zendesk import ZendeskConnector

from .conftest import ConnectorFactory

MAPPING = """
name = "people"
key = "email"
initial_conflict = "policy"
[apps.crm]
object = "contacts"
[apps.helpdesk]
object = "users"
[conflict]
policy = "priority"
priority = ["crm", "helpdesk"]
[fields.email]
transforms = ["email"]
apps.crm = "email"
apps.helpdesk = "email"
[fields.name]
apps.crm = "name"
apps.helpdesk = "name"
[fields.plan]
apps.crm = "plan"
apps.helpdesk = "user_fields.plan"
[fields.company]
apps.crm = "company"
apps.helpdesk = { path = "organization.name", direction = "in" }
"""


@pytest.fixture
async def world(
    tmp_path: Path, make_connector: ConnectorFactory
) -> AsyncIterator[tuple[Runner, MemoryApp, ZendeskConnector]]:
    path = tmp_path / "people.toml"
    path.write_text(textwrap.dedent(MAPPING))
    mapping = load_mapping(path, known_apps=["crm", "helpdesk"])
    crm = MemoryApp("crm")
    helpdesk = make_connector(objects=["users"])
    store = await AsyncStore(tmp_path / "state.db").open()
    try:
        yield (
            Runner(store, [mapping], {"crm": MemoryConnector.over(crm), "helpdesk": helpdesk}),
            crm,
            helpdesk,
        )
    finally:
        await store.close()


def _writes(fake: ZendeskFake) -> list[str]:
    return [f"{h.method} {h.path}" for h in fake.hits if h.method != "GET"]


async def test_a_round_trip_through_the_engine_is_quiet_afterwards_and_changes_primary_emails(
    world: tuple[Runner, MemoryApp, ZendeskConnector], fake: ZendeskFake, clock: FakeClock
) -> None:
    runner, crm, _ = world
    org = fake.seed_organization(name="Lovelace Works")
    grace = fake.seed_user(
        name="Grace", email="grace@lovelace.io", organization_id=int(org), user_fields={"plan": "silver"}
    )
    crm.seed("contacts", {"email": "ada@lovelace.io", "name": "Ada", "plan": "gold"})
    clock.advance(61)

    first = await runner.run_cycle()
    assert first.total("errors") == 0, first.as_dict()
    ada = fake.users[max(fake.users)]
    assert (ada.name, ada.email, ada.user_fields["plan"]) == ("Ada", "ada@lovelace.io", "gold")
    copied = {f["email"]: f for f in crm.live("contacts").values()}
    assert copied["grace@lovelace.io"]["company"] == "Lovelace Works"
    assert copied["grace@lovelace.io"]["plan"] == "silver"

    clock.advance(61)
    before = len(_writes(fake))
    quiet = await runner.run_cycle()
    assert quiet.total("writes") == 0, quiet.as_dict()
    assert len(_writes(fake)) == before, "a quiet cycle must not write to Zendesk"

    (ada_id,) = [rid for rid, f in crm.live("contacts").items() if f["email"] == "ada@lovelace.io"]
    crm.edit("contacts", ada_id, {"email": "ada@newmail.io"})
    changed = await runner.run_cycle()
    assert changed.total("errors") == 0, changed.as_dict()
    assert [i.value for i in ada.identities] == ["ada@newmail.io"], "the old address stayed behind"
    assert fake.user(grace)["email"] == "grace@lovelace.io"  # type: ignore[index]
    assert len([u for u in fake.users.values() if u.role == "end-user"]) == 2, "no duplicate users"
