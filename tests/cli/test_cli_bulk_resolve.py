"""`syncd conflicts resolve` over a filter, black-box: the count, the confirmation, the writes, the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .sqlworld import SqlWorld, mapping


@pytest.fixture
def world(tmp_path: Path) -> SqlWorld:
    """Three people whose city and company differ between the apps: six open conflicts."""
    review = 'conflict = { policy = "review" }'
    world = SqlWorld(tmp_path, mapping(field_options={"company": review, "city": review}))
    for i in range(3):
        world.insert("a", email=f"p{i}@example.com", name=f"P{i}", company="A Inc", city="Paris")
        world.insert("b", email=f"p{i}@example.com", name=f"P{i}", company="B Ltd", city="Rome")
    world.sync()
    assert len(world.conflicts()) == 6
    return world


def test_bulk_resolve_counts_then_refuses_without_confirmation(world: SqlWorld) -> None:
    refused = world.syncd("conflicts", "resolve", "--field", "city", "--take", "b", check=False)
    assert refused.returncode == 1
    assert "3 open conflicts on field 'city'; 3 can take b's value" in refused.stdout
    assert len(world.conflicts()) == 6  # nothing resolved without a yes
    said_no = world.syncd("conflicts", "resolve", "--all", "--take", "a", check=False)
    assert said_no.returncode == 1
    assert "6 open conflicts" in said_no.stdout
    assert len(world.conflicts()) == 6


def test_bulk_resolve_by_field_writes_the_chosen_values_and_logs_who_and_why(world: SqlWorld) -> None:
    before = world.last_change_id()
    done = world.syncd(
        "conflicts",
        "resolve",
        "--field",
        "city",
        "--take",
        "b",
        "--yes",
        "--by",
        "ops",
        "--why",
        "Rome is right",
    )
    assert "resolved 3 conflicts with b's value (by ops)" in done.stdout
    left = world.conflicts()
    assert sorted(c["field"] for c in left) == ["company"] * 3  # the other field's stay open
    logged = world.changelog("conflict %", after_id=before)
    assert len(logged) == 3
    for row in logged:
        assert row["code"] == "resolved"
        assert row["reason"].endswith("resolved by ops: Rome is right")
        detail = json.loads(row["detail"])
        assert (detail["by"], detail["why"]) == ("ops", "Rome is right")
    world.sync()
    assert {r["city"] for r in world.rows("a")} == {"Rome"}  # the writes happened
    assert {r["company"] for r in world.rows("a")} == {"A Inc"}


def test_bulk_resolve_by_app_skips_conflicts_the_taken_app_is_not_a_side_of(world: SqlWorld) -> None:
    wrong = world.syncd("conflicts", "resolve", "--app", "a", "--take", "zz", "--yes", check=False)
    assert wrong.returncode == 1
    assert "0 can take zz's value (6 skipped" in wrong.stdout
    assert len(world.conflicts()) == 6
    nobody = world.syncd("conflicts", "resolve", "--field", "phone", "--take", "a", "--yes", check=False)
    assert nobody.returncode == 1
    assert "0 open conflicts on field 'phone'" in nobody.stdout
    done = world.syncd("conflicts", "resolve", "--app", "a", "--take", "a", "--yes")
    assert "resolved 6 conflicts" in done.stdout
    assert world.conflicts() == []
    logged = world.changelog("conflict %")
    assert len(logged) == 6
    assert all(json.loads(row["detail"])["by"] for row in logged)  # the OS user when no --by


def test_single_resolution_is_logged_with_who_and_why_too(world: SqlWorld) -> None:
    conflict = world.conflicts()[0]
    world.syncd("conflicts", "resolve", str(conflict["id"]), "--take", "a", "--by", "ana", "--why", "checked")
    [row] = world.changelog(f"conflict {conflict['id']} %")
    assert row["reason"] == f"conflict {conflict['id']} resolved by ana: checked"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give a conflict ID, or a filter"),
        (("--all", "--value", "x"), "give --take APP"),
        (("1", "--all", "--take", "a"), "not both"),
        (("--all", "--field", "city", "--take", "a"), "--all takes every open conflict"),
        (("1", "--take", "a", "--yes"), "--yes is for bulk resolution"),
    ],
)
def test_bulk_resolve_usage_mistakes_change_nothing(
    world: SqlWorld, args: tuple[str, ...], message: str
) -> None:
    proc = world.syncd("conflicts", "resolve", *args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(world.conflicts()) == 6
