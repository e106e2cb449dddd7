"""Unit tests of the pure engine: field merge, conflict policies, planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.engine import Entity, Link, merge_record, plan_entity
from syncd.mapping import ConflictPolicy, Mapping

from .world import World


@pytest.fixture
def mapping(tmp_path: Path) -> Mapping:
    return World(tmp_path, extra='initial_conflict = "review"').mapping


def _entity(**values: object) -> Entity:
    return Entity(id=1, sync="people", key="ada@example.com", values=dict(values))


def test_change_against_an_unmoved_canonical_is_taken(mapping: Mapping) -> None:
    e = _entity(email="ada@example.com", name="Ada")
    link = Link(1, 1, "b", "r1", baseline={"email": "ada@example.com", "name": "Ada"})
    out = merge_record(mapping, e, link, {"name": "Countess"}, None)
    assert e.values["name"] == "Countess"
    assert out.changed
    assert [c.reason for c in out.changes] == ["changed in b"]
    assert link.baseline["name"] == "Countess"


def test_value_equal_to_the_baseline_is_not_a_change_even_if_canonical_moved(mapping: Mapping) -> None:
    e = _entity(name="From A")
    link = Link(1, 1, "b", "r1", baseline={"name": "Old"})
    out = merge_record(mapping, e, link, {"name": "Old"}, None)
    assert not out.changed
    assert e.values["name"] == "From A"


@pytest.mark.parametrize(
    ("policy", "winner"),
    [
        (ConflictPolicy("priority", None, ("b", "a", "c")), "b"),
        (ConflictPolicy("priority", None, ("a", "b", "c")), "a"),
        (ConflictPolicy("owner", "b", ("a", "b", "c")), "b"),
        (ConflictPolicy("newest", None, ("a", "b", "c")), "b"),
    ],
)
def test_conflict_policies_pick_the_expected_side(
    mapping: Mapping, policy: ConflictPolicy, winner: str
) -> None:
    e = _entity(name="From A")
    e.provenance["name"] = {"app": "a", "at": "2026-01-01T00:00:00.000Z"}
    link = Link(1, 1, "b", "r1", baseline={"name": "Old"})
    view = _with_policy(mapping, policy)
    out = merge_record(view, e, link, {"name": "From B"}, "2026-01-02T00:00:00.000Z")
    assert e.values["name"] == ("From B" if winner == "b" else "From A")
    (conflict,) = out.conflicts
    assert conflict.status == "auto"
    assert conflict.winner == winner
    losers = [c for c in out.changes if c.reason.startswith("conflict lost")]
    assert [c.app for c in losers] == ["a" if winner == "b" else "b"]


def test_review_policy_parks_the_field_and_keeps_canonical(mapping: Mapping) -> None:
    e = _entity(name="From A")
    e.provenance["name"] = {"app": "a", "at": None}
    link = Link(1, 1, "b", "r1", baseline={"name": "Old"})
    out = merge_record(
        _with_policy(mapping, ConflictPolicy("review", None, ("a", "b", "c"))), e, link, {"name": "B"}, None
    )
    assert e.values["name"] == "From A"
    assert [c.status for c in out.conflicts] == ["open"]


def test_first_match_with_different_values_goes_to_review(mapping: Mapping) -> None:
    e = _entity(name="Ada A")
    link = Link(None, 1, "b", "r1")
    out = merge_record(mapping, e, link, {"name": "Ada B"}, None)
    assert [c.status for c in out.conflicts] == ["open"]
    assert e.values["name"] == "Ada A"


def test_set_fields_merge_additions_and_removals_from_each_side(mapping: Mapping) -> None:
    e = _entity(tags=["a", "b", "new-from-c"])
    link = Link(1, 1, "b", "r1", baseline={"tags": ["a", "b"]})
    merge_record(mapping, e, link, {"tags": ["b", "from-b"]}, None)
    assert e.values["tags"] == ["b", "from-b", "new-from-c"]


def test_plan_writes_only_changed_fields_and_creates_where_unlinked(mapping: Mapping) -> None:
    e = _entity(email="ada@example.com", name="New", phone="+14155550100")
    links = {
        "a": Link(
            1,
            1,
            "a",
            "ra",
            baseline={"email": "ada@example.com", "name": "Old", "phone": "+14155550100"},
            version="3",
        ),
        "b": Link(
            2, 1, "b", "rb", baseline={"email": "ada@example.com", "name": "New", "phone": "+14155550100"}
        ),
    }
    writes = plan_entity(mapping, e, links)
    by_app = {w.app: w for w in writes}
    assert by_app["a"].op == "update"
    assert by_app["a"].values == {"name": "New"}
    assert by_app["a"].payload == {"name": "New"}
    assert by_app["a"].expected_version == "3"
    assert "b" not in by_app
    assert by_app["c"].op == "create"
    assert by_app["c"].payload == {"email": "ada@example.com", "name": "New", "phone": "+14155550100"}


def test_plan_never_writes_a_parked_field(mapping: Mapping) -> None:
    e = _entity(email="ada@example.com", name="New")
    links = {"a": Link(1, 1, "a", "ra", baseline={"email": "ada@example.com", "name": "Old"})}
    writes = plan_entity(mapping, e, links, parked={"name"}, can_create=[])
    assert writes == []


class _PolicyOverride:
    """A mapping view whose every field uses one conflict policy."""

    def __init__(self, inner: Mapping, policy: ConflictPolicy) -> None:
        self._inner = inner
        self._policy = policy

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def conflict_policy(self, field: str) -> ConflictPolicy:
        return self._policy


def _with_policy(mapping: Mapping, policy: ConflictPolicy) -> Mapping:
    return _PolicyOverride(mapping, policy)  # type: ignore[return-value]
