"""Cell values: what a read reports, how a row's version is computed, and how values are compared.

Both formats report the same shapes: text as ``str``, an empty cell as ``None``; XLSX numbers as
``int``/``float`` (whole floats as ``int``), booleans as ``bool`` and dates as ISO-8601 text
(``2024-05-01`` for a date without a time of day). A formula cell is a ``Formula``: it is never
reported as a field (its value is whatever a spreadsheet app last computed, which openpyxl cannot
recompute after a write) and never written over.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson

#: A plain cell value as reported in a record's fields.
Value = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Formula:
    """A cell holding a formula (its text, e.g. ``=B2*2``)."""

    text: str


Cell = Value | Formula


def normalise(value: Any) -> Value:
    """The reported form of a cell value read from either format."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, datetime):
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def as_text(value: Any) -> str:
    """A value as the text a person would type into a cell (``None`` as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return str(normalise(value))
    return str(value)


def fold(value: Any) -> str:
    """The form ``find`` compares: text, trimmed, Unicode-normalised and case-folded."""
    return unicodedata.normalize("NFC", as_text(value)).strip().casefold()


def row_version(fields: Mapping[str, Value], formulas: Mapping[str, str]) -> str:
    """The content hash of a row: its version, and what change detection compares.

    Formula cells count by their text, so editing a formula changes the version even though the
    formula itself is not a field.
    """
    payload = orjson.dumps({"f": fields, "x": formulas}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:24]


__all__ = ["Cell", "Formula", "Value", "as_text", "fold", "normalise", "row_version"]
