"""A first sync is a bulk operation: matched by key from the listings, no lookup per create,
one change-log row per new record, and the cycle after it does not re-read syncd's own writes."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from syncd.runner import Runner

from .world import OBJ, World, b_person, person


def _count_finds(runner: Runner, calls: list[tuple[str, list[str]]]) -> None:
    for name, connector in runner.connectors.items():
        real = connector.find

        async def find(obj: str, path: str, values: Any, _real: Any = real, _name: str = name) -> Any:
            calls.append((_name, list(values)))
            return await _real(obj, path, values)

        connector.find = find  # type: ignore[method-assign]


async def test_first_sync_of_completely_listed_apps_creates_without_a_lookup_per_record(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, apps=("a", "b"))
    for i in range(20):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com", f"P{i}"))
    for i in range(10, 30):
        w.apps["b"].seed(OBJ, b_person(f"P{i}@Example.com", f"P{i}"))
    finds: list[tuple[str, list[str]]] = []
    stats = await w.cycle(before=lambda runner: _count_finds(runner, finds))
    assert finds == [], "the listings matched every record by key: nothing to look up"
    assert stats.total("created") == 20
    # Matched by key from the listings: every person once in each app, nobody twice.
    assert (
        sorted(w.by_email("a")) == sorted(w.by_email("b")) == sorted(f"p{i}@example.com" for i in range(30))
    )
    assert (await w.cycle()).total("writes") == 0


async def test_create_whose_first_attempt_was_in_flight_looks_the_key_up_and_links_what_it_made(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    made: list[str] = []

    def lose_the_answer(runner: Runner) -> None:
        connector = runner.connectors["b"]
        real = connector.create

        async def create(obj: str, items: Any) -> Any:
            results = await real(obj, items)  # the app made the records...
            made.extend(r.record.id for r in results if r.record is not None)
            raise TimeoutError("...but the answer was lost")

        connector.create = create  # type: ignore[method-assign]

    with contextlib.suppress(TimeoutError):
        await w.cycle(before=lose_the_answer)
    assert len(made) == 1
    assert len(w.records("b")) == 1
    finds: list[tuple[str, list[str]]] = []

    def lagging_listing(runner: Runner) -> None:
        # b's listing lags behind its writes (a search index): complete, yet without the record.
        connector = runner.connectors["b"]
        real = connector.read_changes

        async def read_changes(obj: str, cursor: Any) -> Any:
            async for page in real(obj, cursor):
                page.records[:] = [r for r in page.records if r.id not in made]
                yield page

        connector.read_changes = read_changes  # type: ignore[method-assign]
        _count_finds(runner, finds)

    await w.cycle(full=True, before=lagging_listing)
    # Retried after an attempt that may have reached the app: looked up by key, and linked.
    assert [app for app, _ in finds] == ["b"]
    assert list(w.records("b")) == made, "no second record for the same person"
    assert (await w.cycle()).total("writes") == 0


async def test_a_new_record_is_one_change_log_row_holding_its_values(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada", phone="+14155550100"))
    await w.cycle()
    rows = [row for row in w.changelog() if row["code"] == "new_record"]
    assert len(rows) == 1
    assert rows[0]["field"] == "*"
    assert rows[0]["app"] == "a"
    assert rows[0]["new"] == {"email": "ada@example.com", "name": "Ada", "phone": "+14155550100"}
    # The create in b is one row too, naming the record it made.
    created = [row for row in w.changelog() if row["code"] == "created"]
    assert [(row["app"], row["new"]) for row in created] == [("b", next(iter(w.records("b"))))]


async def test_cycle_after_a_sync_reads_none_of_syncds_own_writes(tmp_path: Path) -> None:
    w = World(tmp_path, apps=("a", "b"))
    for i in range(12):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))
    for i in range(6, 18):
        w.apps["b"].seed(OBJ, b_person(f"p{i}@example.com", "Bee"))
    first = await w.cycle()
    assert first.total("writes") > 0
    quiet = await w.cycle()
    assert quiet.total("read") == 0, quiet.as_dict()["apps"]
    assert quiet.total("writes") == 0


@pytest.mark.parametrize(
    "same_version",
    [
        False,
        # Mailchimp stamps whole seconds: a person's edit made in the same second as syncd's write
        # leaves the record at the version syncd recorded. Stepping past it by version alone would
        # skip the edit for good.
        True,
    ],
    ids=["new-version", "same-version-as-syncds-write"],
)
async def test_a_change_made_after_syncds_writes_is_still_read_by_the_next_cycle(
    tmp_path: Path, same_version: bool
) -> None:
    w = World(tmp_path, apps=("a", "b"))
    for i in range(12):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))

    def edit_after_the_writes(runner: Runner) -> None:
        connector = runner.connectors["b"]
        real = connector.create

        async def create(obj: str, items: Any) -> Any:
            results = await real(obj, items)
            # Someone edits one of the new records right after syncd wrote it.
            rid = results[0].record.id
            row = w.apps["b"].table(OBJ)[rid]
            version = row.version
            w.apps["b"].edit(OBJ, rid, {"props": {**w.records("b")[rid]["props"], "full_name": "Edited"}})
            if same_version:
                row.version = version
            return results

        connector.create = create  # type: ignore[method-assign]

    await w.cycle(before=edit_after_the_writes)
    after = await w.cycle()
    assert after.apps["b"].read >= 1, "the edit made after syncd's write is read, not stepped over"
    assert [r["name"] for r in w.by_email("a").values()].count("Edited") == 1
