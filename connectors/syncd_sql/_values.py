"""Column values in both directions, and the content hash that record versions are built from."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import orjson

from syncd.connector import PermanentError

_INT64 = range(-(2**63), 2**63)
_BINARY = (bytes, bytearray, memoryview)
_BINARY_TYPES = frozenset(_BINARY)
#: One encoder for every row: ``json.dumps`` with options builds a new encoder on each call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
#: Value types for which orjson writes exactly the bytes of ``_CANONICAL`` (floats and the rest
#: differ in form, e.g. ``1e16``, and go through the standard library).
_ORJSON_EXACT = frozenset({str, int, bool, type(None)})


def record_value(value: object) -> Any:
    """A stored value as a JSON-safe record field (BLOBs become base64 text)."""
    if isinstance(value, _BINARY):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def record_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as record fields: a copy, with only its BLOB values converted."""
    fields = dict(row)
    if not _BINARY_TYPES.isdisjoint(map(type, fields.values())):
        for name, value in fields.items():
            fields[name] = record_value(value)
    return fields


def db_value(column: str, value: object) -> object:
    """A record field as a value to bind; PermanentError for values a column cannot hold."""
    if value is None or isinstance(value, str | float | bytes):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if value not in _INT64:
            raise PermanentError(f"column {column!r}: integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise PermanentError(
        f"column {column!r}: cannot store a {type(value).__name__} value; SQL columns hold scalars "
        "(map lists and objects to text in the mapping)"
    )


def content_version(fields: Mapping[str, Any]) -> str:
    """A stable version for a row: sha256 of its canonical JSON (sorted keys, no spaces)."""
    data: bytes | None = None
    if _ORJSON_EXACT.issuperset(map(type, fields.values())):
        # The same bytes as below, several times faster (every row read is hashed). Text with a
        # lone surrogate, integers past 64 bits and non-text keys fall back.
        try:
            data = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            data = None
    if data is None:
        data = _CANONICAL.encode(fields).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()
