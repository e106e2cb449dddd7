"""Webhook intake under load: deliveries that arrive together share one commit (a group commit),
and each is acknowledged only once the commit holding its events is done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncd.connector import WebhookHint
from syncd.daemon.inbox import Inbox
from syncd.store import AsyncStore, StateStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    opened = await AsyncStore(tmp_path / "state.db").open()
    yield opened
    await opened.close()


def hints(*events: str) -> list[WebhookHint]:
    return [WebhookHint(event_id=e, object="contacts", record_id=e.split("-")[0]) for e in events]


async def pending_events(store: AsyncStore) -> list[str]:
    return sorted(str(r["event_id"]) for r in await store.call(lambda s: s.inbox_pending(1000)))


async def test_deliveries_arriving_together_are_stored_in_one_commit_each_with_its_own_count(
    store: AsyncStore,
) -> None:
    inbox = Inbox(store)
    # Delivery 3 repeats an event of delivery 0 (a redelivery racing the original).
    deliveries = [hints(f"{i}-a", f"{i}-b") for i in range(10)]
    deliveries[3] = hints("0-a", "3-b")
    counts = await asyncio.gather(*(inbox.accept("crm", d) for d in deliveries))
    assert counts == [2, 2, 2, 1, 2, 2, 2, 2, 2, 2]
    assert (inbox.commits, inbox.committed) == (1, 10)
    assert len(await pending_events(store)) == 19


async def test_deliveries_arriving_during_a_commit_go_into_the_next_one(store: AsyncStore) -> None:
    inbox = Inbox(store)
    first = asyncio.ensure_future(inbox.accept("crm", hints("1-a")))
    await asyncio.sleep(0)  # the first commit is under way
    later = [asyncio.ensure_future(inbox.accept("crm", hints(f"{i}-a"))) for i in range(2, 6)]
    assert await first == 1
    assert await asyncio.gather(*later) == [1, 1, 1, 1]
    assert (inbox.commits, inbox.committed) == (2, 5)
    # Nothing queued: the next delivery starts a commit of its own again.
    assert await inbox.accept("crm", hints("9-a")) == 1
    assert inbox.commits == 3


async def test_a_failed_commit_fails_every_delivery_it_held_and_stores_none_of_them(
    store: AsyncStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox(store)
    backend = type(await store.call(lambda s: s))
    real_add = backend.inbox_add

    def refuse_bad(self: StateStore, app: str, rows: list[tuple[str, str, str, bool]]) -> int:
        if any(event.startswith("bad") for event, *_ in rows):
            raise OSError("disk full")
        return real_add(self, app, rows)

    # A failing disk cannot be produced on demand: the store's write is made to fail instead.
    monkeypatch.setattr(backend, "inbox_add", refuse_bad)
    results = await asyncio.gather(
        inbox.accept("crm", hints("1-a")),
        inbox.accept("crm", hints("bad-a")),
        inbox.accept("crm", hints("2-a")),
        return_exceptions=True,
    )
    # One transaction: the good deliveries are not acknowledged either (their senders retry).
    assert all(isinstance(r, OSError) for r in results)
    assert await pending_events(store) == []
    assert await inbox.accept("crm", hints("1-a")) == 1  # the retry is stored
    assert await pending_events(store) == ["1-a"]


async def test_a_sender_hanging_up_does_not_cancel_the_commit_others_wait_for(store: AsyncStore) -> None:
    inbox = Inbox(store)
    gone = asyncio.ensure_future(inbox.accept("crm", hints("1-a")))
    stays = asyncio.ensure_future(inbox.accept("crm", hints("2-a")))
    await asyncio.sleep(0)
    gone.cancel()
    assert await stays == 1
    with pytest.raises(asyncio.CancelledError):
        await gone
    # Stored though never acknowledged: a redelivery is recognised and acted on once.
    assert await pending_events(store) == ["1-a", "2-a"]
    assert await inbox.accept("crm", hints("1-a")) == 0
