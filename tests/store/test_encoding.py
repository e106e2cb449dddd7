"""The compact stored form of provenance reads back exactly what was stored."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.store.encoding import pack_provenance, unpack_provenance

FIELDS = st.sampled_from(["email", "first_name", "last_name", "phone", "tags"])
ENTRY = st.one_of(
    st.fixed_dictionaries(
        {
            "app": st.sampled_from(["left", "right", "admin"]),
            "at": st.sampled_from(["t1", "t2"]),
            "run": st.integers(0, 3) | st.none(),
        }
    ),
    st.dictionaries(
        st.sampled_from(["app", "at", "run", "prev", "flips"]), st.integers(0, 2) | st.text(max_size=3)
    ),
)


@settings(deadline=None)  # a timing limit is no part of this property (the machine is shared)
@given(
    values=st.dictionaries(FIELDS, st.integers() | st.text(max_size=5) | st.none()),
    provenance=st.dictionaries(FIELDS, ENTRY),
)
def test_provenance_reads_back_equal_after_a_json_round_trip(
    values: dict[str, Any], provenance: dict[str, dict[str, Any]]
) -> None:
    stored = orjson.loads(orjson.dumps(pack_provenance(values, provenance)))
    assert unpack_provenance(values, stored) == provenance


def test_one_read_for_every_field_is_stored_once() -> None:
    values = {"email": "a@example.com", "first_name": "A", "last_name": "B", "phone": None}
    one = {"app": "left", "at": "2026-01-01T00:00:00.000Z", "run": 1}
    provenance = {name: dict(one) for name in values}
    packed = pack_provenance(values, provenance)
    assert packed == [["left", "2026-01-01T00:00:00.000Z", 1, "*"]]
    assert len(orjson.dumps(packed)) < len(orjson.dumps(provenance)) / 4


def test_entries_read_back_as_separate_dicts() -> None:
    values = {"a": 1, "b": 2}
    got = unpack_provenance(values, [["crm", "t", 1, "*"]])
    got["a"]["app"] = "changed"
    assert got["b"]["app"] == "crm"


def test_provenance_stored_in_full_reads_back_as_it_is() -> None:
    full = {"a": {"app": "crm", "at": "t", "run": 1}}
    assert unpack_provenance({"a": 1}, full) == full
    assert unpack_provenance({}, None) == {}
