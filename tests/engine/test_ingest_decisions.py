"""Unit tests of the engine's ingest decisions: no store, no connector, no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from syncd.engine import (
    Change,
    Entity,
    Link,
    ReasonCode,
    canonical_values,
    clashing_records,
    mass_delete_stop,
    new_key,
    retry_delay,
    tombstone,
)
from syncd.mapping import Mapping

from .world import World


def _mapping(tmp_path: Path, delete: str = "propagate") -> Mapping:
    return World(tmp_path, delete=delete).mapping


def _synced(email: str = "ada@example.com", name: str = "Ada") -> tuple[Entity, Link]:
    """An entity and its link in app ``a`` whose baseline equals the canonical values."""
    values = {"email": email, "name": name}
    entity = Entity(id=1, sync="people", key=email, values=dict(values))
    return entity, Link(10, 1, "a", "r1", baseline=dict(values))


def _tomb(
    mapping: Mapping, entity: Entity, link: Link
) -> tuple[list[Change], list[Link], set[int], dict[int, Any]]:
    all_links: dict[int, dict[str, Link]] = {entity.id: {"a": link}}
    changes: list[Change] = []
    drop: list[Link] = []
    dirty: set[int] = set()
    tombstone(
        mapping,
        entity,
        link,
        all_links,
        changes,
        drop,
        dirty,
        reason="deleted in a",
        code=ReasonCode.REMOTE_DELETED,
    )
    return changes, drop, dirty, all_links


def test_delete_under_propagate_deletes_the_entity_everywhere(tmp_path: Path) -> None:
    entity, link = _synced()
    changes, drop, dirty, links = _tomb(_mapping(tmp_path, "propagate"), entity, link)
    assert entity.state == "deleted"
    assert drop == [link]
    assert dirty == {1}
    assert links[1] == {}
    assert [c.reason for c in changes] == ["deleted in a: deleting in the other apps"]


def test_delete_under_ignore_keeps_the_link_and_changes_nothing(tmp_path: Path) -> None:
    entity, link = _synced()
    changes, drop, dirty, links = _tomb(_mapping(tmp_path, "ignore"), entity, link)
    assert entity.state == "active"
    assert drop == []
    assert dirty == set()
    assert links[1] == {"a": link}
    assert [c.reason for c in changes] == ["deleted in a: ignored (delete policy), link kept"]


def test_delete_under_unlink_excludes_only_that_app(tmp_path: Path) -> None:
    entity, link = _synced()
    changes, drop, dirty, _ = _tomb(_mapping(tmp_path, "unlink"), entity, link)
    assert entity.state == "active"
    assert entity.excluded == ["a"]
    assert drop == [link]
    assert dirty == set()
    assert [c.reason for c in changes] == ["deleted in a: unlinked, others kept"]


def test_delete_under_archive_archives_the_entity(tmp_path: Path) -> None:
    entity, link = _synced()
    _tomb(_mapping(tmp_path, "archive"), entity, link)
    assert entity.state == "archived"


def test_an_edit_elsewhere_beats_a_delete(tmp_path: Path) -> None:
    entity, link = _synced()
    entity.values["name"] = "Edited in b"  # the canonical moved on; app a never got it
    changes, drop, dirty, _ = _tomb(_mapping(tmp_path, "propagate"), entity, link)
    assert entity.state == "active"
    assert drop == [link]
    assert dirty == {1}
    assert [c.reason for c in changes] == ["deleted in a, but edited elsewhere: the edit wins"]


def test_a_delete_of_an_already_deleted_entity_only_drops_the_link(tmp_path: Path) -> None:
    entity, link = _synced()
    entity.state = "deleted"
    changes, drop, dirty, _ = _tomb(_mapping(tmp_path, "propagate"), entity, link)
    assert drop == [link]
    assert dirty == set()
    assert [c.reason for c in changes] == ["deleted in a: link dropped"]


@pytest.mark.parametrize(
    ("linked", "missing", "allowed", "stops"),
    [
        (10, 10, False, True),  # every record gone: always suspicious
        (10, 6, False, True),  # 60 % > the 50 % threshold
        (10, 5, False, False),  # at the threshold: deletes go ahead
        (10, 1, False, False),
        (10, 10, True, False),  # --allow-mass-delete
        (1, 1, False, True),
    ],
)
def test_mass_delete_guard_stops_listings_missing_too_much(
    tmp_path: Path, linked: int, missing: int, allowed: bool, stops: bool
) -> None:
    message = mass_delete_stop(_mapping(tmp_path), "a", linked, missing, allowed=allowed)
    assert (message is not None) == stops
    if message is not None:
        assert message.startswith(f"a: complete listing lacks {missing} of {linked} linked records")


def test_a_value_that_is_not_unicode_is_refused_without_naming_it(tmp_path: Path) -> None:
    out = canonical_values(
        _mapping(tmp_path), "a", "r1", {"email": "x@example.com", "name": "Ad\ud800a"}, None
    )
    assert isinstance(out, str)
    assert "Unicode" in out
    assert "Ad" not in out


class _Unmappable:
    """A mapping whose inbound transform fails on the record (as a buggy custom transform can)."""

    def to_canonical(self, app: str, raw: Any) -> dict[str, Any]:
        raise KeyError(raw["secret"])


def test_fields_that_cannot_be_mapped_are_refused_with_the_kind_of_error() -> None:
    out = canonical_values(cast(Mapping, _Unmappable()), "b", "r1", {"secret": "s3cret"}, None)
    assert out == "its fields could not be mapped (KeyError)"


def test_a_readable_record_gives_its_canonical_values(tmp_path: Path) -> None:
    out = canonical_values(
        _mapping(tmp_path), "a", "r1", {"email": " Ada@Example.com", "name": " Ada "}, "v1"
    )
    assert out == {"email": "ada@example.com", "name": "Ada"}


def test_a_new_record_with_a_linked_records_key_is_a_clash_unless_it_replaces_it() -> None:
    entity = Entity(1, "people", "ada@example.com")
    held = {1: Link(10, 1, "a", "old")}
    keys = {"new": "ada@example.com", "other": "bob@example.com"}
    assert clashing_records(keys, {"ada@example.com": entity}, held, replaced=set()) == ["old"]
    assert clashing_records(keys, {"ada@example.com": entity}, held, replaced={"old"}) == []
    # The linked record itself is no clash with itself.
    assert clashing_records({"old": "ada@example.com"}, {"ada@example.com": entity}, held, set()) == []


def test_new_key_only_when_the_values_give_another_non_empty_key(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path)
    entity, _ = _synced()
    assert new_key(mapping, entity) is None
    entity.values["email"] = "ada@new.example.com"
    assert new_key(mapping, entity) == "ada@new.example.com"
    entity.values["email"] = None
    assert new_key(mapping, entity) is None


def test_retry_delay_doubles_with_each_attempt() -> None:
    assert [retry_delay(1.5, n) for n in (1, 2, 3, 4)] == [1.5, 3.0, 6.0, 12.0]
