"""Random mixes of trust hazards over three in-memory apps that misbehave the way real apps do.

* ``a`` hard-deletes (no tombstone: only listings, or its id listing, show a record is gone) and
  decides who is in scope of ``b`` through ``lifecycle``, a field only ``a`` has;
* ``b`` keeps people whose lifecycle is not ``other`` (a filter whose scope flips) and
  normalises names in the write (title case);
* ``c`` runs an automation inside the write (``stage`` ``lead`` becomes ``mql``);
* humans create records (sometimes without an email), edit, delete, recreate a deleted record
  with the same email, and run nightly jobs that normalise names their own way; some syncs read
  only some apps (a rarely polled app is only discovered by the pre-write re-read).

After every quiet period: every linked app holds the canonical value of each two-way field or an
open conflict explains why not; no record with an empty key was created; a further cycle writes
nothing and links or unlinks nothing; no edit was lost. Nightly jobs that disagree stop being
written back and forth within 8 cycles.

``SYNCD_STATE_MACHINE_EXAMPLES`` sets the number of examples of the quick run (default 100, about
35 s on two busy cores); each of the four ``slow`` shards takes five times as many, of twice the
length: 2,100 examples in a default run. An
example costs 10-40 sync cycles of a real SQLite store (about 25 ms each on a RAM disk), about
0.35 s: some 250 examples fit in 90 s, and 2,000 take about 12 minutes.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from syncd.engine import same
from syncd.runner import Runner, RunStats
from syncd.store import AsyncStore

from .world import OBJ, World, logged

APPS = ("a", "b", "c")
EMAILS = ("ada@example.com", "bob@example.com", "cy@example.com")
#: Keys a human may leave empty (a form without the email filled in).
EMPTY = ("", "   ")
NAMES = ("ada", "Bob", "CY", " Dee ")
PHONES = ("+14155550100", "(415) 555-0101", None)
STAGES = ("subscriber", "lead", "mql", "customer")
LIFECYCLES = ("lead", "other", "customer")
RAM_DISK = "/dev/shm"
#: Change-log reasons that link, unlink or restore: none may appear in a quiet cycle.
CHURN = ("linked existing", "left the scope", "unlinked", "restored", "link dropped", "deleting in")

MAPPING = """
name = "people"
key = "email"
initial_conflict = "policy"

[apps.a]
object = "contacts"
[apps.b]
object = "contacts"
[[apps.b.filter]]
field = "lifecycle"
op = "not_in"
value = ["other"]
[apps.c]
object = "contacts"

[conflict]
policy = "priority"
priority = ["a", "b", "c"]

[delete]
policy = "propagate"
mass_delete_threshold = 0.5

[fields.email]
transforms = ["email"]
apps.a = "email"
apps.b = "props.email"
apps.c = "email"

[fields.name]
transforms = ["trim"]
apps.a = "name"
apps.b = "props.full_name"
apps.c = "name"

[fields.phone]
transforms = ["e164"]
apps.a = "phone"
apps.b = "props.phone"
apps.c = "phone"

[fields.stage]
apps.a = "stage"
apps.c = "stage"

[fields.lifecycle.apps.a]
path = "lifecycle"
direction = "in"
"""

#: Two-way fields per app, as (canonical name, path in the app's record).
PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "a": {"name": ("name",), "phone": ("phone",), "stage": ("stage",)},
    "b": {"name": ("props", "full_name"), "phone": ("props", "phone")},
    "c": {"name": ("name",), "phone": ("phone",), "stage": ("stage",)},
}


def _patch(app: str, field: str, value: Any) -> dict[str, Any]:
    path = PATHS[app].get(field, (field,))
    patch: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        patch = {part: patch}
    return patch


def _fields(app: str, email: str, name: str) -> dict[str, Any]:
    if app == "b":
        return {"props": {"email": email, "full_name": name}}
    extra = {"lifecycle": "lead"} if app == "a" else {}
    return {"email": email, "name": name, **extra}


def _email(fields: dict[str, Any]) -> str:
    flat = fields.get("props", fields)
    return str(flat.get("email") or "").strip().lower()


def _title_names(fields: dict[str, Any]) -> dict[str, Any]:
    """b's normalisation in the write: names are stored title-cased."""
    props = fields.get("props")
    if isinstance(props, dict) and isinstance(props.get("full_name"), str):
        props["full_name"] = props["full_name"].title()
    return fields


