"""Every change-log row says why in a machine-readable code, so reports never parse prose."""

from __future__ import annotations

from pathlib import Path

from syncd.engine import ReasonCode
from syncd.runner import Runner
from syncd.store import AsyncStore

from .world import OBJ, World, b_person, person


def _id(w: World, app: str, email: str) -> str:
    return w.by_email(app)[email]["_id"]


async def test_every_change_of_a_realistic_sync_has_a_code_other_than_other(tmp_path: Path) -> None:
    w = World(tmp_path, extra='initial_conflict = "review"')
    for i in range(6):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com", f"Person {i}", tags=["x"], subscribed=True))
    w.apps["b"].seed(OBJ, b_person("bea@example.com", "Bea"))
    # One person both a and c hold, under two names: linked by key, the names left for review.
    w.apps["a"].seed(OBJ, person("cy@example.com", "Cy"))
    w.apps["c"].seed(OBJ, person("cy@example.com", "Cyrus"))
    await w.settle()
    # An edit, a conflict (two apps edit one field differently), a set merge, an unsubscribe,
    # a delete, and a second record with a key another record of the app already holds.
    w.apps["a"].edit(OBJ, _id(w, "a", "p0@example.com"), {"name": "Edited in a"})
    w.apps["b"].edit(OBJ, _id(w, "b", "p1@example.com"), {"props": {"full_name": "From b"}})
    w.apps["c"].edit(OBJ, _id(w, "c", "p1@example.com"), {"name": "From c"})
    w.apps["c"].edit(OBJ, _id(w, "c", "p2@example.com"), {"tags": ["x", "y"]})
    w.apps["c"].edit(OBJ, _id(w, "c", "p3@example.com"), {"subscribed": False})
    w.apps["a"].remove(OBJ, _id(w, "a", "p4@example.com"))
    w.apps["b"].seed(OBJ, b_person("p5@example.com", "Twin"))
    await w.settle()
    # A person settles the review conflict.
    assert [c["kind"] for c in w.conflicts()].count("identity") == 1
    (review,) = [c for c in w.conflicts() if c["kind"] == "field"]
    store = await AsyncStore(w.db).open()
    try:
        runner = Runner(store, [w.mapping], w.connectors(), retry_base=0.0)
        await runner.resolve_conflict(review["id"], take="a")
    finally:
        await store.close()
    await w.settle()

    rows = w.changelog()
    codes = {row["code"] for row in rows}
    assert [row for row in rows if row["code"] in (None, ReasonCode.OTHER)] == []
    assert codes <= {code.value for code in ReasonCode}
    # The sync above did each of these at least once.
    assert {
        "new_record",
        "created",
        "linked",
        "changed",
        "written",
        "conflict",
        "merged",
        "unsubscribed",
        "remote_deleted",
        "deleted",
        "identity",
        "resolved",
    } <= codes
