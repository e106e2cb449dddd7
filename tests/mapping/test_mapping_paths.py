"""get_path / set_path: nested app fields, where "absent" and "None" must stay different."""

from __future__ import annotations

import pytest

from syncd.mapping.paths import get_path, set_path


def test_get_path_reads_nested_values() -> None:
    record = {"properties": {"email": "a@x.io"}, "merge_fields": {"FNAME": "Ann"}}
    assert get_path(record, "properties.email") == (True, "a@x.io")
    assert get_path(record, "merge_fields.FNAME") == (True, "Ann")


def test_absent_path_is_not_found_but_present_none_is_found() -> None:
    record = {"properties": {"phone": None}}
    assert get_path(record, "properties.email") == (False, None)
    assert get_path(record, "properties.phone") == (True, None)
    assert get_path(record, "nothing.here") == (False, None)


def test_path_through_a_non_table_value_counts_as_absent() -> None:
    assert get_path({"properties": "oops"}, "properties.email") == (False, None)
    assert get_path({"tags": ["a"]}, "tags.0") == (False, None)


def test_set_path_creates_intermediate_tables_and_keeps_siblings() -> None:
    data: dict[str, object] = {"properties": {"firstname": "Ann"}}
    set_path(data, "properties.email", "a@x.io")
    set_path(data, "merge_fields.FNAME", "Ann")
    set_path(data, "email", None)
    assert data == {
        "properties": {"firstname": "Ann", "email": "a@x.io"},
        "merge_fields": {"FNAME": "Ann"},
        "email": None,
    }


def test_set_path_refuses_to_overwrite_a_value_with_a_table() -> None:
    data: dict[str, object] = {"properties": "text"}
    with pytest.raises(ValueError, match="'properties' holds a str"):
        set_path(data, "properties.email", "a@x.io")
    assert data == {"properties": "text"}


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a."])
def test_paths_with_empty_segments_are_rejected(path: str) -> None:
    with pytest.raises(ValueError, match="empty segment"):
        get_path({}, path)


@pytest.mark.parametrize("path", ["", "a..b", ".a", "a."])
def test_set_path_rejects_empty_segments_and_leaves_the_data_alone(path: str) -> None:
    data: dict[str, object] = {"a": {"b": 1}}
    with pytest.raises(ValueError, match="empty segment"):
        set_path(data, path, 2)
    assert data == {"a": {"b": 1}}


def test_set_path_fills_a_none_intermediate_with_a_table() -> None:
    data: dict[str, object] = {"address": None}
    set_path(data, "address.city", "Lyon")
    assert data == {"address": {"city": "Lyon"}}


def test_a_list_on_the_way_is_not_indexed_by_set_path_either() -> None:
    data: dict[str, object] = {"tags": ["a"]}
    with pytest.raises(ValueError, match="'tags' holds a list"):
        set_path(data, "tags.0", "b")


def test_a_whole_table_is_a_value_at_its_own_path() -> None:
    record = {"address": {"city": "Lyon", "zip": None}}
    assert get_path(record, "address") == (True, {"city": "Lyon", "zip": None})
    assert get_path(record, "address.zip") == (True, None)
    assert get_path(record, "address.zip.code") == (False, None)


def test_keys_are_matched_exactly_case_and_spaces_included() -> None:
    record = {"merge_fields": {"FNAME": "Ann", " LNAME": "Lee"}}
    assert get_path(record, "merge_fields.fname") == (False, None)
    assert get_path(record, "merge_fields. LNAME") == (True, "Lee")


def test_a_falsy_value_is_found() -> None:
    record = {"a": {"zero": 0, "empty": "", "no": False, "none": {}}}
    for key, value in record["a"].items():
        assert get_path(record, f"a.{key}") == (True, value)
