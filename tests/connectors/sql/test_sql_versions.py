"""Row versions stay what earlier releases stored: a changed hash would make every linked row
look edited (re-read, conditional writes refused) after an upgrade."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd_sql._values import content_version


def stored_form(fields: dict[str, Any]) -> str:
    """How versions were always computed: sha256 of sorted-key, space-free JSON (UTF-8)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2),
    st.text(alphabet=st.characters(max_codepoint=0x7F)),
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), _VALUES, max_size=6))
def test_row_version_hash_is_unchanged_for_every_kind_of_column_value(fields: dict[str, Any]) -> None:
    assert content_version(fields) == stored_form(fields)


def test_row_version_of_a_typical_row_is_the_known_digest() -> None:
    row = {"id": 7, "email": "Ann@Example.com", "name": "Zoë \u2028", "vip": True, "note": None}
    assert content_version(row) == stored_form(row)
    assert content_version({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()
