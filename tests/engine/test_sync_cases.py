"""One named test per hazard of ../shared/SYNC-CASES.md that the engine itself must handle.

Each test drives real Runner cycles over in-memory apps and a real SQLite store; every cycle is
also a restart. Daemon-only hazards (webhook inbox, leases) are tested with the daemon.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from syncd.connector import PermanentError, RateLimited, TransientError, WriteItem
from syncd.engine import decide
from syncd.engine.model import Candidate
from syncd.mapping import ConflictPolicy
from syncd.runner import Runner
from syncd.store import AsyncStore

from .world import OBJ, World, b_person, person


async def _seeded(tmp_path: Path, **kw: Any) -> World:
    w = World(tmp_path, **kw)
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada Lovelace", phone="+14155550100", tags=["vip"]))
    w.apps["a"].seed(OBJ, person("bob@example.com", "Bob", phone="+14155550101"))
    await w.settle()
    return w


def _id(w: World, app: str, email: str) -> str:
    return str(w.by_email(app)[email]["_id"])


# -- conflicts and merges ------------------------------------------------------------------------


async def test_same_field_edited_in_two_apps_follows_policy_and_keeps_loser_in_changelog(
    tmp_path: Path,
) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Ada from A"})
    w.apps["b"].edit(OBJ, _id(w, "b", "ada@example.com"), {"props": {"full_name": "Ada from B"}})
    await w.settle()
    # priority a > b > c
    for app in "abc":
        assert (
            w.by_email(app)["ada@example.com"].get(
                "name", w.by_email(app)["ada@example.com"].get("full_name")
            )
            == "Ada from A"
        )
    lost = [c for c in w.changelog() if c["reason"].startswith("conflict lost")]
    assert [(c["app"], c["new"]) for c in lost] == [("b", "Ada from B")]


async def test_different_fields_edited_in_two_apps_both_survive(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Countess Ada"})
    w.apps["b"].edit(OBJ, _id(w, "b", "ada@example.com"), {"props": {"phone": "+14155550199"}})
    await w.settle()
    for app in "ac":
        row = w.by_email(app)["ada@example.com"]
        assert (row["name"], row["phone"]) == ("Countess Ada", "+14155550199")
    assert w.by_email("b")["ada@example.com"]["full_name"] == "Countess Ada"
    assert not [c for c in w.changelog() if "conflict" in c["reason"]]


async def test_identical_edit_in_two_apps_is_adopted_without_writes_or_conflict(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Same"})
    w.apps["b"].edit(OBJ, _id(w, "b", "ada@example.com"), {"props": {"full_name": "Same"}})
    w.apps["c"].edit(OBJ, _id(w, "c", "ada@example.com"), {"name": "Same"})
    stats = await w.cycle()
    assert stats.total("writes") == 0
    assert stats.conflicts == 0


async def test_value_changed_and_changed_back_between_polls_is_no_change(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    rid = _id(w, "a", "bob@example.com")
    w.apps["a"].edit(OBJ, rid, {"name": "Robert"})
    w.apps["a"].edit(OBJ, rid, {"name": "Bob"})
    stats = await w.cycle()
    assert stats.total("writes") == 0
    assert stats.changes == 0


async def test_same_conflict_decided_twice_gives_identical_outcome() -> None:
    policy = ConflictPolicy(policy="newest", owner=None, priority=("b", "a"))
    cands = [Candidate("a", "x", "2026-01-01T00:00:00Z"), Candidate("b", "y", "2026-01-01T00:00:00Z")]
    first = decide(policy, cands, ("a", "b"))
    again = decide(policy, list(reversed(cands)), ("a", "b"))
    assert first == again
    assert first[0] is not None
    assert first[0].app == "b"


async def test_initial_sync_matches_by_normalised_key_and_sends_differing_values_to_review(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, extra='initial_conflict = "review"')
    w.apps["a"].seed(OBJ, person("  Ada@Example.COM ", "Ada A"))
    w.apps["b"].seed(OBJ, b_person("ada@example.com", "Ada B"))
    await w.settle()
    assert len(w.records("a")) == len(w.records("b")) == len(w.records("c")) == 1
    (conflict,) = w.conflicts()
    assert conflict["field"] == "name"
    assert {c["app"]: c["value"] for c in conflict["candidates"]} == {"a": "Ada A", "b": "Ada B"}
    # neither side was overwritten while the conflict is open
    assert w.by_email("a")["ada@example.com"]["name"] == "Ada A"
    assert w.by_email("b")["ada@example.com"]["full_name"] == "Ada B"


async def test_resolving_a_review_conflict_writes_the_chosen_value_everywhere(tmp_path: Path) -> None:
    w = World(tmp_path, extra='initial_conflict = "review"')
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada A"))
    w.apps["b"].seed(OBJ, b_person("ada@example.com", "Ada B"))
    await w.settle()
    (conflict,) = w.conflicts()
    store = await _runner_store(w)
    try:
        await store[0].resolve_conflict(conflict["id"], take="b")
    finally:
        await store[1].close()
    await w.settle()
    assert w.by_email("a")["ada@example.com"]["name"] == "Ada B"
    assert w.by_email("c")["ada@example.com"]["name"] == "Ada B"
    assert w.conflicts() == []


async def _runner_store(w: World) -> tuple[Runner, Any]:
    store = await AsyncStore(w.db).open()
    return Runner(store, [w.mapping], w.connectors()), store


async def test_user_edit_between_our_read_and_write_is_not_clobbered(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "From A"})
    c_id = _id(w, "c", "ada@example.com")

    def race(runner: Runner) -> None:
        original = runner.plan

        async def plan() -> int:
            w.apps["c"].edit(OBJ, c_id, {"phone": "+14155550777"})  # a human, after our read of c
            runner.plan = original  # type: ignore[method-assign]
            return await original()

        runner.plan = plan  # type: ignore[method-assign]

    await w.cycle(before=race)
    await w.settle()
    row = w.by_email("c")["ada@example.com"]
    assert row["phone"] == "+14155550777", "the human edit in c was overwritten"
    assert row["name"] == "From A"
    assert w.by_email("a")["ada@example.com"]["phone"] == "+14155550777"


async def test_edit_between_read_and_write_without_conditional_writes_is_caught_by_reread(
    tmp_path: Path,
) -> None:
    w = await _seeded(tmp_path)
    w.conditional["c"] = False
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "From A"})
    c_id = _id(w, "c", "ada@example.com")

    def race(runner: Runner) -> None:
        original = runner.plan

        async def plan() -> int:
            w.apps["c"].edit(OBJ, c_id, {"phone": "+14155550777"})
            runner.plan = original  # type: ignore[method-assign]
            return await original()

        runner.plan = plan  # type: ignore[method-assign]

    await w.cycle(before=race)
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["phone"] == "+14155550777"
    assert w.by_email("b")["ada@example.com"]["phone"] == "+14155550777"


# -- echo and loops --------------------------------------------------------------------------


async def test_quiet_period_performs_zero_writes(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    for _ in range(2):
        stats = await w.cycle()
        assert stats.total("writes") == 0
    stats = await w.cycle(full=True)
    assert stats.total("writes") == 0


async def test_echo_arriving_before_the_write_call_returns_changes_nothing(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "bob@example.com"), {"name": "Robert"})

    def echo_during_call(runner: Runner) -> None:
        conn = runner.connectors["b"]
        real_update = conn.update

        async def update(obj: str, items: Any) -> Any:
            results = await real_update(obj, items)
            # the app's webhook for our own write is processed before the call returns
            await runner.refetch(w.mapping, "b", [i.id for i in items])
            return results

        conn.update = update  # type: ignore[method-assign]

    await w.cycle(before=echo_during_call)
    stats = await w.cycle()
    assert stats.total("writes") == 0
    assert w.by_email("b")["bob@example.com"]["full_name"] == "Robert"
    assert not [c for c in w.changelog() if c["app"] == "b" and c["reason"].startswith("changed in")]


async def test_echo_with_server_normalised_value_is_a_no_op(tmp_path: Path) -> None:
    w = World(tmp_path)

    def reformat(fields: dict[str, Any]) -> dict[str, Any]:
        if fields.get("phone"):
            digits = fields["phone"][-10:]
            fields["phone"] = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
        return fields

    w.apps["c"].normalise = reformat
    w.apps["a"].seed(OBJ, person("ada@example.com", phone="+14155550100"))
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["phone"] == "(415) 555-0100"
    stats = await w.cycle(full=True)
    assert stats.total("writes") == 0


async def test_volatile_version_churn_is_ignored(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    for app in w.apps.values():
        app.version_churn = True
    stats = await w.cycle(full=True)
    assert stats.total("writes") == 0
    assert stats.changes == 0


async def test_human_edit_right_after_our_write_is_not_swallowed(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "bob@example.com"), {"name": "Robert"})
    await w.cycle()
    w.apps["c"].edit(OBJ, _id(w, "c", "bob@example.com"), {"name": "Bobby"})
    await w.settle()
    assert w.by_email("a")["bob@example.com"]["name"] == "Bobby"


async def test_app_truncating_a_value_does_not_cause_perpetual_writes(tmp_path: Path) -> None:
    w = World(tmp_path)

    def truncate(fields: dict[str, Any]) -> dict[str, Any]:
        if isinstance(fields.get("name"), str):
            fields["name"] = fields["name"][:5]
        return fields

    w.apps["c"].normalise = truncate
    w.apps["a"].seed(OBJ, person("ada@example.com", "Augusta Ada King"))
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["name"] == "Augus"
    assert w.by_email("a")["ada@example.com"]["name"] == "Augusta Ada King"
    assert (await w.cycle(full=True)).total("writes") == 0


# -- crashes, retries, idempotency -----------------------------------------------------------------


class Crash(Exception):
    """Simulated process death between a remote call and our commit."""


def _crash_after(w: World, app: str, op: str, times: int = 1) -> None:
    left = {"n": times}

    def hook(called: str) -> None:
        if called == op and left["n"] > 0:
            left["n"] -= 1
            raise Crash(f"died after {op} in {app}")

    w.apps[app].after_call = hook


async def test_crash_after_remote_create_makes_no_duplicate(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(20):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com", f"P{i}"))
    _crash_after(w, "b", "create")
    with pytest.raises(Crash):
        await w.cycle()
    await w.settle()
    assert len(w.records("b")) == 20
    assert len(w.by_email("b")) == 20  # by_email asserts no duplicate email
    assert len(w.records("c")) == 20


async def test_crash_after_remote_update_before_commit_converges(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Updated"})
    _crash_after(w, "b", "update")
    with pytest.raises(Crash):
        await w.cycle()
    await w.settle()
    assert w.by_email("b")["ada@example.com"]["full_name"] == "Updated"
    assert w.by_email("c")["ada@example.com"]["name"] == "Updated"
    assert (await w.cycle()).total("writes") == 0


async def test_crash_after_remote_delete_before_commit_drops_the_link(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].remove(OBJ, _id(w, "a", "bob@example.com"))
    _crash_after(w, "b", "delete")
    with pytest.raises(Crash):
        await w.cycle()
    await w.settle()
    assert "bob@example.com" not in w.by_email("b")
    assert "bob@example.com" not in w.by_email("c")
    store = w.store()
    try:
        entity = store.find_entity("people", "bob@example.com")
        assert entity is not None
        assert entity.state == "deleted"
        assert store.links_of([entity.id]) == {}
    finally:
        store.close()


async def test_create_that_timed_out_but_succeeded_is_looked_up_not_repeated(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apps["a"].seed(OBJ, person("ada@example.com"))
    conn_calls = {"n": 0}

    def timeout_after_success(called: str) -> None:
        if called == "create" and conn_calls["n"] == 0:
            conn_calls["n"] += 1
            raise TransientError("read timeout (the create went through)")

    w.apps["b"].after_call = timeout_after_success
    await w.settle()
    assert len(w.records("b")) == 1
    assert [c for c in w.apps["b"].calls if c[0] == "create"].__len__() == 1


async def test_cursor_is_not_saved_when_the_page_commit_fails(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(30):  # pages of 7
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))
    await w.settle()
    for i in range(30):
        w.apps["a"].edit(OBJ, _id(w, "a", f"p{i}@example.com"), {"name": f"New {i}"})

    def break_second_page(runner: Runner) -> None:
        original = runner.ingester._ingest
        pages = {"n": 0}

        def ingest(
            store: Any, mapping: Any, app: str, records: Any, run: Any = None, canonical: Any = None
        ) -> None:
            if app == "a":
                pages["n"] += 1
                if pages["n"] == 2:
                    raise Crash("died while committing page 2")
            original(store, mapping, app, records, run, canonical)

        runner.ingester._ingest = ingest  # type: ignore[method-assign]

    with pytest.raises(Crash):
        await w.cycle(before=break_second_page)
    await w.settle()
    assert all(row["name"] == f"New {email[1:].split('@')[0]}" for email, row in w.by_email("c").items())


async def test_one_rejected_record_in_a_batch_is_dead_lettered_and_the_rest_proceed(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(5):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))

    def reject(op: str, item: WriteItem) -> PermanentError | None:
        email = dict(item.fields).get("props", {}).get("email", "")
        return (
            PermanentError("invalid email domain") if op == "create" and email == "p3@example.com" else None
        )

    w.apps["b"].fail_writes = reject
    await w.settle()
    assert sorted(w.by_email("b")) == ["p0@example.com", "p1@example.com", "p2@example.com", "p4@example.com"]
    store = w.store()
    try:
        (dead,) = store.dead_letters()
    finally:
        store.close()
    assert dead.app == "b"
    assert "invalid email domain" in (dead.last_error or "")
    # no retry storm: a further cycle does not send it again
    creates_before = len([c for c in w.apps["b"].calls if c[0] == "create"])
    await w.cycle()
    assert len([c for c in w.apps["b"].calls if c[0] == "create"]) == creates_before


async def test_rate_limit_mid_batch_is_retried_without_losing_or_reordering_writes(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    limited = {"n": 0}

    def throttle(op: str, item: WriteItem) -> RateLimited | None:
        if op == "update" and limited["n"] < 1:
            limited["n"] += 1
            return RateLimited("slow down", retry_after=0)
        return None

    w.apps["b"].fail_writes = throttle
    rid = _id(w, "a", "ada@example.com")
    w.apps["a"].edit(OBJ, rid, {"name": "First"})
    await w.cycle()
    w.apps["a"].edit(OBJ, rid, {"name": "Second"})
    await w.settle()
    assert w.by_email("b")["ada@example.com"]["full_name"] == "Second"


# -- deletion and listing safety -----------------------------------------------------------------


async def test_empty_listing_is_not_a_mass_deletion(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].listing_limit = 0  # the app answers a complete-looking but empty listing
    stats = await w.cycle(full=True)
    assert stats.delete_guard
    assert len(w.records("b")) == 2
    assert len(w.records("c")) == 2
    assert any("mass-delete guard" in c["reason"] for c in w.changelog())


async def test_listing_that_shrank_past_the_threshold_stops_delete_propagation(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(10):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))
    await w.settle()
    w.apps["a"].listing_limit = 3
    stats = await w.cycle(full=True)
    assert stats.delete_guard
    assert len(w.records("b")) == 10


async def test_full_listing_failing_midway_infers_no_deletes(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(20):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))
    await w.settle()
    w.apps["a"].fail_listing_after = 10
    await w.cycle(full=True)
    assert len(w.records("b")) == 20
    assert len(w.records("c")) == 20


async def test_record_missing_from_a_complete_listing_is_deleted_elsewhere(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(10):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))
    await w.settle()
    # hard delete behind the app's change feed: only a complete listing can reveal it
    del w.apps["a"].table(OBJ)[_id(w, "a", "p4@example.com")]
    await w.cycle()
    assert "p4@example.com" in w.by_email("b"), "an incremental read inferred a delete"
    await w.cycle(full=True)
    await w.settle()
    assert "p4@example.com" not in w.by_email("b")


async def test_edit_on_one_side_and_delete_on_the_other_keeps_the_edit(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Edited"})
    w.apps["b"].remove(OBJ, _id(w, "b", "ada@example.com"))
    await w.settle()
    assert w.by_email("a")["ada@example.com"]["name"] == "Edited"
    assert w.by_email("b")["ada@example.com"]["full_name"] == "Edited", "edited record was not restored in b"
    assert w.by_email("c")["ada@example.com"]["name"] == "Edited"


async def test_delete_on_both_sides_drops_links_without_resurrection(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].remove(OBJ, _id(w, "a", "bob@example.com"))
    w.apps["b"].remove(OBJ, _id(w, "b", "bob@example.com"))
    await w.settle()
    for app in "abc":
        assert "bob@example.com" not in w.by_email(app)
    assert not w.store().dead_letters()


@pytest.mark.parametrize(
    ("policy", "left_in_b"),
    [("propagate", False), ("archive", True), ("unlink", True), ("ignore", True)],
)
async def test_delete_policy_decides_what_happens_to_the_other_apps(
    tmp_path: Path, policy: str, left_in_b: bool
) -> None:
    w = await _seeded(tmp_path, delete=policy)
    w.apps["a"].remove(OBJ, _id(w, "a", "bob@example.com"))
    await w.settle()
    assert ("bob@example.com" in w.by_email("b")) is left_in_b
    # No policy re-creates the deleted record: `ignore` changes nothing and keeps the link.
    assert "bob@example.com" not in w.by_email("a")
    assert (await w.cycle(full=True)).total("writes") == 0


@pytest.mark.parametrize("policy", ["propagate", "archive", "unlink", "ignore"])
async def test_delete_policy_archive_reaches_only_apps_that_archive(tmp_path: Path, policy: str) -> None:
    w = await _seeded(tmp_path, delete=policy)
    w.apps["b"].archives = True
    w.apps["a"].remove(OBJ, _id(w, "a", "bob@example.com"))
    await w.settle()
    gone_from_b = "bob@example.com" not in w.by_email("b")
    gone_from_c = "bob@example.com" not in w.by_email("c")
    assert gone_from_b is (policy in ("propagate", "archive"))
    assert gone_from_c is (policy == "propagate")


async def test_record_leaving_the_scope_of_an_app_is_unlinked_not_deleted(tmp_path: Path) -> None:
    from .world import mapping_text

    text = mapping_text(("a", "b", "c"), "priority", "propagate", "")
    text = text.replace(
        '[apps.c]\nobject = "contacts"\n',
        '[apps.c]\nobject = "contacts"\n[[apps.c.filter]]\nfield = "name"\nop = "ne"\nvalue = "Hidden"\n',
    )
    w = World(tmp_path, text=text)
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    assert "ada@example.com" in w.by_email("c")
    w.apps["c"].edit(OBJ, _id(w, "c", "ada@example.com"), {"name": "Hidden"})
    await w.settle()
    assert "ada@example.com" in w.by_email("c")  # not deleted in c
    assert "ada@example.com" in w.by_email("a")
    assert "ada@example.com" in w.by_email("b")


# -- identity --------------------------------------------------------------------------------


async def test_lost_state_database_rematches_by_key_without_duplicates_or_deletes(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(w.db) + suffix).unlink(missing_ok=True)
    await w.settle(full=True)
    for app in "abc":
        assert sorted(w.by_email(app)) == ["ada@example.com", "bob@example.com"]


async def test_app_rolled_back_from_backup_is_caught_by_full_reconciliation(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    rid = _id(w, "b", "ada@example.com")
    w.apps["b"].table(OBJ)[rid].fields["props"]["full_name"] = (
        "Old name from backup"  # no seq bump: cursor hides it
    )
    assert (await w.cycle()).total("writes") == 0
    await w.settle(full=True)
    names = {w.by_email("a")["ada@example.com"]["name"], w.by_email("b")["ada@example.com"]["full_name"]}
    assert len(names) == 1


async def test_duplicate_email_in_one_app_is_an_identity_conflict_and_halts_that_key(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apps["a"].seed(OBJ, person("twin@example.com", "Twin One"))
    w.apps["a"].seed(OBJ, person("TWIN@example.com", "Twin Two"))
    w.apps["a"].seed(OBJ, person("solo@example.com", "Solo"))
    await w.settle()
    conflicts = w.conflicts()
    assert [c["field"] for c in conflicts] == ["@identity"]
    assert "twin@example.com" not in w.by_email("b")
    assert "solo@example.com" in w.by_email("b")
    await w.settle()
    assert len(w.conflicts()) == 1  # seen again, not recorded twice


async def test_email_case_whitespace_and_unicode_variants_match_as_one_key(tmp_path: Path) -> None:
    w = World(tmp_path, extra='initial_conflict = "policy"')
    w.apps["a"].seed(OBJ, person("Ada@Example.com"))
    w.apps["b"].seed(OBJ, b_person("  ada@example.com\t"))
    w.apps["c"].seed(OBJ, person("ａｄａ@example.com"))  # fullwidth letters, NFKC-equal
    await w.settle()
    for app in "abc":
        assert len(w.records(app)) == 1


# -- ordering, time, data mapping -------------------------------------------------------------------


async def test_edit_that_did_not_bump_updated_at_is_caught_by_full_content_compare(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].table(OBJ)[_id(w, "a", "bob@example.com")].fields["name"] = "Silent edit"
    await w.cycle()
    assert w.by_email("b")["bob@example.com"]["full_name"] == "Bob"
    await w.settle(full=True)
    assert w.by_email("b")["bob@example.com"]["full_name"] == "Silent edit"


async def test_newest_policy_is_deterministic_with_equal_timestamps(tmp_path: Path) -> None:
    policy = ConflictPolicy(policy="newest", owner=None, priority=("c", "b", "a"))
    winner, why = decide(policy, [Candidate("a", 1, "t"), Candidate("c", 2, "t")], ("a", "b", "c"))
    assert winner is not None
    assert winner.app == "c"
    assert "tie" in why


async def test_explicit_clear_propagates_but_absent_field_does_not(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"phone": None})
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["phone"] in (None, "")
    # b's record loses the field entirely (a partial payload): that is not a clear
    rid = _id(w, "b", "bob@example.com")
    del w.apps["b"].table(OBJ)[rid].fields["props"]["phone"]
    w.apps["b"].edit(OBJ, rid, {})
    await w.settle()
    assert w.by_email("c")["bob@example.com"]["phone"] == "+14155550101"


async def test_tags_are_merged_as_sets_not_overwritten(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"tags": ["vip", "speaker"]})
    w.apps["b"].edit(OBJ, _id(w, "b", "ada@example.com"), {"props": {"tags": "vip;donor"}})
    await w.settle()
    assert sorted(w.by_email("a")["ada@example.com"]["tags"]) == ["donor", "speaker", "vip"]
    assert sorted(w.by_email("b")["ada@example.com"]["tags"].split(";")) == ["donor", "speaker", "vip"]


async def test_rejected_value_leaves_baseline_unchanged_and_is_retried_only_by_replay(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)

    def too_long(op: str, item: WriteItem) -> PermanentError | None:
        name = dict(item.fields).get("name")
        return PermanentError("name too long") if isinstance(name, str) and len(name) > 20 else None

    w.apps["c"].fail_writes = too_long
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "A name that is far too long for c"})
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["name"] == "Ada Lovelace"
    updates = len([c for c in w.apps["c"].calls if c[0] == "update"])
    await w.cycle()
    assert len([c for c in w.apps["c"].calls if c[0] == "update"]) == updates


async def test_unsubscribe_always_wins_and_is_never_reversed_through_an_api(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apps["a"].seed(OBJ, person("ada@example.com", subscribed=True))
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["subscribed"] is True
    w.apps["c"].edit(OBJ, _id(w, "c", "ada@example.com"), {"subscribed": False})
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Edited"})
    await w.settle()
    assert w.by_email("a")["ada@example.com"]["subscribed"] is False
    # someone re-subscribes in a: syncd never pushes a subscription into c through the API
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"subscribed": True})
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["subscribed"] is False


async def test_plan_lists_exactly_the_writes_the_next_cycle_makes(tmp_path: Path) -> None:
    w = await _seeded(tmp_path)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Planned"})
    w.apps["b"].seed(OBJ, b_person("new@example.com", "New"))
    src, dst = sqlite3.connect(w.db), sqlite3.connect(tmp_path / "copy.db")
    src.backup(dst)
    src.close()
    dst.close()
    store = await AsyncStore(tmp_path / "copy.db").open()
    try:
        dry = Runner(store, [w.mapping], w.connectors(), dry_run=True)
        await dry.run_cycle()
    finally:
        await store.close()
    planned = sorted((p["app"], p["op"], p["entity_id"]) for p in dry.planned)
    calls_before = {n: len(a.calls) for n, a in w.apps.items()}
    stats = await w.cycle()
    made = []
    for name, app in w.apps.items():
        for op, _obj, ids in app.calls[calls_before[name] :]:
            if op in ("create", "update", "delete"):
                made += [(name, op)] * len(ids)
    assert sorted((a, o) for a, o, _ in planned) == sorted(made)
    assert stats.total("writes") == len(planned)


async def test_a_whole_batch_refused_by_the_app_is_dead_lettered_and_the_sync_goes_on(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(3):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))

    def refuse_whole_call(runner: Runner) -> None:
        async def create(obj: str, items: Any) -> Any:
            raise PermanentError("400 the request body is not valid", status=400)

        runner.connectors["b"].create = create  # type: ignore[method-assign]

    stats = await w.cycle(before=refuse_whole_call)
    assert len(w.records("c")) == 3  # the other app was not held up
    store = w.store()
    try:
        dead = store.dead_letters()
    finally:
        store.close()
    assert sorted(d.app for d in dead) == ["b"] * 3
    assert stats.total("errors") >= 3


async def test_an_app_whose_settings_cannot_work_is_paused_not_crashed(tmp_path: Path) -> None:
    from syncd.connector import ConfigError

    w = World(tmp_path)
    w.apps["a"].seed(OBJ, person("p@example.com"))

    def misconfigured(runner: Runner) -> None:
        # The create is the first call that meets the missing column (a first sync of a
        # completely listed app looks nothing up before it creates).
        async def create(obj: str, items: Any) -> Any:
            raise ConfigError("b: no column 'email'")

        runner.connectors["b"].create = create  # type: ignore[method-assign]

    stats = await w.cycle(before=misconfigured)
    assert stats.paused == ["b"]
    assert len(w.records("c")) == 1
    assert len(w.records("b")) == 0
    # nothing was lost: the write waits in the outbox for the fixed settings
    assert (await w.cycle()).total("writes") == 1
    assert len(w.records("b")) == 1