def _promote_leads(fields: dict[str, Any]) -> dict[str, Any]:
    """c's automation: a lead written by an integration is promoted to mql at once."""
    if fields.get("stage") == "lead":
        fields["stage"] = "mql"
    return fields


class TrustWorld(World):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, apps=APPS, text=MAPPING)
        self.apps["a"].hard_deletes = True
        self.apps["a"].id_listing = True
        self.apps["b"].normalise = _title_names
        self.apps["c"].rewrite = _promote_leads
        # c has no conditional writes: syncd re-reads its records before writing to them.
        self.conditional["c"] = False

    async def cycle(self, **kw: Any) -> RunStats:
        # Hard deletes of a world this small trip the mass-delete guard (tested on its own elsewhere).
        kw.setdefault("allow_mass_delete", True)
        return await super().cycle(**kw)

    async def read_some(self, apps: tuple[str, ...]) -> RunStats:
        """A cycle that reads only ``apps`` (the others are polled rarely) and writes to all."""
        store = await AsyncStore(self.db).open()
        try:
            runner = Runner(
                store,
                [self.mapping],
                self.connectors(),
                retry_base=0.0,
                batch_size=50,
                allow_mass_delete=True,
            )
            self.last = await runner.run_cycle(apps=apps)
            return self.last
        finally:
            await store.close()


class TrustMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # A RAM disk where there is one: the store's commits are most of a cycle's time.
        self.tmp = tempfile.TemporaryDirectory(dir=RAM_DISK if os.access(RAM_DISK, os.W_OK) else None)
        self.world = TrustWorld(Path(self.tmp.name))
        self.human: dict[tuple[str, str], int] = defaultdict(int)
        self.edits: list[tuple[str, str, str, Any]] = []
        self.dirty = False

    def teardown(self) -> None:
        self.tmp.cleanup()

    def _live(self, app: str) -> list[str]:
        return sorted(self.world.apps[app].live(OBJ))

    # -- humans --------------------------------------------------------------------------------

    @rule(app=st.sampled_from(APPS), email=st.sampled_from(EMAILS + EMPTY), name=st.sampled_from(NAMES))
    def create(self, app: str, email: str, name: str) -> None:
        self.world.apps[app].seed(OBJ, _fields(app, email, name))
        self.human[(app, email.strip().lower())] += 1
        self.dirty = True

    @rule(data=st.data(), app=st.sampled_from(APPS), field=st.sampled_from(("name", "phone", "stage")))
    def edit(self, data: st.DataObject, app: str, field: str) -> None:
        ids = self._live(app)
        if not ids or field not in PATHS[app]:
            return
        rid = data.draw(st.sampled_from(ids))
        choices = {"name": NAMES, "phone": PHONES, "stage": STAGES}[field]
        value = data.draw(st.sampled_from(choices))
        mapping = self.world.mapping
        before = mapping.to_canonical(app, self.world.apps[app].live(OBJ)[rid]).get(field)
        patch = _patch(app, field, value)
        self.world.apps[app].edit(OBJ, rid, patch)
        # A person's later edit of the same field supersedes an earlier one in the app itself
        # (unless a sync read it in between, when the earlier one was checked by then anyway).
        self.edits = [e for e in self.edits if e[:3] != (app, rid, field)]
        after = mapping.to_canonical(app, patch).get(field)
        if not same(before, after) and not self._as_last_read(app, rid, field, after):
            self.edits.append((app, rid, field, after))
        self.dirty = True

    def _as_last_read(self, app: str, rid: str, field: str, value: Any) -> bool:
        """Whether syncd last read ``value`` in this field of the record: edits that took it
        away and back between two reads cannot be seen by a sync that reads records' states (the
        record is as it was when read), so they are not expected to be recorded."""
        store = self.world.store()
        try:
            link = store.links_by_remote(self.world.mapping.name, app, [rid]).get(rid)
        finally:
            store.close()
        # A field syncd never read a value of is empty as far as it knows.
        return link is not None and same(link.baseline.get(field), value)

    @rule(data=st.data(), lifecycle=st.sampled_from(LIFECYCLES))
    def flip_scope(self, data: st.DataObject, lifecycle: str) -> None:
        """a's lifecycle decides whether the person belongs in b."""
        ids = self._live("a")
        if ids:
            self.world.apps["a"].edit(OBJ, data.draw(st.sampled_from(ids)), {"lifecycle": lifecycle})
            self.dirty = True

    @rule(data=st.data(), app=st.sampled_from(APPS))
    def delete(self, data: st.DataObject, app: str) -> None:
        ids = self._live(app)
        if ids:
            rid = data.draw(st.sampled_from(ids))
            self.world.apps[app].remove(OBJ, rid)
            self.edits = [e for e in self.edits if e[:2] != (app, rid)]
            self.dirty = True

    @rule(data=st.data(), app=st.sampled_from(APPS))
    def recreate_with_the_same_key(self, data: st.DataObject, app: str) -> None:
        """Delete a record and create a new one (new id) with the same email and no other values."""
        ids = self._live(app)
        if not ids:
            return
        rid = data.draw(st.sampled_from(ids))
        email = _email(self.world.apps[app].live(OBJ)[rid])
        self.world.apps[app].remove(OBJ, rid)
        self.edits = [e for e in self.edits if e[:2] != (app, rid)]
        self.world.apps[app].seed(OBJ, _fields(app, email, "Again"))
        self.dirty = True

    # -- syncd ---------------------------------------------------------------------------------

    @rule(full=st.booleans())
    def sync(self, full: bool) -> None:
        asyncio.run(self.world.cycle(full=full))

    @rule(apps=st.sampled_from((("a",), ("b",), ("c",), ("a", "b"), ("b", "c"))))
    def sync_reading_only(self, apps: tuple[str, ...]) -> None:
        """The other apps are polled rarely: their edits are only found by pre-write re-reads."""
        asyncio.run(self.world.read_some(apps))

    @precondition(lambda self: any(self._live(app) for app in ("a", "c")))
    @rule()
    def nightly_jobs_disagree(self) -> None:
        """a's job upper-cases names, c's job lower-cases them, every night between two syncs."""
        jobs: dict[str, Callable[[str], str]] = {"a": str.upper, "c": str.lower}

        def run_jobs(first: bool) -> None:
            for app, job in jobs.items():
                for rid, fields in self.world.apps[app].live(OBJ).items():
                    name = fields.get("name")
                    if isinstance(name, str) and job(name) != name:
                        self.world.apps[app].edit(OBJ, rid, {"name": job(name)})
                        if first:
                            # The app's own job overwrote a person's edit before any sync could
                            # read it: superseded in the app, not lost by syncd.
                            self.edits = [e for e in self.edits if e[:3] != (app, rid, "name")]

        name_writes: list[int] = []
        for night in range(9):
            run_jobs(first=night == 0)
            asyncio.run(self.world.cycle())
            name_writes.append(self._name_writes_of_last_run())
        assert name_writes[-1] == 0, f"names still written back and forth after 8 nights: {name_writes}"
        self.dirty = True

    def _name_writes_of_last_run(self) -> int:
        store = self.world.store()
        try:
            run = store.latest_run()
            rows = store._q(
                "SELECT count(*) AS n FROM changelog WHERE run_id = ? AND field = 'name' AND reason LIKE 'written to %'",
                [run],
            )
        finally:
            store.close()
        return int(rows[0]["n"])

    # -- quiet period and invariants ----------------------------------------------------------

    @precondition(lambda self: self.dirty)
    @rule()
    def quiet_period(self) -> None:
        asyncio.run(self.world.settle())
        self.check_deletes_seen()
        asyncio.run(self.world.settle(full=True))
        self.check_converged()
        self.check_quiet_cycle(full=False)
        self.check_quiet_cycle(full=True)
        self.edits = []
        self.dirty = False

    def check_deletes_seen(self) -> None:
        """Without a full listing: every app reports deletes (tombstones, or a's id listing)."""
        store = self.world.store()
        try:
            links = store._q("SELECT app, remote_id FROM links")
        finally:
            store.close()
        for link in links:
            assert link["remote_id"] in self.world.apps[link["app"]].live(OBJ), (
                f"{link['app']} record {link['remote_id']} is gone, but only a full listing would notice"
            )

    def check_converged(self) -> None:
        world = self.world
        store = world.store()
        try:
            open_conflicts = store.conflicts(status="open")
            blocked = {c["entity_id"] for c in open_conflicts if c["field"] == "@identity"}
            parked = {(c["entity_id"], c["field"]) for c in open_conflicts}
            entities = {key: e for key in EMAILS if (e := store.find_entity("people", key)) is not None}
            links = store.links_of(e.id for e in entities.values())
            log = store.changelog(limit=100_000)
        finally:
            store.close()

        for app in APPS:
            made = {rid for op, _obj, ids in world.apps[app].calls if op == "create" for rid in ids}
            counts: dict[str, int] = defaultdict(int)
            ours: dict[str, int] = defaultdict(int)
            for rid, fields in world.apps[app].live(OBJ).items():
                key = _email(fields)
                assert key or rid not in made, f"syncd created {app} record {rid} with an empty email"
                counts[key] += 1
                ours[key] += rid in made
            for key, n in ours.items():
                assert n <= 1, f"syncd created {n} live records for {key} in {app}"
                if n:
                    assert counts[key] - n <= self.human[(app, key)], f"{app}: duplicate of {key}"

        for conflict in open_conflicts:
            if conflict["field"] != "@identity":
                continue
            for side in conflict["candidates"]:
                assert side["value"] in world.apps[side["app"]].live(OBJ), (
                    f"identity conflict #{conflict['id']} stays open though {side['app']} record "
                    f"{side['value']} is gone"
                )

        for key, entity in entities.items():
            if entity.id in blocked or entity.state != "active":
                continue
            for app, link in links.get(entity.id, {}).items():
                live = world.apps[app].live(OBJ).get(link.remote_id)
                assert live is not None, f"{key}: link to a missing {app} record"
                held = world.mapping.to_canonical(app, live)
                for field in PATHS[app]:
                    if (entity.id, field) in parked or field not in held:
                        continue
                    assert same(held[field], entity.values.get(field)), (
                        f"{key}.{field}: {app} holds {held[field]!r}, canonical {entity.values.get(field)!r}, "
                        "and no open conflict says why"
                    )

        linked = {(app, link.remote_id) for by_app in links.values() for app, link in by_app.items()}
        halted = {
            (side["app"], side["value"])
            for c in open_conflicts
            if c["field"] == "@identity"
            for side in c["candidates"]
        }
        for app, rid, field, want in self.edits:
            if (app, rid) in halted:
                continue  # the key is halted for review; the open identity conflict says why
            record = world.apps[app].live(OBJ).get(rid)
            if (app, rid) not in linked and record is not None:
                # A record out of its app's scope is not synced at all (by the mapping's filter).
                owner = entities.get(_email(record))
                if owner is not None and not world.mapping.in_scope(app, owner.values):
                    continue
            recorded = any(logged(c, app, field, want) for c in log)
            in_canonical = any(same(e.values.get(field), want) for e in entities.values())
            assert recorded or in_canonical, (
                f"edit {app}/{rid}.{field}={want!r} was lost; {app}'s {field} changes: "
                f"{[(c['old'], c['new'], c['reason']) for c in log if c['app'] == app and c['field'] in (field, '*')]}"
            )

    def check_quiet_cycle(self, *, full: bool) -> None:
        """Once quiet, a further cycle (reading changes, or everything) writes and links nothing."""
        store = self.world.store()
        try:
            conflicts_before = len(store.conflicts(status=None))
        finally:
            store.close()
        stats = asyncio.run(self.world.cycle(full=full))
        store = self.world.store()
        try:
            run = store.latest_run()
            churn = [
                (c["app"], c["reason"])
                for c in store.changelog(limit=10_000)
                if c.get("run_id") == run and any(word in c["reason"] for word in CHURN)
            ]
            conflicts_after = len(store.conflicts(status=None))
        finally:
            store.close()
        kind = "full" if full else "incremental"
        assert churn == [], f"links churned in a quiet {kind} cycle: {churn}"
        assert stats.total("writes") == 0, f"a quiet {kind} cycle wrote: {stats.as_dict()['apps']}"
        assert conflicts_after == conflicts_before, f"a quiet {kind} cycle opened conflicts"

    @invariant()
    def one_record_per_app_and_entity(self) -> None:
        store = self.world.store()
        try:
            rows = store._q(
                "SELECT entity_id, app, count(*) n FROM links GROUP BY entity_id, app HAVING n > 1"
            )
        finally:
            store.close()
        assert rows == [], "an entity has two records in one app"


