"""Deletes the mass-delete guard holds back: recorded with evidence, then approved or rejected.

App ``a`` loses most of its records at once (hard deletes, so only a complete listing can tell);
``b`` and ``c`` hold copies. The guard must hold the deletes, keep one open hold per app, and do
exactly what a person decided: delete the still-missing records once, or keep them quietly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.engine import ReasonCode
from syncd.errors import HoldDecided, HoldNotFound
from syncd.store import HeldDeleteRow
from syncd.sync.ingest import HOLD_SAMPLE
from syncd.sync.operations import decide_held_delete, held_deletes

from .world import OBJ, World, person


async def _world(tmp_path: Path, n: int = 10) -> World:
    w = World(tmp_path)
    w.apps["a"].hard_deletes = True
    for i in range(n):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com"))
    await w.settle()
    assert len(w.records("b")) == n
    return w


def _drop(w: World, emails: list[str]) -> None:
    ids = {e: r["_id"] for e, r in w.by_email("a").items()}
    for email in emails:
        w.apps["a"].remove(OBJ, ids[email])


def _holds(w: World) -> list[HeldDeleteRow]:
    store = w.store()
    try:
        return held_deletes(store)
    finally:
        store.close()


def _decide(w: World, hold_id: int, approve: bool, who: str = "ada", why: str = "checked") -> HeldDeleteRow:
    store = w.store()
    try:
        return decide_held_delete(store, hold_id, approve, who, why)
    finally:
        store.close()


EIGHT = [f"p{i}@example.com" for i in range(2, 10)]


async def test_listing_that_lost_most_records_is_held_with_its_evidence(tmp_path: Path) -> None:
    w = await _world(tmp_path)
    _drop(w, EIGHT)
    stats = await w.cycle(full=True)
    assert stats.delete_guard
    assert "held as #" in stats.delete_guard[0]
    assert len(w.records("b")) == 10
    assert len(w.records("c")) == 10
    [hold] = _holds(w)
    assert (hold["sync"], hold["app"], hold["status"]) == ("people", "a", "held")
    assert (hold["linked"], hold["missing"], hold["trips"]) == (10, 8, 1)
    assert sorted(s["key"] for s in hold["sample"]) == EIGHT
    assert all(s["remote_id"] and s["entity_id"] for s in hold["sample"])
    guard = [c for c in w.changelog() if c["code"] == ReasonCode.MASS_DELETE_GUARD]
    assert guard
    assert guard[-1]["detail"] == {"hold": hold["id"]}

    # Tripping again updates the one open hold of the app.
    await w.cycle(full=True)
    [again] = _holds(w)
    assert (again["id"], again["trips"], again["status"]) == (hold["id"], 2, "held")


async def test_evidence_sample_is_bounded_but_every_missing_record_is_remembered(tmp_path: Path) -> None:
    w = await _world(tmp_path, n=HOLD_SAMPLE + 10)
    gone = [f"p{i}@example.com" for i in range(1, HOLD_SAMPLE + 10)]
    _drop(w, gone)
    await w.cycle(full=True)
    [hold] = _holds(w)
    assert hold["missing"] == len(gone)
    assert len(hold["sample"]) == HOLD_SAMPLE
    store = w.store()
    try:
        assert len(store.held_delete_records(hold["id"])) == len(gone)
    finally:
        store.close()


async def test_approved_hold_deletes_the_still_missing_records_once_in_the_other_apps(tmp_path: Path) -> None:
    w = await _world(tmp_path)
    _drop(w, EIGHT)
    await w.cycle(full=True)
    [hold] = _holds(w)
    decided = _decide(w, hold["id"], True, "ada", "the CRM export was cleaned up on purpose")
    assert (decided["status"], decided["decided_by"]) == ("approved", "ada")
    # One of the eight comes back before the next listing: it is not deleted.
    w.apps["a"].seed(OBJ, person("p9@example.com"))
    stats = await w.settle(full=True)
    assert not stats.delete_guard
    assert sorted(w.by_email("b")) == ["p0@example.com", "p1@example.com", "p9@example.com"]
    assert sorted(w.by_email("c")) == ["p0@example.com", "p1@example.com", "p9@example.com"]
    [done] = _holds(w)
    assert done["status"] == "applied"
    assert done["applied_at"]
    log = w.changelog()
    [approval] = [c for c in log if c["code"] == ReasonCode.DELETES_APPROVED and c["detail"].get("by")]
    assert approval["detail"] == {
        "hold": hold["id"],
        "by": "ada",
        "why": "the CRM export was cleaned up on purpose",
    }
    assert "approved by ada" in approval["reason"]
    assert any(c["code"] == ReasonCode.MISSING and f"hold #{hold['id']}" in c["reason"] for c in log)


async def test_approval_does_not_cover_a_listing_missing_more_records(tmp_path: Path) -> None:
    w = await _world(tmp_path)
    _drop(w, EIGHT)
    await w.cycle(full=True)
    [hold] = _holds(w)
    _decide(w, hold["id"], True)
    _drop(w, ["p1@example.com"])
    stats = await w.cycle(full=True)
    assert stats.delete_guard
    assert len(w.records("b")) == 10
    newest, approved = _holds(w)
    assert (newest["status"], newest["missing"]) == ("held", 9)
    assert approved["id"] == hold["id"]
    assert approved["status"] == "approved"


async def test_rejected_hold_keeps_the_records_and_stops_alerting(tmp_path: Path) -> None:
    w = await _world(tmp_path)
    _drop(w, EIGHT)
    await w.cycle(full=True)
    [hold] = _holds(w)
    decided = _decide(w, hold["id"], False, "bob", "a partial export, not real deletes")
    assert decided["status"] == "rejected"
    assert decided["why"] == "a partial export, not real deletes"
    stats = await w.cycle(full=True)
    assert not stats.delete_guard
    assert len(w.records("b")) == 10
    assert len(w.records("c")) == 10
    assert [h["id"] for h in _holds(w)] == [hold["id"]]
    assert any(c["code"] == ReasonCode.DELETES_REJECTED for c in w.changelog())
    # One more record goes (a single delete, under the threshold): it alone is deleted.
    _drop(w, ["p1@example.com"])
    stats = await w.cycle(full=True)
    assert not stats.delete_guard
    assert "p1@example.com" not in w.by_email("b")
    assert len(w.records("b")) == 9


async def test_rejection_does_not_silence_a_later_trip_over_other_records(tmp_path: Path) -> None:
    w = await _world(tmp_path, n=20)
    first = [f"p{i}@example.com" for i in range(8, 20)]
    _drop(w, first)
    await w.cycle(full=True)
    [hold] = _holds(w)
    _decide(w, hold["id"], False)
    second = [f"p{i}@example.com" for i in range(8)]  # every record it still had: a trip again
    _drop(w, second)
    stats = await w.cycle(full=True)
    assert stats.delete_guard
    newest, rejected = _holds(w)
    assert (newest["status"], newest["missing"]) == ("held", len(second))
    assert rejected["status"] == "rejected"
    assert len(w.records("b")) == 20


async def test_deciding_a_missing_or_decided_hold_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    w = await _world(tmp_path)
    _drop(w, EIGHT)
    await w.cycle(full=True)
    [hold] = _holds(w)
    with pytest.raises(HoldNotFound):
        _decide(w, hold["id"] + 100, True)
    _decide(w, hold["id"], False)
    with pytest.raises(HoldDecided, match="already rejected"):
        _decide(w, hold["id"], True)
    assert _holds(w)[0]["status"] == "rejected"
    assert len([c for c in w.changelog() if c["code"] == ReasonCode.DELETES_REJECTED]) == 1


async def test_hold_is_cleared_when_the_records_come_back(tmp_path: Path) -> None:
    w = await _world(tmp_path)
    _drop(w, EIGHT)
    await w.cycle(full=True)
    for email in EIGHT:
        w.apps["a"].seed(OBJ, person(email))
    stats = await w.cycle(full=True)
    assert not stats.delete_guard
    [hold] = _holds(w)
    assert hold["status"] == "cleared"
