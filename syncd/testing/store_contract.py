"""The store contract suite: what every ``StateStore`` backend must do, the same way.

Like ``ConnectorConformance`` for connectors, a backend's tests subclass ``StoreContract`` and
provide two fixtures: ``location`` (where a fresh, empty state lives: a file path, a URL) and
``store`` (a ``StateStore`` opened on it, closed after the test)::

    class TestMyBackend(StoreContract):
        @pytest.fixture
        def location(self, tmp_path): ...

        @pytest.fixture
        def store(self, location):
            s = connect(location)
            yield s
            s.close()

Every method of the interface is exercised; results are compared as values, so two backends
agree on ordering, upserts and the JSON forms of stored values.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from syncd.engine.model import Candidate, Change, Conflict, Link, ReasonCode
from syncd.store import StateStore, connect
from syncd.store.db import TABLES

NESTED: dict[str, Any] = {
    "name": "Zoë Ångström 東京 🙂",
    "big": 2**70,
    "negative": -(2**65),
    "float": 0.1,
    "nested": {"list": [1, "two", None, {"deep": [True, False]}], "empty": {}},
    "quote": 'it\'s "quoted" \\ and\nnew line',
}


def _intent(key: str, entity_id: int, *, app: str = "crm", op: str = "update", remote_id: str = "r1") -> Any:
    return (key, "people", app, "contact", op, entity_id, remote_id, {"email": key}, {"p": [1]}, "v1")


class StoreContract:
    """The contract; subclasses provide the ``location`` and ``store`` fixtures."""

    @pytest.fixture
    def location(self) -> Any:
        raise NotImplementedError("a backend's test class provides the location fixture")

    @pytest.fixture
    def store(self, location: Any) -> Any:
        raise NotImplementedError("a backend's test class provides the store fixture")

    # -- entities ------------------------------------------------------------------------------

    def test_entity_values_round_trip_exactly(self, store: StateStore) -> None:
        e = store.new_entity("people", "zoë@example.com")
        e.values = dict(NESTED)
        e.provenance = {"name": {"app": "crm", "at": "2026-01-01T00:00:00Z"}}
        e.excluded = ["crm"]
        e.state = "deleted"
        store.save_entities([e])
        got = store.entities([e.id])[e.id]
        assert got == e
        assert isinstance(got.values["big"], int)
        assert store.entities_by_key("people", ["zoë@example.com"])["zoë@example.com"] == e
        assert store.find_entity("people", "zoë@example.com") == e
        assert store.find_entity(None, str(e.id)) == e
        assert store.find_entity("people", "nobody") is None
        assert store.count_entities("people") == {"deleted": 1}

    def test_provenance_round_trips_whether_one_read_or_many_gave_the_values(self, store: StateStore) -> None:
        one_read = {"app": "crm", "at": "2026-01-01T00:00:00Z", "run": 3}
        shapes: list[dict[str, dict[str, Any]]] = [
            {},
            {"a": dict(one_read), "b": dict(one_read)},
            {
                "a": dict(one_read),
                "b": {**one_read, "app": "mail"},
                "c": {"app": "admin", "at": "t", "run": None},
            },
            {"a": {**one_read, "prev": NESTED["nested"], "flips": 2}, "b": dict(one_read)},
            {"a": dict(one_read), "gone": dict(one_read)},  # a field no longer among the values
            {"a": {"app": "crm"}},
        ]
        for provenance in shapes:
            e = store.new_entity("people", None)
            e.values = {"a": 1, "b": None, "c": [2]}
            e.provenance = provenance
            store.save_entities([e])
            got = store.entities([e.id])[e.id]
            assert got.provenance == provenance
            assert got == e

    def test_natural_key_is_unique_per_sync(self, store: StateStore) -> None:
        store.new_entity("people", "a@x")
        store.new_entity("other", "a@x")
        store.new_entity("people", None)
        store.new_entity("people", None)
        with pytest.raises(Exception, match=r"(?i)unique"):
            store.run(lambda s: s.new_entity("people", "a@x"))
        assert store.count_entities("people") == {"active": 3}

    def test_dirty_ids_in_id_order_after_a_cursor(self, store: StateStore) -> None:
        ids = [store.new_entity("people", f"k{i}").id for i in range(5)]
        store.mark_dirty([ids[3], ids[1], ids[4]])
        assert store.dirty_ids("people", 10) == [ids[1], ids[3], ids[4]]
        assert store.dirty_ids("people", 1, after=ids[1]) == [ids[3]]
        store.save_entities([store.entities([ids[3]])[ids[3]]], dirty=False)
        assert store.dirty_ids("people", 10) == [ids[1], ids[4]]

    # -- links ---------------------------------------------------------------------------------

    def test_links_round_trip_and_lookups(self, store: StateStore) -> None:
        e = store.new_entity("people", "a@x")
        run = store.begin_run("sync")
        link = Link(None, e.id, "crm", "r-1", baseline=dict(NESTED), version="7", remote_updated_at="t1")
        link.coerced = {"phone": ["+1 555"]}
        link.alias = "alias-1"
        store.save_links("people", [link], run_id=run)
        assert link.id is not None
        assert store.links_by_remote("people", "crm", ["r-1", "r-x"]) == {"r-1": link}
        assert store.links_by_alias("people", "crm", ["alias-1"]) == {"alias-1": link}
        assert store.links_of([e.id]) == {e.id: {"crm": link}}
        assert store.app_links([e.id], "crm") == {e.id: link}
        assert store.app_links([e.id], "mail") == {}
        assert store.count_links("people", "crm") == 1
        link.baseline = {"name": "changed"}
        link.remote_id = "r-2"
        store.save_links("people", [link])
        assert store.links_by_remote("people", "crm", ["r-2"])["r-2"].baseline == {"name": "changed"}
        store.drop_links([link.id])
        assert store.links_of([e.id]) == {}

    def test_a_baseline_equal_to_the_entitys_values_keeps_its_own_value_when_they_change(
        self, store: StateStore
    ) -> None:
        e, other = store.new_entity("people", "a@x"), store.new_entity("people", "b@x")
        e.values = {"email": "a@x", "name": NESTED["name"], "big": 2**70}
        other.values = {"email": "b@x"}
        store.save_entities([e, other])
        in_sync = Link(None, e.id, "crm", "r-1", baseline=dict(e.values), version="1")
        behind = Link(None, e.id, "mail", "m-1", baseline={"email": "a@x"}, version="1")
        store.save_links("people", [in_sync, behind])
        assert store.links_of([e.id]) == {e.id: {"crm": in_sync, "mail": behind}}
        before = dict(e.values)
        e.values["name"] = "Changed"
        store.save_entities([e])  # the record in crm still holds what it held
        assert store.links_by_remote("people", "crm", ["r-1"])["r-1"].baseline == before
        assert store.app_links([e.id], "mail")[e.id].baseline == {"email": "a@x"}
        in_sync.baseline = dict(e.values)
        store.save_links("people", [in_sync])
        e.values = {}
        store.save_entities([e])
        assert store.links_of([e.id])[e.id]["crm"].baseline == {**before, "name": "Changed"}
        in_sync.entity_id = other.id  # the record now belongs to another entity
        in_sync.baseline = {"email": "b@x"}
        store.save_links("people", [in_sync])
        other.values = {"email": "b@x", "name": "B"}
        store.save_entities([other])
        assert store.links_of([other.id])[other.id]["crm"].baseline == {"email": "b@x"}
        assert store.unseen_links("people", "crm", 10**6, 10)[0].baseline == {"email": "b@x"}

    def test_rows_of_a_new_entitys_first_run_are_one_stored_row_and_read_back_in_order(
        self, store: StateStore
    ) -> None:
        a, b = store.new_entity("people", "a"), store.new_entity("people", "b")
        run = store.begin_run("cycle")
        values = {"email": "a", "tags": [2**70]}
        store.log_changes(
            "people",
            [
                Change(a.id, "*", None, values, "crm", "new record in crm", code=ReasonCode.NEW_RECORD),
                Change(
                    b.id, "*", None, {"email": "b"}, "crm", "new record in crm", code=ReasonCode.NEW_RECORD
                ),
                Change(
                    a.id,
                    "*",
                    None,
                    "m-1",
                    "mail",
                    "linked existing mail record by key",
                    code=ReasonCode.LINKED,
                ),
            ],
            run,
        )
        store.log_changes(
            "people",
            [
                Change(a.id, "phone", None, "+1", "mail", "written to mail", code=ReasonCode.WRITTEN),
                Change(
                    b.id,
                    "*",
                    None,
                    "m-2",
                    "mail",
                    "created in mail",
                    detail={"n": 1},
                    code=ReasonCode.CREATED,
                ),
                Change(b.id, "email", "b", "c", "crm", "changed in crm", code=ReasonCode.CHANGED),
                Change(b.id, "*", None, "s-2", "shop", "created in shop", code=ReasonCode.CREATED),
            ],
            run,
        )
        # A later run's create is a row of its own.
        store.log_changes(
            "people",
            [Change(a.id, "*", None, "s-1", "shop", "created in shop", code=ReasonCode.CREATED)],
            store.begin_run("cycle"),
        )
        assert store.count_rows("changelog") == 5
        history = [
            (r["code"], r["app"], r["field"], r["new"], r["detail"]) for r in store.changelog(entity_id=a.id)
        ]
        assert history == [
            ("created", "shop", "*", "s-1", None),
            ("written", "mail", "phone", "+1", None),
            ("linked", "mail", "*", "m-1", None),
            ("new_record", "crm", "*", values, None),
        ]
        rows = store.changelog(entity_id=b.id)
        assert [(r["code"], r["app"], r["detail"]) for r in rows] == [
            ("created", "shop", None),
            ("changed", "crm", None),
            ("created", "mail", {"n": 1}),
            ("new_record", "crm", None),
        ]
        assert all(r["run_id"] == run and r["sync"] == "people" for r in rows[1:])
        assert store.count_drift(run, "crm") == 1
        assert len(store.changelog(limit=100)) == 8

    def test_a_follower_that_read_a_new_record_sees_what_is_folded_into_it_later(
        self, store: StateStore
    ) -> None:
        a, b = store.new_entity("people", "a"), store.new_entity("people", "b")
        run = store.begin_run("cycle")
        store.log_changes(
            "people",
            [Change(a.id, "*", None, {"email": "a"}, "crm", "new record in crm", code=ReasonCode.NEW_RECORD)],
            run,
        )
        seen, after = store.changes_after(0)
        assert [(r["code"], r["app"]) for r in seen] == [("new_record", "crm")]
        assert after == store.changelog_position()
        anchor = seen[0]["id"]
        store.log_changes(
            "people",
            [Change(a.id, "*", None, "m-1", "mail", "created in mail", code=ReasonCode.CREATED)],
            run,
        )
        assert store.count_rows("changelog") == 1  # folded, not a row of its own
        news, after2 = store.changes_after(after)
        assert [(r["code"], r["app"], r["id"]) for r in news] == [("created", "mail", anchor)]
        assert news[0]["seq"] > after
        assert after2 > after
        # The id stays what references hold: history and paging by id read the row whole.
        assert [r["code"] for r in store.changelog(entity_id=a.id)] == ["created", "new_record"]
        assert [r["code"] for r in store.changelog(before=anchor + 1)] == ["created", "new_record"]
        # A new row and a second fold: each comes once, in the order they were written.
        store.log_changes(
            "people",
            [Change(b.id, "email", "x", "b", "crm", "changed in crm", code=ReasonCode.CHANGED)],
            run,
        )
        store.log_changes(
            "people",
            [Change(a.id, "phone", None, "+1", "mail", "written to mail", code=ReasonCode.WRITTEN)],
            run,
        )
        news, after3 = store.changes_after(after2)
        assert [(r["code"], r["entity_id"]) for r in news] == [("changed", b.id), ("written", a.id)]
        assert store.changes_after(after3) == ([], after3)
        # One who starts over sees every entry once, oldest first.
        everything, _ = store.changes_after(0)
        assert [r["code"] for r in everything] == ["new_record", "created", "changed", "written"]

    def test_change_log_positions_never_go_back_even_when_every_row_is_pruned(
        self, store: StateStore
    ) -> None:
        a = store.new_entity("people", "a")
        run = store.begin_run("cycle")
        store.log_changes(
            "people",
            [Change(a.id, "*", None, {"email": "a"}, "crm", "new record in crm", code=ReasonCode.NEW_RECORD)],
            run,
        )
        store.log_changes(
            "people",
            [Change(a.id, "*", None, "m-1", "mail", "created in mail", code=ReasonCode.CREATED)],
            run,
        )
        _, after = store.changes_after(0)
        assert store.prune_changelog("9999") == 1
        assert store.changelog_position() >= after
        store.log_changes(
            "people", [Change(a.id, "name", None, "A", "crm", "changed in crm", code=ReasonCode.CHANGED)], run
        )
        news, _ = store.changes_after(after)
        assert [r["code"] for r in news] == ["changed"]

    def test_following_in_small_pages_misses_no_folded_entry(self, store: StateStore) -> None:
        run = store.begin_run("cycle")
        entities = [store.new_entity("people", f"p{n}") for n in range(6)]
        for e in entities:
            store.log_changes(
                "people",
                [
                    Change(
                        e.id, "*", None, {"n": e.id}, "crm", "new record in crm", code=ReasonCode.NEW_RECORD
                    )
                ],
                run,
            )
        _, after = store.changes_after(0)
        for e in entities[::-1]:  # older rows folded into after newer ones
            store.log_changes(
                "people",
                [Change(e.id, "*", None, f"m-{e.id}", "mail", "created in mail", code=ReasonCode.CREATED)],
                run,
            )
            store.log_changes(
                "people",
                [Change(e.id, "name", None, "x", "crm", "changed in crm", code=ReasonCode.CHANGED)],
                run,
            )
        got: list[tuple[str, int | None]] = []
        while True:
            page, upto = store.changes_after(after, 2)
            got += [(str(r["code"]), r["entity_id"]) for r in page]
            if upto == after:
                break
            after = upto
        expected = [(code, e.id) for e in entities[::-1] for code in ("created", "changed")]
        assert got == expected

    def test_one_link_per_remote_record(self, store: StateStore) -> None:
        a, b = store.new_entity("people", "a"), store.new_entity("people", "b")
        store.save_links("people", [Link(None, a.id, "crm", "r-1")])
        with pytest.raises(Exception, match=r"(?i)unique"):
            store.run(lambda s: s.save_links("people", [Link(None, b.id, "crm", "r-1")]))

    def test_seen_run_only_grows_and_unseen_links_are_listed(self, store: StateStore) -> None:
        ids = [store.new_entity("people", f"k{i}").id for i in range(3)]
        links = [Link(None, i, "crm", f"r{n}") for n, i in enumerate(ids)]
        store.save_links("people", links, run_id=1)
        store.mark_seen("people", "crm", ["r0", "r1"], 3)
        store.mark_seen("people", "crm", ["r1"], 2)  # an older run does not lower it
        store.save_links("people", [links[0]], run_id=None)
        assert [x.remote_id for x in store.unseen_links("people", "crm", 3, 10)] == ["r2"]
        assert store.count_unseen("people", "crm", 3) == 1
        assert store.count_unseen("people", "crm", 4) == 3
        assert [x.remote_id for x in store.unseen_links("people", "crm", 4, 2)] == ["r0", "r1"]

    def test_links_listed_are_counted_by_remote_id_within_one_app(self, store: StateStore) -> None:
        ids = [store.new_entity("people", f"k{i}").id for i in range(4)]
        store.save_links("people", [Link(None, i, "crm", f"r{n}") for n, i in enumerate(ids[:3])])
        store.save_links("people", [Link(None, ids[3], "mail", "r0")])
        assert store.count_links_listed("people", "crm", {"r0", "r2", "r9"}) == 2
        assert store.count_links_listed("people", "crm", ["r0", "r1", "r2"]) == 3
        assert store.count_links_listed("people", "crm", set()) == 0
        assert store.count_links_listed("people", "mail", {"r0", "r1"}) == 1
        assert store.count_links_listed("others", "crm", {"r0"}) == 0

    # -- runs and cursors ----------------------------------------------------------------------

    def test_runs_cursors_and_pruning(self, store: StateStore) -> None:
        assert store.latest_run() == 0
        first = store.begin_run("full:crm")
        second = store.begin_run("poll")
        store.finish_run(first, {"read": 3})
        assert store.latest_run() == second
        row = store.last_run("full:crm")
        assert row is not None
        assert row["id"] == first
        assert row["finished_at"] is not None
        assert store.last_run("nothing") is None
        third = store.begin_run("poll")
        assert store.prune_runs("9999") == 1  # the second: neither the newest nor a kind's latest
        assert store.last_run("poll") is not None
        assert store.latest_run() == third
        assert store.get_cursor("people", "crm") is None
        store.set_cursor("people", "crm", {"after": "x", "n": 2**66})
        store.set_cursor("people", "crm", {"after": "y", "n": 2**66})
        store.set_cursor("people", "a-app", None)
        assert store.get_cursor("people", "crm") == {"after": "y", "n": 2**66}
        assert [(c["sync"], c["app"]) for c in store.cursors()] == [("people", "a-app"), ("people", "crm")]

    # -- transactions --------------------------------------------------------------------------

    def test_transaction_rolls_back_everything_on_an_exception(self, store: StateStore) -> None:
        class Boom(Exception):
            pass

        def unit() -> None:
            with store.transaction():
                store.new_entity("people", "a")
                with store.transaction():
                    store.new_entity("people", "b")
                raise Boom

        with pytest.raises(Boom):
            unit()
        assert store.count_entities("people") == {}

    def test_nested_transactions_join_the_outer_one(self, store: StateStore) -> None:
        with store.transaction():
            with store.transaction():
                e = store.new_entity("people", "a")
            with contextlib.suppress(KeyError), store.transaction():
                raise KeyError("inner fails, outer goes on")
            store.mark_dirty([e.id])
        assert store.dirty_ids("people", 10) == [e.id]

    def test_run_returns_the_units_result(self, store: StateStore) -> None:
        def unit(s: StateStore, key: str, *, dirty: bool) -> int:
            e = s.new_entity("people", key)
            s.mark_dirty([e.id], dirty)
            return e.id

        eid = store.run(unit, "a", dirty=True)
        assert store.dirty_ids("people", 10) == [eid]

    # -- change log ----------------------------------------------------------------------------

    def test_change_log_codes_order_paging_and_drift(self, store: StateStore) -> None:
        a, b = store.new_entity("people", "a"), store.new_entity("people", "b")
        run = store.begin_run("full:crm")
        changes = [
            Change(a.id, "name", None, NESTED["name"], "crm", "changed in crm", code=ReasonCode.CHANGED),
            Change(
                a.id,
                "tags",
                [1],
                [1, 2],
                "crm",
                "set merge of crm",
                detail={"why": [2**70]},
                code=ReasonCode.MERGED,
            ),
            Change(b.id, "email", "x", None, "crm", "anything", code=ReasonCode.MISSING),
            Change(b.id, "email", "x", "y", "mail", "changed in mail", code=ReasonCode.CHANGED),
            Change(b.id, "note", "x", "y", "crm", "typed by a person", code=ReasonCode.RESOLVED),
        ]
        assert store.log_changes("people", changes, run) == 5
        rows = store.changelog(limit=10)
        assert [r["code"] for r in rows] == ["resolved", "changed", "missing", "merged", "changed"]
        assert rows[-1]["new"] == NESTED["name"]
        assert rows[-1]["detail"] is None
        assert rows[-2]["detail"] == {"why": [2**70]}
        assert rows[-2]["old"] == [1]
        assert [r["field"] for r in store.changelog(entity_id=a.id)] == ["tags", "name"]
        assert [r["id"] for r in store.changelog(before=rows[1]["id"], limit=2)] == [
            r["id"] for r in rows[2:4]
        ]
        assert store.changelog(sync="other") == []
        assert store.count_drift(run, "crm") == 2
        assert store.count_drift(run, "mail") == 1
        assert store.prune_changelog("0000") == 0
        assert store.prune_changelog("9999") == 5

    def test_pruning_the_change_log_keeps_rows_from_the_cutoff_on(self, store: StateStore) -> None:
        a = store.new_entity("people", "a")
        for n in range(3):
            store.log_changes(
                "people",
                [Change(a.id, f"f{n}", None, n, "crm", "changed in crm", code=ReasonCode.CHANGED)],
                None,
            )
        rows = store.changelog(limit=10)[::-1]
        cutoff = rows[2]["at"]
        older = [r["field"] for r in rows if r["at"] < cutoff]  # stamps may tie within a microsecond
        assert store.prune_changelog(cutoff) == len(older)
        assert [r["field"] for r in store.changelog(limit=10)][::-1] == [
            r["field"] for r in rows if r["field"] not in older
        ]
        assert store.prune_changelog(cutoff) == 0

    # -- conflicts -----------------------------------------------------------------------------

    def test_open_conflict_is_one_per_field_and_updated_in_place(self, store: StateStore) -> None:
        e = store.new_entity("people", "a@x")
        cands = [Candidate("crm", NESTED["nested"], "t1"), Candidate("mail", "other", None)]
        store.add_conflicts("people", [Conflict(e.id, "name", cands, "manual", note="why")])
        store.add_conflicts("people", [Conflict(e.id, "name", cands[:1], "manual")])
        store.add_conflicts("people", [Conflict(e.id, "phone", cands, "newest", status="auto", winner="crm")])
        open_ = store.conflicts()
        assert len(open_) == 1
        row = open_[0]
        assert row["candidates"] == [{"app": "crm", "value": NESTED["nested"], "at": "t1"}]
        assert row["note"] == "why"
        assert row["entity_key"] == "a@x"
        assert row["kind"] == "field"
        assert [r["field"] for r in store.conflicts(status=None)] == ["name", "phone"]
        assert store.conflicts(status="auto")[0]["winner"] == "crm"
        assert store.parked_fields([e.id]) == {e.id: {"name"}}
        assert store.count_conflicts() == 1
        assert store.count_conflicts("auto") == 1

    def test_conflict_candidates_and_close(self, store: StateStore) -> None:
        e = store.new_entity("people", "a@x")
        store.add_conflicts("people", [Conflict(e.id, "name", [Candidate("crm", "A", "t1")], "manual")])
        cid = store.conflicts()[0]["id"]
        store.update_parked(e.id, "name", "crm", "A2", "t2")
        assert store.add_conflict_candidate(e.id, "name", "mail", "B") is True
        assert store.add_conflict_candidate(e.id, "name", "mail", "B") is False
        row = store.conflict(cid)
        assert row is not None
        assert row["candidates"] == [
            {"app": "crm", "value": "A2", "at": "t2"},
            {"app": "mail", "value": "B", "at": None},
        ]
        store.close_conflict(cid, "mail", {"value": "B", "by": "admin"})
        closed = store.conflict(cid)
        assert closed is not None
        assert closed["status"] == "resolved"
        assert closed["resolution"] == {"value": "B", "by": "admin"}
        assert closed["resolved_at"]
        assert store.conflicts() == []
        assert store.parked_fields([e.id]) == {}
        assert store.conflict(cid + 1000) is None
        # a new open conflict on the same field is allowed once the old one is closed
        store.add_conflicts("people", [Conflict(e.id, "name", [], "manual")])
        assert store.count_conflicts() == 1

    # -- outbox --------------------------------------------------------------------------------

    # -- deletes held by the mass-delete guard -------------------------------------------------

    def test_one_open_hold_per_app_updated_by_each_trip_then_decided_once(self, store: StateStore) -> None:
        sample = [{"entity_id": 1, "key": "zoë@example.com", "remote_id": "r1"}]
        first = store.hold_deletes(
            "people", "crm", linked=10, missing=9, sample=sample, records=["r3", "r1"], run_id=4
        )
        other = store.hold_deletes("people", "list", linked=5, missing=5, sample=[], records=["m1"], run_id=4)
        again = store.hold_deletes(
            "people", "crm", linked=10, missing=8, sample=sample[:0], records=["r2"], run_id=5
        )
        assert again == first != other
        row = store.held_delete(first)
        assert row is not None
        assert (row["status"], row["trips"], row["linked"], row["missing"], row["run_id"]) == (
            "held",
            2,
            10,
            8,
            5,
        )
        assert row["sample"] == []
        assert row["decided_by"] is None
        assert store.held_delete_records(first) == ["r2"]
        assert [h["id"] for h in store.held_deletes(status="held", sync="people")] == [other, first]
        assert [h["id"] for h in store.held_deletes(app="crm")] == [first]

        assert store.decide_held_delete(first, "approved", "ada", "the export was cleaned up")
        assert not store.decide_held_delete(first, "rejected", "bob", "too late")  # decided once
        row = store.held_delete(first)
        assert row is not None
        assert (row["status"], row["decided_by"], row["why"]) == (
            "approved",
            "ada",
            "the export was cleaned up",
        )
        assert row["decided_at"]
        assert row["applied_at"] is None
        # Decided, the hold is no longer open: the next trip opens a new one.
        third = store.hold_deletes(
            "people", "crm", linked=10, missing=9, sample=sample, records=["r1"], run_id=6
        )
        assert third not in (first, other)
        assert store.held_delete(third)["sample"] == sample  # type: ignore[index]
        store.close_held_delete(first, "applied")
        row = store.held_delete(first)
        assert row is not None
        assert row["status"] == "applied"
        assert row["applied_at"]
        assert store.held_delete(999_999) is None
        assert store.held_delete_records(999_999) == []
        assert not store.decide_held_delete(999_999, "approved", "ada", "no such hold")

    def test_sent_creates_are_the_open_creates_claimed_at_least_once(self, store: StateStore) -> None:
        sent, waiting, other = (store.new_entity("people", k) for k in ("a", "b", "c"))
        store.enqueue([_intent("c1", sent.id, op="create", remote_id="")])
        [claimed] = store.claim("crm", None, 1)
        store.enqueue([_intent("c2", waiting.id, op="create", remote_id="")])
        store.enqueue([_intent("c3", other.id, app="mail", op="create", remote_id="")])
        found = store.sent_creates("crm", [sent.id, waiting.id, other.id])
        assert list(found) == [sent.id], "claimed, still open, of this app"
        assert found[sent.id].id == claimed.id
        assert found[sent.id].payload == {"p": [1]}
        assert found[sent.id].values == {"email": "c1"}
        store.settle(claimed.id, "done")
        assert store.sent_creates("crm", [sent.id]) == {}

    def test_enqueue_in_one_call_supersedes_in_order_and_keeps_every_distinct_write(
        self, store: StateStore
    ) -> None:
        a, b = store.new_entity("people", "a"), store.new_entity("people", "b")
        assert store.enqueue([_intent("old-a", a.id), _intent("old-b", b.id)]) == 2
        # One call: a new plan for a and b, a second write for a later in the same call, a
        # create for a (another op) and a repeated key (kept once).
        n = store.enqueue(
            [
                _intent("a1", a.id),
                _intent("b1", b.id),
                _intent("a2", a.id),
                _intent("ca", a.id, op="create", remote_id=""),
                _intent("b1", b.id),
            ]
        )
        assert n == 4, "a1 was queued, then superseded by a2"
        pending = sorted(i.key for i in store.claim("crm", None, 10))
        assert pending == ["a2", "b1", "ca"]
        many = [store.new_entity("people", f"m{i}") for i in range(50)]
        assert store.enqueue([_intent(f"m{i}", e.id) for i, e in enumerate(many)]) == 50
        assert store.enqueue([_intent(f"m{i}", e.id) for i, e in enumerate(many)]) == 0
        assert store.outbox_depth() == 3 + 50

    def test_enqueue_is_idempotent_by_key_and_supersedes_pending(self, store: StateStore) -> None:
        e = store.new_entity("people", "a")
        assert store.enqueue([_intent("k1", e.id)]) == 1
        assert store.enqueue([_intent("k1", e.id)]) == 0
        assert store.enqueue([_intent("k2", e.id)]) == 1
        first = store.intent(1)
        assert first is not None
        assert first.status == "superseded"
        assert store.outbox_depth() == 1
        assert store.pending_apps() == ["crm"]
        assert store.entity_has_open_intent(e.id, "crm")
        assert not store.entity_has_open_intent(e.id, "mail")
        assert store.sent_creates("crm", [e.id]) == {}, "an update, never claimed"
        [claimed] = store.claim("crm", None, 10)
        assert claimed.key == "k2"
        assert claimed.values == {"email": "k2"}
        assert claimed.payload == {"p": [1]}
        assert claimed.expected_version == "v1"
        assert claimed.attempts == 1
        assert store.busy_apps([e.id]) == {e.id: {"crm"}}

    def test_claim_order_op_filter_and_not_before(self, store: StateStore) -> None:
        ids = [store.new_entity("people", f"k{i}").id for i in range(4)]
        store.enqueue([_intent(f"k{i}", ids[i], op="create" if i == 2 else "update") for i in range(4)])
        first = store.claim("crm", None, 1)[0]
        assert first.key == "k0"
        assert store.retry_later(first.id, "503", "2100-01-01T00:00:00Z") is True
        assert store.next_due() == "2100-01-01T00:00:00Z"
        assert [i.key for i in store.claim("crm", "create", 10)] == ["k2"]
        assert [i.key for i in store.claim("crm", None, 10)] == ["k1", "k2", "k3"]
        later = store.claim("crm", None, 10, now="2100-01-01T00:00:01Z")
        assert [i.key for i in later] == ["k0", "k1", "k2", "k3"]
        retried = store.intent(first.id)
        assert retried is not None
        assert retried.attempts == 2
        assert retried.last_error == "503"
        assert retried.error_kind == "transient"
        assert retried.status == "inflight"

    def test_claim_takes_intents_oldest_first(self, store: StateStore) -> None:
        ids = [store.new_entity("people", f"k{i}").id for i in range(5)]
        store.enqueue([_intent(f"k{i}", ids[i]) for i in range(5)])
        assert [i.key for i in store.claim("crm", None, 2)] == ["k0", "k1"]
        # without an owner, in-flight intents (left by a crashed run) are taken again
        assert [i.key for i in store.claim("crm", None, 3)] == ["k0", "k1", "k2"]
        assert store.claim("mail", None, 3) == []

    def test_settle_dead_letters_and_counts(self, store: StateStore) -> None:
        e = store.new_entity("people", "a")
        store.enqueue([_intent("k1", e.id), _intent("k2", e.id, app="mail")])
        one, two = store.claim("crm", None, 1)[0], store.claim("mail", None, 1)[0]
        assert store.settle(one.id, "dead", "400 bad email", "permanent") is True
        assert store.settle(two.id, "done") is True
        assert store.settle(9999, "done") is False
        [dead] = store.dead_letters()
        assert dead.key == "k1"
        assert dead.values == {"email": "k1"}  # what it would have written stays for a replay
        assert dead.payload == {"p": [1]}
        done = store.intent(two.id)
        assert done is not None
        assert done.status == "done"
        assert (done.values, done.payload, done.key) == ({}, {}, "k2")  # over: only its key stays
        assert store.enqueue([_intent("k2", e.id, app="mail")]) == 0  # still idempotent by key
        assert dead.last_error == "400 bad email"
        assert dead.error_kind == "permanent"
        assert store.count_dead_letters() == 1
        assert store.outbox_depth() == 0
        assert store.pending_apps() == []
        assert store.next_due() is None

    def test_quarantined_reads(self, store: StateStore) -> None:
        e = store.new_entity("people", "a")
        items = [("r1", e.id, "unmappable"), ("r2", e.id, "unreadable")]
        assert store.quarantine_reads("people", "crm", "contact", items) == 2
        assert store.quarantine_reads("people", "crm", "contact", [("r1", e.id, "still bad")]) == 0
        assert store.has_quarantined_reads("people", "crm")
        assert not store.has_quarantined_reads("people", "mail")
        r1 = next(d for d in store.dead_letters() if d.remote_id == "r1")
        assert r1.op == "read"
        assert r1.attempts == 2
        assert r1.last_error == "still bad"
        assert store.release_quarantine("people", "crm", ["r1", "r2", "r3"]) == 2
        assert not store.has_quarantined_reads("people", "crm")
        assert store.count_dead_letters() == 0

    # -- coordination: owned intent claims (fencing) --------------------------------------------

    def test_owned_claim_is_not_taken_by_another_owner_until_it_expires(self, store: StateStore) -> None:
        e = store.new_entity("people", "a")
        store.enqueue([_intent("k1", e.id)])
        t0 = "2030-01-01T00:00:00.000000Z"
        [mine] = store.claim("crm", None, 10, now=t0, owner="d1", epoch=4, ttl=60)
        assert (mine.claimed_by, mine.claim_epoch, mine.attempts) == ("d1", 4, 1)
        assert mine.claim_expires == "2030-01-01T00:01:00.000000Z"
        assert (
            store.claim("crm", None, 10, now="2030-01-01T00:00:30.000000Z", owner="d2", epoch=1, ttl=60) == []
        )
        [again] = store.claim("crm", None, 10, now="2030-01-01T00:00:30.000000Z", owner="d1", epoch=4, ttl=60)
        assert again.attempts == 2
        [taken] = store.claim("crm", None, 10, now="2030-01-01T00:05:00.000000Z", owner="d2", epoch=1, ttl=60)
        assert (taken.claimed_by, taken.claim_epoch, taken.attempts) == ("d2", 1, 3)
        # the first owner lost it: its outcome is refused and changes nothing
        assert store.settle(mine.id, "done", owner="d1", epoch=4) is False
        assert store.retry_later(mine.id, "x", "2031", owner="d1", epoch=4) is False
        row = store.intent(mine.id)
        assert row is not None
        assert row.status == "inflight"
        assert row.claimed_by == "d2"
        assert store.settle(mine.id, "done", owner="d2", epoch=0) is False  # an old epoch of d2
        assert store.settle(mine.id, "done", owner="d2", epoch=1) is True

    def test_retry_later_by_its_owner_makes_the_intent_claimable_again(self, store: StateStore) -> None:
        e = store.new_entity("people", "a")
        store.enqueue([_intent("k1", e.id)])
        t0 = "2030-01-01T00:00:00.000000Z"
        [mine] = store.claim("crm", None, 10, now=t0, owner="d1", epoch=1, ttl=600)
        assert store.retry_later(mine.id, "429", "2030-01-01T00:00:10.000000Z", owner="d1", epoch=1)
        assert store.claim("crm", None, 10, now="2030-01-01T00:00:05.000000Z", owner="d2", ttl=60) == []
        [taken] = store.claim("crm", None, 10, now="2030-01-01T00:00:11.000000Z", owner="d2", ttl=60)
        assert taken.claimed_by == "d2"
        assert taken.attempts == 2

    # -- coordination: dirty-entity claims -------------------------------------------------------

    def test_dirty_claims_skip_live_claims_and_ack_only_unchanged_generations(
        self, store: StateStore
    ) -> None:
        ids = [store.new_entity("people", f"k{i}").id for i in range(4)]
        store.mark_dirty(ids)
        first = store.claim_dirty("people", 2, "d1", 30, now=100.0)
        assert [i for i, _ in first] == ids[:2]
        second = store.claim_dirty("people", 10, "d2", 30, now=101.0)
        assert [i for i, _ in second] == ids[2:]
        assert store.claim_dirty("people", 10, "d3", 30, now=102.0) == []
        store.mark_dirty([ids[0]])  # a newer event for the first entity
        assert store.ack_dirty(first) == 1
        assert store.dirty_ids("people", 10) == [ids[0], *ids[2:]]
        # the re-dirtied entity is claimable again at once (its claim was released)
        [(eid, gen)] = store.claim_dirty("people", 10, "d3", 30, now=103.0)
        assert eid == ids[0]
        assert gen == first[0][1] + 1
        # the claims of d2 and d3 expire: another daemon takes their entities over
        assert [i for i, _ in store.claim_dirty("people", 10, "d4", 30, now=200.0)] == [ids[0], *ids[2:]]
        assert store.ack_dirty([(eid, gen), *second]) == 3
        assert store.dirty_ids("people", 10) == []

    def test_clearing_dirty_releases_the_claim(self, store: StateStore) -> None:
        e = store.new_entity("people", "a")
        store.mark_dirty([e.id])
        assert store.claim_dirty("people", 10, "d1", 30, now=100.0) == [(e.id, 1)]
        store.mark_dirty([e.id], False)
        store.mark_dirty([e.id])
        assert store.claim_dirty("people", 10, "d2", 30, now=100.5) == [(e.id, 2)]

    # -- inbox ---------------------------------------------------------------------------------

    def test_inbox_dedupes_by_event_id_and_retries_then_gives_up(self, store: StateStore) -> None:
        events = [("e1", "contact", "r1", False), ("e2", "contact", "r2", True)]
        assert store.inbox_add("crm", events) == 2
        assert store.inbox_add("crm", events) == 0
        assert store.inbox_add("mail", [("e1", "member", "m1", False)]) == 1
        pending = store.inbox_pending()
        assert [(r["app"], r["event_id"], r["deleted"]) for r in pending] == [
            ("crm", "e1", 0),
            ("crm", "e2", 1),
            ("mail", "e1", 0),
        ]
        assert [r["app"] for r in store.inbox_pending(exclude=["crm"])] == ["mail"]
        assert store.count_inbox_pending() == 3
        e1 = pending[0]["id"]
        assert store.inbox_retry([e1], "timeout", "2100-01-01T00:00:00Z", 2) == []
        assert [r["event_id"] for r in store.inbox_pending()] == ["e2", "e1"]
        due = store.inbox_pending(now="2100-01-01T00:00:00Z")
        assert due[0]["attempts"] == 1
        assert due[0]["error"] == "timeout"
        [given_up] = store.inbox_retry([e1, 9999], "timeout", "2100-01-02T00:00:00Z", 2)
        assert given_up["event_id"] == "e1"
        assert store.count_inbox_pending() == 2
        store.inbox_done([pending[1]["id"]])
        assert store.count_inbox_pending() == 1
        assert store.prune_inbox("0000") == 0
        assert store.prune_inbox("9999") == 2

    # -- erasure -------------------------------------------------------------------------------

    def test_key_hash_is_salted_stable_and_suppressions(self, store: StateStore) -> None:
        h = store.hash_key("a@x")
        assert h == store.hash_key("a@x") != store.hash_key("b@x")
        assert len(h) == 64
        assert store.key_salt() == store.key_salt()
        assert not store.has_suppressions()
        eid = store.save_erasure(None, h, "running", {"crm": {"found": 1}})
        store.suppress(h, eid)
        store.suppress(h, eid)
        assert store.has_suppressions()
        assert store.suppressed([h, "other"]) == {h}
        assert store.save_erasure(eid, h, "done", {"crm": {"erased": 2**70}}) == eid
        [row] = store.erasures()
        assert row["status"] == "done"
        assert row["finished_at"]
        assert row["apps"] == {"crm": {"erased": 2**70}}
        assert store.erasures(status="running") == []

    def test_scrub_removes_every_trace(self, store: StateStore) -> None:
        a, b = store.new_entity("people", "a"), store.new_entity("people", "b")
        store.save_links("people", [Link(None, a.id, "crm", "ra"), Link(None, b.id, "mail", "rb")])
        store.log_changes(
            "people", [Change(a.id, "f", 1, 2, "crm", "changed in crm", code=ReasonCode.CHANGED)], None
        )
        store.add_conflicts("people", [Conflict(a.id, "f", [], "manual")])
        store.enqueue([_intent("k1", a.id), _intent("k2", b.id, app="mail", remote_id="rb")])
        store.inbox_add("mail", [("e1", "member", "rb", False)])
        counts = store.scrub([a.id], {"mail": ["rb"]})
        assert counts == {"changelog": 1, "conflicts": 1, "outbox": 2, "links": 2, "entities": 1, "inbox": 1}
        assert store.entities([a.id, b.id]).keys() == {b.id}
        assert store.links_of([a.id, b.id]) == {}
        assert store.count_inbox_pending() == 0

    # -- leases --------------------------------------------------------------------------------

    def test_lease_epochs_grow_on_each_change_of_hands(self, store: StateStore) -> None:
        row = store.take_lease("state", "a", 100.0, 10)
        assert (row["holder"], row["epoch"]) == ("a", 1)
        assert store.take_lease("state", "b", 105.0, 10)["holder"] == "a"  # still a's
        renewed = store.take_lease("state", "a", 106.0, 10)
        assert (renewed["epoch"], renewed["expires_at"]) == (1, 116.0)
        taken = store.take_lease("state", "b", 117.0, 10)
        assert (taken["holder"], taken["epoch"]) == ("b", 2)
        assert store.renew_lease("state", "a", 118.0, 10) is False
        assert store.renew_lease("state", "b", 118.0, 10, epoch=1) is False
        assert store.renew_lease("state", "b", 118.0, 10, epoch=2) is True
        store.release_lease("state", "a")  # not a's: nothing happens
        assert store.take_lease("state", "c", 119.0, 10)["holder"] == "b"
        store.release_lease("state", "b", epoch=2)
        again = store.take_lease("state", "c", 119.0, 10)
        assert (again["holder"], again["epoch"]) == ("c", 3)
        assert store.steal_lease("state", "b", "d", 120.0, 10) is False
        assert store.steal_lease("state", "c", "d", 120.0, 10) is True
        assert store.take_lease("state", "d", 121.0, 10)["epoch"] == 4

    # -- token bucket and daemon registry ------------------------------------------------------

    def test_token_bucket_grants_refills_and_says_how_long_to_wait(self, store: StateStore) -> None:
        assert store.take_tokens("hubspot", 2, 1.0, 3, 100.0) == 0.0
        assert store.take_tokens("hubspot", 1, 1.0, 3, 100.0) == 0.0
        assert store.take_tokens("hubspot", 2, 1.0, 3, 100.0) == pytest.approx(2.0)
        assert store.take_tokens("hubspot", 2, 1.0, 3, 101.0) == pytest.approx(1.0)  # nothing was taken
        assert store.take_tokens("hubspot", 2, 1.0, 3, 102.0) == 0.0
        assert store.take_tokens("hubspot", 3, 1.0, 3, 50.0) == pytest.approx(3.0)  # a clock behind adds none
        assert store.take_tokens("hubspot", 3, 1.0, 3, 1000.0) == 0.0  # refill stops at the burst
        assert store.take_tokens("hubspot", 1, 1.0, 3, 1000.0) == pytest.approx(1.0)
        assert store.take_tokens("mailchimp", 1, 1.0, 1, 0.0) == 0.0  # buckets are separate
        with pytest.raises(ValueError, match="never"):
            store.take_tokens("hubspot", 4, 1.0, 3, 2000.0)

    def test_daemon_registry_lists_live_daemons(self, store: StateStore) -> None:
        store.heartbeat("b-host:2", {"version": "1", "apps": ["crm"]}, 100.0, 30)
        store.heartbeat("a-host:1", {"version": "1"}, 100.0, 10)
        assert [d["daemon_id"] for d in store.live_daemons(105.0)] == ["a-host:1", "b-host:2"]
        live = store.live_daemons(115.0)
        assert live == [
            {
                "daemon_id": "b-host:2",
                "info": {"version": "1", "apps": ["crm"]},
                "seen_at": 100.0,
                "expires_at": 130.0,
            }
        ]
        store.heartbeat("a-host:1", {"version": "2"}, 120.0, 10)
        assert [d["info"] for d in store.live_daemons(125.0)] == [{"version": "2"}, live[0]["info"]]

    # -- health (``syncd status``) ---------------------------------------------------------------

    def test_app_health_keeps_the_last_good_and_failed_reads_and_pauses(self, store: StateStore) -> None:
        assert store.app_health() == {}
        store.record_read("crm", ok=True, complete_run=4)
        store.record_read("crm", ok=False, failure={"kind": "auth", "error": "401"}, paused="credentials")
        row = store.app_health()["crm"]
        assert row["failure"] == {"kind": "auth", "error": "401"}
        assert row["paused"] == "credentials"
        assert row["complete_run"] == 4
        assert row["last_ok_at"] is not None
        assert row["last_failed_at"] is not None
        assert row["last_failed_at"] >= row["last_ok_at"]
        store.record_read("crm", ok=True)  # a good read ends the pause, keeps the complete listing
        row = store.app_health()["crm"]
        assert row["paused"] is None
        assert row["complete_run"] == 4
        assert row["last_ok_at"] is not None
        assert row["last_ok_at"] >= str(row["last_failed_at"])
        store.record_read("shop", ok=False, failure={"kind": "transient", "error": "timeout"})
        assert list(store.app_health()) == ["crm", "shop"]
        assert store.app_health()["shop"]["last_ok_at"] is None

    def test_outbox_and_webhooks_are_counted_per_app(self, store: StateStore) -> None:
        e, f = store.new_entity("people", "a"), store.new_entity("people", "b")
        store.enqueue([_intent("k1", e.id), _intent("k2", e.id, app="shop"), _intent("k3", f.id, app="shop")])
        [dead] = store.claim("shop", None, 1)
        store.settle(dead.id, "dead", "refused", "permanent")
        assert store.outbox_by_app() == {"crm": {"pending": 1, "dead": 0}, "shop": {"pending": 1, "dead": 1}}
        assert store.last_webhooks() == {}
        store.inbox_add("crm", [("e1", "contact", "r1", False)])
        store.inbox_add("crm", [("e2", "contact", "r2", False)])
        seen = store.last_webhooks()
        assert list(seen) == ["crm"]
        assert seen["crm"] >= "2000"

    def test_budget_levels_say_how_much_of_each_burst_is_used(self, store: StateStore) -> None:
        assert store.budget_levels(100.0) == {}
        store.take_tokens("budget:crm", 3, 1.0, 4, 100.0)
        assert store.budget_levels(100.0) == {"budget:crm": pytest.approx(0.75)}
        assert store.budget_levels(102.0) == {"budget:crm": pytest.approx(0.25)}  # refilled meanwhile
        assert store.budget_levels(1000.0) == {"budget:crm": 0.0}

    def test_live_leases_leave_out_expired_and_released_ones(self, store: StateStore) -> None:
        store.take_lease("syncd-run", "me", 100.0, 10)
        store.take_lease("app:crm", "me", 100.0, 50)
        assert [(x["name"], x["holder"]) for x in store.live_leases(105.0)] == [
            ("app:crm", "me"),
            ("syncd-run", "me"),
        ]
        assert [x["name"] for x in store.live_leases(120.0)] == ["app:crm"]
        store.release_lease("app:crm", "me")
        assert store.live_leases(120.0) == []

    # -- whole tables and reopening --------------------------------------------------------------

    def test_tables_copy_rows_in_key_order(self, store: StateStore) -> None:
        e = store.new_entity("people", "a")
        store.save_links("people", [Link(None, e.id, "crm", "r1", baseline=dict(NESTED))])
        store.set_cursor("people", "crm", {"c": 1})
        assert {t: store.count_rows(t) for t in TABLES if store.count_rows(t)} == {
            "entities": 1,
            "links": 1,
            "cursors": 1,
        }
        [row] = store.read_table("links", None, 10)
        assert row["remote_id"] == "r1"
        assert store.read_table("links", row["id"], 10) == []
        assert store.read_table("cursors", None, 10)[0]["app"] == "crm"
        store.clear_tables()
        assert all(store.count_rows(t) == 0 for t in TABLES)
        store.write_rows(
            "entities",
            [
                {
                    **e.__dict__,
                    "values": "{}",
                    "provenance": "{}",
                    "excluded": "[]",
                    "dirty": 0,
                    "created_at": "t",
                    "updated_at": "t",
                    "dirty_gen": 0,
                    "dirty_claimed_by": None,
                    "dirty_claim_expires": None,
                }
            ],
        )
        assert store.new_entity("people", "b").id > e.id  # ids go on after the copied ones

    def test_state_survives_reopening(self, store: StateStore, location: Any) -> None:
        e = store.new_entity("people", "a")
        e.values = dict(NESTED)
        store.save_entities([e])
        store.close()
        again = connect(location)
        try:
            assert again.entities([e.id])[e.id] == e
        finally:
            again.close()
