"""A first match decided by the priority policy must not depend on the order the apps are polled.

The daemon polls each app on its own schedule, so when it makes the first match of a person the
apps are linked one poll at a time. Seen with mappings/customers.toml (tests/integration/
test_four_apps.py): Mailchimp polled first, HubSpot next with the same surname, Stripe last with
another one — Stripe beat Mailchimp and its surname was written over HubSpot's, although the
priority list puts HubSpot first. A value that agrees with the canonical one when its app is
linked is not a candidate in the conflict that the next app brings.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from syncd.mapping import load_mapping
from syncd.runner import Runner
from syncd.store import AsyncStore
from syncd.testing.memory import MemoryApp, MemoryConnector

MAPPING = """
name = "people"
key = "email"
initial_conflict = "policy"
[apps.first]
object = "people"
[apps.second]
object = "people"
[apps.third]
object = "people"
[conflict]
policy = "priority"
priority = ["first", "second", "third"]
[fields.email]
transforms = ["email"]
apps.first = "email"
apps.second = "email"
apps.third = "email"
[fields.surname]
apps.first = "surname"
apps.second = "surname"
apps.third = "surname"
"""


@pytest.mark.parametrize(
    "order",
    [
        ("first", "second", "third"),
        ("third", "first", "second"),
    ],
)
async def test_the_top_priority_value_wins_whatever_order_the_apps_are_polled_in(
    tmp_path: Path, order: tuple[str, str, str]
) -> None:
    path = tmp_path / "people.toml"
    path.write_text(textwrap.dedent(MAPPING))
    mapping = load_mapping(path, known_apps=["first", "second", "third"])
    apps = {name: MemoryApp(name) for name in ("first", "second", "third")}
    apps["first"].seed("people", {"email": "ada@lovelace.io", "surname": "Lovelace"})
    apps["second"].seed("people", {"email": "ada@lovelace.io", "surname": "King"})
    apps["third"].seed("people", {"email": "ada@lovelace.io", "surname": "Lovelace"})
    store = await AsyncStore(tmp_path / "state.db").open()
    try:
        runner = Runner(
            store, [mapping], {n: MemoryConnector.over(a) for n, a in apps.items()}, retry_base=0.0
        )
        for app in order:
            await runner.poll(app)
        await runner.drain(max_wait=5.0)
    finally:
        await store.close()
    surnames = {name: [r["surname"] for r in app.live("people").values()] for name, app in apps.items()}
    assert surnames == {"first": ["Lovelace"], "second": ["Lovelace"], "third": ["Lovelace"]}
