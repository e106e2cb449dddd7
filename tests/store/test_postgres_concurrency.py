"""Several daemons on one PostgreSQL: units of work and coordination primitives raced for real.

Each test runs many threads against one ``PgStore`` (every unit of work on its own pooled
connection, as several daemons would) and checks the outcome is the one a serial run gives.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from psycopg import errors

from syncd.engine.model import Link
from syncd.store import StateStore
from syncd.store.postgres import PgStore

T = TypeVar("T")
THREADS = 6


@pytest.fixture
def pg(postgres_url: str) -> Iterator[PgStore]:
    store = PgStore(postgres_url, max_size=THREADS)
    yield store
    store.close()


def race(n: int, work: Callable[[int], T]) -> list[T]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(work, range(n)))


def test_concurrent_read_modify_write_units_lose_no_update(pg: PgStore) -> None:
    entity = pg.new_entity("people", "a@x")

    def bump(store: StateStore, entity_id: int) -> None:
        e = store.entities([entity_id])[entity_id]
        e.values["count"] = e.values.get("count", 0) + 1
        store.save_entities([e], dirty=True)

    def worker(_: int) -> None:
        for _ in range(15):
            pg.run(bump, entity.id)

    race(THREADS, worker)
    assert pg.entities([entity.id])[entity.id].values["count"] == THREADS * 15
    assert pg.claim_dirty("people", 10, "d", 30)[0][1] == THREADS * 15  # one generation per bump


def test_two_creates_of_one_natural_key_make_one_entity(pg: PgStore) -> None:
    keys = [f"k{i}@x" for i in range(40)]

    def find_or_create(store: StateStore, key: str) -> int:
        found = store.entities_by_key("people", [key])
        return found[key].id if key in found else store.new_entity("people", key).id

    def worker(n: int) -> dict[str, int]:
        order = keys[:]
        random.Random(n).shuffle(order)
        return {k: pg.run(find_or_create, k) for k in order}

    seen = race(THREADS, worker)
    assert all(ids == seen[0] for ids in seen)
    assert pg.count_entities("people") == {"active": len(keys)}


def test_owned_intent_claims_never_hand_one_intent_to_two_daemons(pg: PgStore) -> None:
    ids = [pg.new_entity("people", f"k{i}").id for i in range(120)]
    pg.enqueue(
        [(f"w{i}", "people", "crm", "contact", "update", e, f"r{i}", {}, {}, None) for i, e in enumerate(ids)]
    )

    def daemon(n: int) -> list[int]:
        owner, mine = f"d{n}", []
        while batch := pg.claim("crm", None, 7, owner=owner, epoch=1, ttl=300):
            for intent in batch:
                assert pg.settle(intent.id, "done", owner=owner, epoch=1)
                mine.append(intent.id)
        return mine

    claimed = [i for ids_ in race(THREADS, daemon) for i in ids_]
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert len(claimed) == len(ids)
    assert pg.outbox_depth() == 0


def test_dirty_claims_split_the_work_without_overlap(pg: PgStore) -> None:
    ids = [pg.new_entity("people", f"k{i}").id for i in range(150)]
    pg.mark_dirty(ids)

    def daemon(n: int) -> list[int]:
        mine: list[int] = []
        while batch := pg.claim_dirty("people", 9, f"d{n}", 300):
            assert pg.ack_dirty(batch) == len(batch)
            mine += [i for i, _ in batch]
        return mine

    done = [i for part in race(THREADS, daemon) for i in part]
    assert sorted(done) == ids
    assert pg.dirty_ids("people", 10) == []


def test_token_bucket_grants_exactly_its_burst_across_daemons(pg: PgStore) -> None:
    def daemon(_: int) -> int:
        return sum(1 for _ in range(30) if pg.take_tokens("hubspot", 1, 0.001, 50, 1000.0) == 0.0)

    assert sum(race(THREADS, daemon)) == 50


def test_one_daemon_wins_an_expired_lease_and_the_epoch_grows_once(pg: PgStore) -> None:
    pg.take_lease("leader:people:crm", "old", 0.0, 1)

    def daemon(n: int) -> dict[str, Any]:
        return dict(pg.take_lease("leader:people:crm", f"d{n}", 100.0, 30))

    rows = race(THREADS, daemon)
    holders = {r["holder"] for r in rows}
    assert len(holders) == 1
    assert {r["epoch"] for r in rows} == {2}
    assert sum(1 for n, r in enumerate(rows) if r["holder"] == f"d{n}") == 1


def test_inbox_redeliveries_racing_store_each_event_once(pg: PgStore) -> None:
    events = [(f"e{i}", "contact", f"r{i}", False) for i in range(60)]

    def receiver(n: int) -> int:
        order = events[:]
        random.Random(n).shuffle(order)
        return sum(pg.inbox_add("crm", order[i : i + 5]) for i in range(0, len(order), 5))

    assert sum(race(THREADS, receiver)) == 60
    assert pg.count_inbox_pending() == 60


def test_a_replayed_unit_inserts_its_new_links_again(pg: PgStore) -> None:
    entity = pg.new_entity("people", "a@x")
    link = Link(None, entity.id, "crm", "r1", baseline={"name": "Ann"})
    ids: list[int | None] = []

    def unit(store: StateStore) -> None:
        store.save_links("people", [link])
        ids.append(link.id)
        if len(ids) == 1:
            raise errors.SerializationFailure("forced: another daemon committed first")

    pg.run(unit)
    assert len(ids) == 2
    assert pg.links_by_remote("people", "crm", ["r1"])["r1"] == link


def test_a_unit_is_replayed_a_bounded_number_of_times_and_other_errors_not_at_all(pg: PgStore) -> None:
    calls: list[str] = []

    def always_loses(store: StateStore) -> None:
        calls.append("lost")
        store.new_entity("people", f"k{len(calls)}")
        raise errors.DeadlockDetected("forced")

    with pytest.raises(errors.DeadlockDetected):
        pg.run(always_loses)
    assert len(calls) == pg.attempts
    assert pg.count_entities("people") == {}  # every attempt was rolled back

    def broken(store: StateStore) -> None:
        calls.append("broken")
        raise ValueError("a bug, not a race")

    with pytest.raises(ValueError, match="a bug"):
        pg.run(broken)
    assert calls.count("broken") == 1


@pytest.mark.parametrize("slow", ["new row", "fold"])
def test_a_follower_waits_for_a_change_log_position_taken_by_a_transaction_still_open(
    pg: PgStore, slow: str
) -> None:
    """PostgreSQL gives out sequence values at once but commits them in any order: a follower
    that read a later position first must not step past one still to be committed."""
    import threading

    from syncd.engine.model import Change, ReasonCode

    a, b = pg.new_entity("people", "a"), pg.new_entity("people", "b")
    run = pg.begin_run("cycle")
    new_a = Change(a.id, "*", None, {"email": "a"}, "crm", "new record in crm", code=ReasonCode.NEW_RECORD)
    pg.log_changes("people", [new_a], run)
    _, after = pg.changes_after(0)
    slow_change = (
        Change(a.id, "*", None, "m-1", "mail", "created in mail", code=ReasonCode.CREATED)
        if slow == "fold"
        else Change(a.id, "name", None, "A", "crm", "changed in crm", code=ReasonCode.CHANGED)
    )
    logged, release = threading.Event(), threading.Event()

    def open_writer(store: StateStore) -> None:
        store.log_changes("people", [slow_change], run)
        logged.set()
        assert release.wait(30)

    writer = threading.Thread(target=pg.run, args=(open_writer,))
    writer.start()
    try:
        assert logged.wait(30)
        pg.log_changes(
            "people", [Change(b.id, "name", None, "B", "crm", "changed in crm", code=ReasonCode.CHANGED)], run
        )
        early, upto = pg.changes_after(after)
        assert early == []  # the later, committed entry waits for the earlier, open one
        assert upto == after
    finally:
        release.set()
        writer.join()
    got, upto = pg.changes_after(after)
    assert [(r["code"], r["entity_id"]) for r in got] == [(str(slow_change.code), a.id), ("changed", b.id)]
    assert pg.changes_after(upto) == ([], upto)
