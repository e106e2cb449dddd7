"""Webhook intake and the outbox dispatcher run concurrently in the daemon: an edit that arrives
while a write of the same record is in flight must still reach the other app."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Sequence
from pathlib import Path

from syncd.connector import WebhookHint, WriteItem, WriteResult
from syncd.mapping import load_mapping
from syncd.runner import Runner
from syncd.store import AsyncStore
from syncd.testing.memory import MemoryApp, MemoryConnector

from .harness import PEOPLE_MAPPING


class GatedConnector(MemoryConnector):
    """A memory app whose creates wait at a gate, holding the write in flight."""

    entered: asyncio.Event
    gate: asyncio.Event

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        self.entered.set()
        await self.gate.wait()
        return await super().create(obj, items)


async def test_edit_arriving_while_the_create_is_in_flight_is_written_after_it(tmp_path: Path) -> None:
    text = PEOPLE_MAPPING.replace('object = "users"', 'object = "contacts"')
    path = tmp_path / "people.toml"
    path.write_text(textwrap.dedent(text))
    mapping = load_mapping(path, known_apps=["alpha", "beta"])
    alpha, beta = MemoryApp("alpha"), MemoryApp("beta")
    rid = alpha.seed("contacts", {"email": "ada@example.com", "name": "Ada"})
    gated = GatedConnector.over(beta)
    gated.entered, gated.gate = asyncio.Event(), asyncio.Event()
    store = await AsyncStore(tmp_path / "state.db").open()
    try:
        runner = Runner(store, [mapping], {"alpha": MemoryConnector.over(alpha), "beta": gated})
        await runner.poll("alpha")
        await runner.poll("beta")
        drain = asyncio.create_task(runner.drain(max_wait=0))
        await asyncio.wait_for(gated.entered.wait(), 5)
        # The webhook path: the record changed in alpha while beta's create is in flight.
        alpha.edit("contacts", rid, {"name": "Augusta"})
        await runner.handle_hints("alpha", [WebhookHint(event_id="e1", object="contacts", record_id=rid)])
        gated.gate.set()
        await asyncio.wait_for(drain, 5)
        await runner.drain(max_wait=0)  # the dispatcher's next round
        assert [r["name"] for r in beta.live("contacts").values()] == ["Augusta"]
    finally:
        await store.close()
