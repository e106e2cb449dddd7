"""Engine-level tests of the trust defects found black-box: each is named by the hazard it guards.

Invariant behind all of them: after quiescence every app holds the canonical value of every
two-way field, or an open conflict says why not; and a further cycle writes nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.runner import Runner, RunStats
from syncd.store import AsyncStore

from .world import OBJ, World, mapping_text, person

TWO = ("a", "c")


def _id(w: World, app: str, email: str) -> str:
    return str(w.by_email(app)[email]["_id"])


async def _read_only(w: World, app: str) -> None:
    """One poll of ``app`` alone, then plan and dispatch (the other apps are not polled)."""
    store = await AsyncStore(w.db).open()
    connectors = w.connectors()
    for name, conn in connectors.items():
        if not w.conditional[name]:
            # An app without conditional writes: the runner re-reads right before writing.
            conn.__dict__["capabilities"] = dataclasses.replace(conn.capabilities, conditional_writes=False)
    try:
        runner = Runner(store, [w.mapping], connectors, retry_base=0.0, batch_size=50)
        await runner.read_app(w.mapping, app)
        await runner.plan()
        await runner.drain()
    finally:
        await store.close()


async def test_conflict_lost_at_the_pre_write_reread_is_written_to_the_losing_app(tmp_path: Path) -> None:
    w = World(tmp_path, policy="newest", apps=TWO)
    w.conditional["c"] = False  # no conditional writes: c is re-read right before the write
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    w.apps["c"].clock = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    w.apps["c"].edit(OBJ, _id(w, "c", "ada@example.com"), {"name": "C-older"})
    w.apps["a"].clock = datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "A-newer"})
    # c is polled rarely: the write to c discovers c's older edit in its pre-write re-read.
    await _read_only(w, "a")
    await w.settle()
    assert w.by_email("a")["ada@example.com"]["name"] == "A-newer"
    assert w.by_email("c")["ada@example.com"]["name"] == "A-newer"
    lost = [c for c in w.changelog() if c["app"] == "c" and c["reason"].startswith("conflict lost")]
    assert lost
    assert lost[0]["new"] == "C-older"
    assert (await w.cycle(full=True)).total("writes") == 0


async def test_value_rewritten_by_the_app_inside_our_write_propagates_once(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO)

    def promote(fields: dict[str, Any]) -> dict[str, Any]:
        if fields.get("name") == "lead":
            fields["name"] = "mql"  # an automation in c rewrites the value as it is written
        return fields

    w.apps["c"].normalise = promote
    w.apps["a"].seed(OBJ, person("ada@example.com", "lead"))
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["name"] == "mql"
    assert w.by_email("a")["ada@example.com"]["name"] == "mql"
    taken = [c for c in w.changelog() if c["app"] == "c" and c["reason"] == "changed in c"]
    assert [(c["old"], c["new"]) for c in taken] == [("lead", "mql")]
    assert (await w.cycle(full=True)).total("writes") == 0


async def test_equivalent_form_kept_by_the_app_settles_quietly(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO)

    def reformat(fields: dict[str, Any]) -> dict[str, Any]:
        if fields.get("phone"):
            digits = fields["phone"][-10:]
            fields["phone"] = f"+1 {digits[:3]}-{digits[3:6]}-{digits[6:]}"  # the same number
        return fields

    w.apps["c"].normalise = reformat
    w.apps["a"].seed(OBJ, person("ada@example.com", phone="+14155550100"))
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["phone"] == "+1 415-555-0100"
    assert w.by_email("a")["ada@example.com"]["phone"] == "+14155550100"
    assert not [c for c in w.changelog() if c["app"] == "c" and c["reason"].startswith("changed in")]


async def test_apps_normalising_one_value_differently_are_parked_not_ping_ponged(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO)
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada Lovelace"))
    await w.settle()

    def jobs() -> None:
        # Each app's own background job rewrites the name into its house style after our writes.
        for app, style in (("a", str.upper), ("c", str.lower)):
            rid = _id(w, app, "ada@example.com")
            name = w.by_email(app)["ada@example.com"]["name"]
            if style(name) != name:
                w.apps[app].edit(OBJ, rid, {"name": style(name)})

    writes = []
    for _ in range(10):
        jobs()
        writes.append((await w.cycle()).total("writes"))
    assert writes[-3:] == [0, 0, 0], writes
    parked = [c for c in w.conflicts() if c["field"] == "name"]
    assert len(parked) == 1
    conflict = parked[0]
    assert conflict["kind"] == "oscillation"
    assert {c["app"] for c in conflict["candidates"]} == {"a", "c"}
    assert {c["value"] for c in conflict["candidates"]} == {"ADA LOVELACE", "ada lovelace"}
    message = [c for c in w.changelog() if c["reason"].startswith("oscillation")]
    assert message
    assert "transform" in message[0]["reason"]
    assert 'case = "lower"' in message[0]["reason"]


def _scoped_mapping() -> str:
    """a owns a `stage` field that c does not have; c takes only people whose stage is not 'other'."""
    text = mapping_text(TWO, "priority", "unlink", "")
    text = text.replace(
        '[apps.c]\nobject = "contacts"\n',
        '[apps.c]\nobject = "contacts"\n[[apps.c.filter]]\nfield = "stage"\nop = "not_in"\n'
        'value = ["other"]\n',
    )
    return text + '\n[fields.stage]\napps.a = { path = "stage", direction = "in" }\n'


async def test_filter_on_a_field_the_app_lacks_decides_scope_stably(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO, text=_scoped_mapping())
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada", stage="other"))
    w.apps["c"].seed(OBJ, person("ada@example.com", "Ada"))
    w.apps["a"].seed(OBJ, person("bob@example.com", "Bob", stage="lead"))
    await w.settle()
    before = len(w.changelog())
    for _ in range(3):
        # every cycle re-reads c's record of Ada, which is out of c's scope
        w.apps["c"].edit(OBJ, _id(w, "c", "ada@example.com"), {"phone": "+14155550100"})
        assert (await w.cycle()).total("writes") == 0
        assert (await w.cycle(full=True)).total("writes") == 0
    churn = [
        c
        for c in w.changelog()[: len(w.changelog()) - before]
        if "linked existing" in c["reason"] or "left the scope" in c["reason"]
    ]
    assert churn == []
    assert "bob@example.com" in w.by_email("c")
    # Coming into scope links the record that is there (no duplicate: by_email asserts it).
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"stage": "lead"})
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["phone"] == "+14155550100"
    assert len(w.records("c")) == 2


async def test_record_with_an_empty_natural_key_is_never_created(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO)
    w.apps["a"].seed(OBJ, person("", "Nobody"))
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    stats = await w.settle()
    assert list(w.by_email("c")) == ["ada@example.com"]
    assert w.last is not None
    first = await w.cycle(full=True)
    assert first.total("writes") == 0
    assert stats.total("writes") == 0
    refused = [c for c in w.changelog() if c["reason"].startswith("not created in c")]
    assert refused
    assert "natural key" in refused[0]["reason"]


async def test_refused_create_is_counted_in_the_run(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO)
    w.apps["a"].seed(OBJ, person("  ", "Blank"))
    stats = await w.cycle()
    assert stats.apps["c"].refused == 1
    assert stats.as_dict()["refused"] == 1
    assert w.records("c") == {}


async def test_record_deleted_unseen_and_recreated_with_the_same_key_is_relinked(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO, delete="unlink")
    old = w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    # A hard delete no incremental read reports, then a new record with the same email.
    del w.apps["a"].table(OBJ)[old]
    new = w.apps["a"].seed(OBJ, person("ada@example.com", "Ada King"))
    await w.settle()
    assert w.conflicts() == []
    assert w.by_email("c")["ada@example.com"]["name"] == "Ada King"
    w.apps["c"].edit(OBJ, _id(w, "c", "ada@example.com"), {"name": "Countess"})
    await w.settle()
    assert w.records("a")[new]["name"] == "Countess"


async def test_identity_conflict_closes_itself_when_one_of_its_records_disappears(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO, delete="unlink")
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    twin = w.apps["a"].seed(OBJ, person("ada@example.com", "Ada (twin)"))
    await w.settle()
    assert [c["kind"] for c in w.conflicts()] == ["identity"]
    w.apps["a"].remove(OBJ, twin)
    await w.settle()
    assert w.conflicts() == []
    # the key syncs again
    w.apps["c"].edit(OBJ, _id(w, "c", "ada@example.com"), {"name": "Augusta"})
    await w.settle()
    assert [r["name"] for r in w.records("a").values()] == ["Augusta"]


async def test_recreate_after_a_propagated_delete_starts_from_the_new_record(tmp_path: Path) -> None:
    w = World(tmp_path, apps=TWO, delete="propagate")
    rid = w.apps["a"].seed(OBJ, person("ada@example.com", "Ada", phone="+14155550100", tags=["vip"]))
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["phone"] == "+14155550100"
    w.apps["a"].remove(OBJ, rid)
    await w.settle()
    assert w.by_email("c") == {}
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    for app in TWO:
        ada = w.by_email(app)["ada@example.com"]
        assert ada.get("phone") in (None, ""), app
        assert not ada.get("tags"), app


async def _ingest_late(w: World, app: str, records: list[Any], *, stamped: bool) -> RunStats:
    """Merge records read earlier (a re-read or page that crossed a write), then plan and dispatch."""
    store = await AsyncStore(w.db).open()
    connectors = w.connectors()
    conn = connectors[app]
    conn.__dict__["capabilities"] = dataclasses.replace(conn.capabilities, stamped_by_app=stamped)
    try:
        runner = Runner(store, [w.mapping], connectors, retry_base=0.0, batch_size=50)
        await runner.ingester.ingest(w.mapping, app, records)
        await runner.plan()
        await runner.drain()
        return runner.ctx.stats
    finally:
        await store.close()


@pytest.mark.parametrize("policy", ["priority", "newest"])
async def test_a_read_older_than_a_recorded_write_does_not_take_back_its_values(
    tmp_path: Path, policy: str
) -> None:
    """An app that stamps its records: a copy read before syncd's last write to it, merged after
    that write was recorded (another daemon's page, a re-read that crossed the write), holds the
    values the write replaced. Taken as an edit it would write them back over the person's edit
    in the other app."""
    w = World(tmp_path, policy=policy, apps=TWO)
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    cid = _id(w, "c", "ada@example.com")
    before_write = w.apps["c"].record(OBJ, cid)  # read now, merged only after the write below
    assert before_write.updated_at is not None
    # The person's edit in a is stamped before syncd created c's record (it was read later):
    # under "newest" the stale copy then looks newer than the edit.
    w.apps["a"].clock = before_write.updated_at - timedelta(seconds=1)
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Ada Lovelace"})
    await w.settle()
    assert w.by_email("c")["ada@example.com"]["name"] == "Ada Lovelace"

    stats = await _ingest_late(w, "c", [before_write], stamped=True)

    assert w.by_email("a")["ada@example.com"]["name"] == "Ada Lovelace"
    assert stats.total("writes") == 0
    assert stats.apps["c"].stale == 1
    assert not [c for c in w.changelog() if c["app"] == "c" and c["new"] == "Ada"][1:], "only c's first value"
    assert (await w.cycle(full=True)).total("writes") == 0


async def test_a_late_read_is_merged_as_before_where_the_app_does_not_stamp_its_records(
    tmp_path: Path,
) -> None:
    """Without ``stamped_by_app`` (a stamp a client may set, as an SQL column) an older stamp is
    no proof of an older read: the record is merged as read."""
    w = World(tmp_path, apps=TWO)
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    before_write = w.apps["c"].record(OBJ, _id(w, "c", "ada@example.com"))
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Ada Lovelace"})
    await w.settle()

    stats = await _ingest_late(w, "c", [before_write], stamped=False)

    assert stats.apps["c"].stale == 0
    taken = [c for c in w.changelog() if c["app"] == "c" and c["reason"] == "changed in c"]
    assert [(c["old"], c["new"]) for c in taken] == [("Ada Lovelace", "Ada")]


async def test_an_edit_stamped_before_a_write_of_ours_is_read_again_and_kept(tmp_path: Path) -> None:
    """The guard above trusts the app's stamps; an app whose clock went back (an edit stamped
    before syncd's last write) must still lose nothing: the copy looks stale, so the record is
    read again by id, and that read is merged as it is."""
    w = World(tmp_path, apps=TWO)
    w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    await w.settle()
    w.apps["a"].edit(OBJ, _id(w, "a", "ada@example.com"), {"name": "Ada Lovelace"})
    await w.settle()
    cid = _id(w, "c", "ada@example.com")
    written = w.apps["c"].record(OBJ, cid).updated_at
    assert written is not None
    w.apps["c"].clock = written - timedelta(seconds=5)
    w.apps["c"].edit(OBJ, cid, {"name": "Ada King"})

    store = await AsyncStore(w.db).open()
    connectors = w.connectors()
    c = connectors["c"]
    c.__dict__["capabilities"] = dataclasses.replace(c.capabilities, stamped_by_app=True)
    try:
        runner = Runner(store, [w.mapping], connectors, retry_base=0.0, batch_size=50)
        await runner.read_app(w.mapping, "c", full=True)
        assert runner.ctx.stats.apps["c"].stale == 1
        await runner.plan()
        await runner.drain()
    finally:
        await store.close()

    assert w.by_email("a")["ada@example.com"]["name"] == "Ada King"
    assert w.by_email("c")["ada@example.com"]["name"] == "Ada King"
