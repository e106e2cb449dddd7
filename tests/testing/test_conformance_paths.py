"""The conformance kit reads and writes dotted paths exactly as the mapping does (one implementation)."""

from __future__ import annotations

import pytest

from syncd.testing.conformance import MISSING, get_path, nested, with_path


def test_a_missing_path_is_missing_and_a_stored_none_is_none() -> None:
    fields = {"properties": {"phone": None}, "flat": "x"}
    assert get_path(fields, "properties.phone") is None
    assert get_path(fields, "properties.email") is MISSING
    assert get_path(fields, "flat.deeper") is MISSING
    assert get_path(fields, "flat") == "x"


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a."])
def test_empty_segments_are_refused_as_by_the_mapping(path: str) -> None:
    with pytest.raises(ValueError, match="empty segment"):
        get_path({}, path)
    with pytest.raises(ValueError, match="empty segment"):
        nested(path, 1)
    with pytest.raises(ValueError, match="empty segment"):
        with_path({}, path, 1)


def test_nested_builds_the_tables_on_the_way() -> None:
    assert nested("merge_fields.ADDRESS.city", "Lyon") == {"merge_fields": {"ADDRESS": {"city": "Lyon"}}}
    assert nested("email", "a@x.io") == {"email": "a@x.io"}


def test_with_path_copies_deeply_and_keeps_siblings() -> None:
    original = {"properties": {"firstname": "Ann", "email": "a@x.io"}}
    changed = with_path(original, "properties.firstname", "Anna")
    assert changed == {"properties": {"firstname": "Anna", "email": "a@x.io"}}
    assert original == {"properties": {"firstname": "Ann", "email": "a@x.io"}}, "the input is untouched"


def test_with_path_refuses_to_replace_a_value_with_a_table() -> None:
    with pytest.raises(ValueError, match="'name' holds a str"):
        with_path({"name": "Ann"}, "name.first", "Ann")