EXAMPLES = int(os.environ.get("SYNCD_STATE_MACHINE_EXAMPLES", "100"))
_COMMON: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
QUICK = settings(max_examples=EXAMPLES, stateful_step_count=12, **_COMMON)
LONG = settings(max_examples=EXAMPLES * 5, stateful_step_count=25, **_COMMON)


class TestTrustStateMachine(TrustMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = QUICK


@pytest.mark.slow
@pytest.mark.timeout(1800)
class TestTrustStateMachineLong(TrustMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = LONG


# Three more shards of the long run, so that the suite explores 2,100 examples in all (100 quick,
# 4 x 500 long) while pytest-xdist spreads the shards over both cores of a CI machine.
@pytest.mark.slow
@pytest.mark.timeout(1800)
class TestTrustStateMachineLong2(TrustMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = LONG


@pytest.mark.slow
@pytest.mark.timeout(1800)
class TestTrustStateMachineLong3(TrustMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = LONG


@pytest.mark.slow
@pytest.mark.timeout(1800)
class TestTrustStateMachineLong4(TrustMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = LONG


# -- the memory app's switches the machine relies on --------------------------------------------


async def test_memory_app_automation_rewrites_what_was_written_and_the_write_returns_it() -> None:
    from syncd.connector import WriteItem
    from syncd.testing.memory import MemoryApp, MemoryConnector

    app = MemoryApp("c", rewrite=_promote_leads)
    conn = MemoryConnector.over(app)
    [created] = await conn.create(
        OBJ, [WriteItem(key="k1", fields={"email": "x@example.com", "stage": "lead"})]
    )
    assert created.record is not None
    assert created.record.fields["stage"] == "mql"
    assert app.live(OBJ)[created.record.id]["stage"] == "mql"
    app.edit(OBJ, created.record.id, {"stage": "lead"})  # a person's edit: no automation
    assert app.live(OBJ)[created.record.id]["stage"] == "lead"


async def test_memory_app_hard_deletes_leave_no_tombstone_and_show_in_the_id_listing() -> None:
    from syncd.testing.memory import MemoryApp, MemoryConnector

    app = MemoryApp("a", hard_deletes=True, id_listing=True)
    keep, gone = app.seed(OBJ, {"email": "k@example.com"}), app.seed(OBJ, {"email": "g@example.com"})
    conn = MemoryConnector.over(app)
    assert (conn.capabilities.tombstones, conn.capabilities.id_listing) == (False, True)
    cursor = None
    async for page in conn.read_changes(OBJ, None):
        cursor = page.cursor
    app.remove(OBJ, gone)
    changed = [r async for page in conn.read_changes(OBJ, cursor) for r in page.records]
    assert changed == []
    assert await conn.get(OBJ, [gone]) == []
    assert await conn.list_ids(OBJ) == [keep]
