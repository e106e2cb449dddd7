"""Creates in an app whose create is an upsert by the natural key (``upsert_by_key``).

A first create needs no key lookup after a complete listing of the app in the same cycle; after
an incremental read it is looked up, as in any app, so that a record someone made since the last
read goes through the first-match rule instead of being written over by the upsert. An intent
sent before is always looked up: a create in flight at a crash is linked as it was made, never
duplicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from syncd.connector import TransientError, WriteItem, WriteResult
from syncd.testing.memory import MemoryConnector

from .world import OBJ, World, b_person, person


class UpsertingConnector(MemoryConnector):
    """A memory app whose create updates the live record holding the same email, if any."""

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        results: list[WriteResult] = []
        fresh: list[WriteItem] = []
        for item in items:
            email = str(item.fields.get("props", {}).get("email", "")).strip().lower()
            holder = next(
                (
                    rid
                    for rid, fields in self.backend.live(obj).items()
                    if str(fields.get("props", {}).get("email", "")).strip().lower() == email
                ),
                None,
            )
            if holder is None:
                fresh.append(item)
                continue
            self.backend.edit(obj, holder, self._stored(item.fields))
            results.append(WriteResult(item.key, record=self.backend.record(obj, holder)))
        made = await super().create(obj, fresh) if fresh else []
        by_key = {r.key: r for r in [*results, *made]}
        return [by_key[i.key] for i in items]


class UpsertWorld(World):
    def connectors(self) -> dict[str, MemoryConnector]:
        out = super().connectors()
        plain = out["b"]
        upserting = UpsertingConnector.over(self.apps["b"], page_size=7)
        upserting._shadow_class_vars(capabilities=replace(plain.capabilities, upsert_by_key=True))
        out["b"] = upserting
        return out


def _finds(w: World, app: str) -> list[tuple[str, ...]]:
    return [ids for op, _, ids in w.apps[app].calls if op == "find"]


async def test_first_creates_in_an_upserting_app_are_sent_without_a_key_lookup(tmp_path: Path) -> None:
    w = UpsertWorld(tmp_path, apps=("a", "b"))
    for i in range(10):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com", f"P{i}"))
    await w.settle()
    assert sorted(w.by_email("b")) == [f"p{i}@example.com" for i in range(10)]
    assert _finds(w, "b") == []
    assert _finds(w, "a") == [], "nothing was created in a"


async def test_a_create_in_flight_at_a_crash_is_linked_after_the_restart_not_duplicated(
    tmp_path: Path,
) -> None:
    w = UpsertWorld(tmp_path, apps=("a", "b"))
    for i in range(3):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com", f"P{i}"))

    class Crash(Exception):
        pass

    def crash_after_create(op: str) -> None:
        if op == "create":
            w.apps["b"].after_call = None
            raise Crash("died after b's create took effect")

    w.apps["b"].after_call = crash_after_create
    with pytest.raises(Crash):
        await w.cycle()
    assert len(w.records("b")) == 3, "the creates took effect before the crash"
    await w.settle()
    assert sorted(w.by_email("b")) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    # The restart's read links the records the creates made; a retried intent would be looked
    # up first (attempts > 1): either way, one record per person and one link each.
    store = w.store()
    try:
        links = store.links_of(e for e in range(1, 10))
    finally:
        store.close()
    assert sum(1 for apps in links.values() if "b" in apps) == 3


async def test_a_create_retried_after_a_lost_response_is_looked_up_before_it_is_sent_again(
    tmp_path: Path,
) -> None:
    w = UpsertWorld(tmp_path, apps=("a", "b"))
    for i in range(3):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com", f"P{i}"))

    def lose_the_response(op: str) -> None:
        if op == "create":
            w.apps["b"].after_call = None
            raise TransientError("b: connection reset after the create took effect")

    w.apps["b"].after_call = lose_the_response
    await w.settle()
    assert sorted(w.by_email("b")) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    ops = [(op, tuple(sorted(ids))) for op, _, ids in w.apps["b"].calls if op in ("create", "find")]
    emails = ("p0@example.com", "p1@example.com", "p2@example.com")
    assert ops == [("create", ("b-1", "b-2", "b-3")), ("find", emails)], (
        "the retried intents were looked up, found and linked: no second create"
    )


async def test_a_record_made_since_the_last_read_is_linked_by_key_not_written_over_by_the_upsert(
    tmp_path: Path,
) -> None:
    # A signup form adds Bea to both apps; syncd reads a's new record, but b's arrives after b was
    # read. The create in b is an upsert by email: sent blindly it would put a's values over b's
    # record without the first-match rule ever seeing them.
    w = UpsertWorld(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    w.apps["a"].seed(OBJ, person("bea@example.com", "Bea from a"))

    def b_record_arrives_after_b_is_read(runner: Any) -> None:
        connector = runner.connectors["b"]
        real = connector.read_changes

        async def read_changes(obj: str, cursor: Any) -> Any:
            async for page in real(obj, cursor):
                yield page
            connector.read_changes = real  # once: later reads (the catch-up) see the record
            w.apps["b"].seed(OBJ, b_person("bea@example.com", "Bea from b"))

        connector.read_changes = read_changes

    await w.cycle(before=b_record_arrives_after_b_is_read)
    assert ("bea@example.com",) in _finds(w, "b")
    newest = next(e for e in w.changelog() if e["app"] == "b" and e["code"] in ("linked", "created"))
    assert newest["code"] == "linked", newest
    assert "linked existing b record by key" in newest["reason"]
    assert len([r for r in w.by_email("b") if r == "bea@example.com"]) == 1
