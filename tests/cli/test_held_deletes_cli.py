"""Black-box: deletes held by the mass-delete guard, through ``syncd deletes`` and ``syncd sync``.

App ``a`` (a SQLite table, hard deletes) loses 80 % of its rows at once. The guard must hold the
deletes with evidence a person can read, and then do what that person decided.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .sqlworld import SqlWorld, mapping

pytestmark = pytest.mark.slow

PEOPLE = [f"p{i}@example.com" for i in range(10)]
GONE = PEOPLE[2:]  # 8 of 10: 80 %


def _world(tmp_path: Path) -> SqlWorld:
    text = mapping().replace("mass_delete_threshold = 0.9", "mass_delete_threshold = 0.5")
    world = SqlWorld(tmp_path, text)
    for email in PEOPLE:
        world.insert("a", email=email, name=email.split("@")[0])
    world.sync()
    assert len(world.rows("b")) == 10
    for email in GONE:
        world.execute("a", "DELETE FROM a WHERE email = ?", (email,))
    return world


def _trip(world: SqlWorld) -> dict[str, Any]:
    proc = world.syncd("sync", "--once", check=False)
    assert "ALERT" in proc.stderr, proc.stderr
    assert "mass-delete guard" in proc.stderr
    assert "syncd deletes list" in proc.stderr
    assert len(world.rows("b")) == 10
    [hold] = json.loads(world.syncd("deletes", "list", "--json").stdout)
    return dict(hold)


def _emails(world: SqlWorld, app: str) -> list[str]:
    return sorted(r["email"] for r in world.rows(app))


def test_listing_that_lost_80_percent_is_held_and_listed_with_its_evidence(tmp_path: Path) -> None:
    world = _world(tmp_path)
    hold = _trip(world)
    assert (hold["app"], hold["status"], hold["linked"], hold["missing"]) == ("a", "held", 10, 8)
    assert sorted(item["key"] for item in hold["sample"]) == GONE
    text = world.syncd("deletes", "list").stdout
    assert f"#{hold['id']} [held] contacts/a: 8 of 10 linked records missing" in text
    assert all(email in text for email in GONE)
    # The preview says so too, and plans no delete.
    preview = json.loads(world.syncd("plan", "--json").stdout)
    assert preview["summary"]["a"]["held_deletes"] == 8
    assert preview["summary"]["b"]["deletes"] == 0


def test_approved_deletes_are_carried_out_in_the_other_app_by_the_next_sync(tmp_path: Path) -> None:
    world = _world(tmp_path)
    hold = _trip(world)
    done = world.syncd(
        "deletes", "approve", str(hold["id"]), "--by", "ada", "--why", "old leads removed", "--yes"
    )
    assert f"approved #{hold['id']}" in done.stdout
    stats = world.sync()
    assert not stats["delete_guard"]
    assert _emails(world, "b") == PEOPLE[:2]
    assert world.syncd("deletes", "list").stdout.strip() == "no held deletes"
    [applied] = json.loads(world.syncd("deletes", "list", "--all", "--json").stdout)
    assert (applied["status"], applied["decided_by"], applied["why"]) == (
        "applied",
        "ada",
        "old leads removed",
    )
    approval = world.changelog("%approved by ada: old leads removed%")
    assert approval
    assert approval[0]["code"] == "deletes_approved"
    # Approved once: deciding again is refused and changes nothing.
    again = world.syncd("deletes", "reject", str(hold["id"]), "--yes", check=False)
    assert again.returncode == 1
    assert "already applied" in again.stderr


def test_rejected_deletes_keep_the_records_and_open_no_new_hold(tmp_path: Path) -> None:
    world = _world(tmp_path)
    hold = _trip(world)
    world.syncd("deletes", "reject", str(hold["id"]), "--by", "bob", "--why", "partial export", "--yes")
    for _ in range(2):
        proc = world.syncd("sync", "--once", "--json")
        assert json.loads(proc.stdout)["delete_guard"] == []
        assert "ALERT" not in proc.stderr
    assert _emails(world, "b") == PEOPLE
    [rejected] = json.loads(world.syncd("deletes", "list", "--all", "--json").stdout)
    assert (rejected["id"], rejected["status"], rejected["decided_by"]) == (hold["id"], "rejected", "bob")
    assert world.syncd("deletes", "list").stdout.strip() == "no held deletes"


def test_deciding_an_unknown_hold_fails_and_without_yes_asks_first(tmp_path: Path) -> None:
    world = _world(tmp_path)
    missing = world.syncd("deletes", "approve", "999", "--yes", check=False)
    assert missing.returncode == 1
    assert "no held deletes #999" in missing.stderr
    hold = _trip(world)
    asked = world.syncd("deletes", "approve", str(hold["id"]), check=False)  # stdin is empty: "no"
    assert asked.returncode == 1
    assert "Delete, in the other apps, the 8 a records still missing" in asked.stdout
    [still] = json.loads(world.syncd("deletes", "list", "--json").stdout)
    assert still["status"] == "held"
