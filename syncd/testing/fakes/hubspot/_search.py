"""Search semantics of the HubSpot fake: filter groups, operators, the one sort rule, free text.

Filters in a group are ANDed and groups are ORed; string comparisons ignore case; date-time
properties compare as epoch milliseconds (filter values may be epoch ms or ISO-8601).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import bad_request
from ._model import (
    MAX_FILTER_GROUPS,
    MAX_FILTERS,
    MAX_FILTERS_PER_GROUP,
    Collection,
    IndexVersion,
    Record,
    parse_time_ms,
)

SEARCH_OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)


def visible_version(rec: Record, now_ms: int) -> IndexVersion | None:
    visible = [v for v in rec.index if v.visible_ms <= now_ms]
    return visible[-1] if visible else None


def filter_groups(coll: Collection, raw: Any) -> list[list[dict[str, Any]]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request("filterGroups must be an array")
    groups: list[list[dict[str, Any]]] = []
    total = 0
    for group in raw:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise bad_request("each filter group needs a filters array")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise bad_request(f"A filter group may contain at most {MAX_FILTERS_PER_GROUP} filters")
        total += len(filters)
        for flt in filters:
            _check_filter(coll, flt)
        if filters:
            groups.append(filters)
    if len(raw) > MAX_FILTER_GROUPS:
        raise bad_request(f"A search request may contain at most {MAX_FILTER_GROUPS} filter groups")
    if total > MAX_FILTERS:
        raise bad_request(f"A search request may contain at most {MAX_FILTERS} filters in total")
    return groups


def _check_filter(coll: Collection, flt: Any) -> None:
    if not isinstance(flt, dict):
        raise bad_request("a filter must be an object")
    operator = flt.get("operator")
    name = flt.get("propertyName")
    if operator not in SEARCH_OPERATORS:
        raise bad_request(f"Invalid filter operator: {operator}")
    if not isinstance(name, str) or name not in coll.properties:
        raise bad_request(f"There was a problem with the request: property {name!r} does not exist")
    if operator in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise bad_request(f"{operator} filter on {name} needs a non-empty 'values' array of strings")
    elif operator not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY") and flt.get("value") is None:
        raise bad_request(f"{operator} filter on {name} needs a 'value'")
    if operator == "BETWEEN" and flt.get("highValue") is None:
        raise bad_request(f"BETWEEN filter on {name} needs a 'highValue'")


def sort_rule(coll: Collection, raw: Any) -> tuple[str, bool] | None:
    """The one sort rule, as (property, descending).

    HubSpot documents sorts as objects ``{"propertyName", "direction"}``; its OpenAPI document
    types them as strings, and a plain property name is accepted here as ascending.
    """
    if not raw:
        return None
    if not isinstance(raw, list) or len(raw) > 1:
        raise bad_request("Only one sort is allowed")
    rule = raw[0]
    name: Any
    direction: Any
    if isinstance(rule, str):
        name, direction = rule, "ASCENDING"
    elif isinstance(rule, dict):
        name, direction = rule.get("propertyName"), rule.get("direction", "ASCENDING")
    else:
        raise bad_request("Invalid sort")
    if not isinstance(name, str) or name not in coll.properties:
        raise bad_request(f"Invalid sort property: {name}")
    if direction not in ("ASCENDING", "DESCENDING"):
        raise bad_request(f"Invalid sort direction: {direction}")
    return name, direction == "DESCENDING"


def sort_key(coll: Collection, prop: str, value: str) -> tuple[float, str]:
    kind = coll.properties[prop].type
    if kind in ("datetime", "date"):
        return float(parse_time_ms(value) or 0), ""
    if kind == "number":
        with contextlib.suppress(ValueError):
            return float(value), ""
    return 0.0, value.lower()


def matches(coll: Collection, flt: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    name = str(flt["propertyName"])
    operator = str(flt["operator"])
    actual = values.get(name)
    present = actual not in (None, "")
    if operator == "HAS_PROPERTY":
        return present
    if operator == "NOT_HAS_PROPERTY":
        return not present
    kind = coll.properties[name].type

    def typed(text: str) -> float | str | None:
        if kind in ("datetime", "date"):
            parsed = parse_time_ms(text)
            return float(parsed) if parsed is not None else None
        if kind == "number":
            try:
                return float(text)
            except ValueError:
                return None
        return text.strip().lower()

    if operator in ("IN", "NOT_IN"):
        wanted = {typed(str(v)) for v in flt["values"]}
        inside = present and typed(str(actual)) in wanted
        return inside if operator == "IN" else not inside
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        found = present and token_match(str(flt["value"]), str(actual))
        return found if operator == "CONTAINS_TOKEN" else not found
    if operator == "NEQ":
        return not present or typed(str(actual)) != typed(str(flt["value"]))
    if not present:
        return False
    left = typed(str(actual))
    right = typed(str(flt["value"]))
    if left is None or right is None or type(left) is not type(right):
        return False
    if operator == "EQ":
        return left == right
    if operator == "BETWEEN":
        high = typed(str(flt["highValue"]))
        if high is None or type(high) is not type(left):
            return False
        return bool(right <= left <= high)  # type: ignore[operator]
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }
    return comparisons[operator](left, right)


def text_match(coll: Collection, query: str, values: Mapping[str, str]) -> bool:
    words = [w.lower() for w in query.split() if w]
    haystack = " ".join((values.get(name) or "").lower() for name in coll.spec.text_search)
    return all(word.strip("*") in haystack for word in words)


def token_match(pattern: str, value: str) -> bool:
    """HubSpot's CONTAINS_TOKEN: a whole-token match, ``*`` standing for any characters."""
    regex = re.compile("^" + ".*".join(re.escape(part) for part in pattern.lower().split("*")) + "$")
    tokens = re.split(r"[\s,;]+", value.lower())
    return any(regex.match(token) for token in tokens) or bool(regex.match(value.lower()))
