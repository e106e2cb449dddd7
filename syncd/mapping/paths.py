"""Dotted paths into an app record's nested fields (``properties.email``, ``merge_fields.FNAME``).

A path addresses nested dicts only: each segment is a key. "Found" matters as much as the value:
a path absent from a record means "the app did not report this field", which is not the same as
a reported ``None`` (a cleared value).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, MutableMapping
from typing import Any


@functools.lru_cache(maxsize=4096)
def split_path(path: str) -> tuple[str, ...]:
    """The segments of a dotted path; raises ``ValueError`` for an empty segment.

    Cached: a mapping has a handful of paths, looked up for every field of every record.
    """
    parts = tuple(path.split("."))
    if any(part == "" for part in parts):
        raise ValueError(f"invalid path {path!r}: empty segment")
    return parts


def get_path(data: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """Look up ``path`` in nested dicts: ``(True, value)`` if every segment exists, else ``(False, None)``.

    A segment that meets a non-dict value (a string where a table was expected) counts as absent.
    """
    current: Any = data
    for part in split_path(path):
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def set_path(data: MutableMapping[str, Any], path: str, value: Any) -> None:
    """Store ``value`` at ``path``, creating intermediate dicts as needed.

    Raises ``ValueError`` when an intermediate segment already holds a non-dict value, rather
    than overwriting data silently.
    """
    parts = split_path(path)
    current: MutableMapping[str, Any] = data
    for part in parts[:-1]:
        child = current.get(part)
        if child is None:
            child = {}
            current[part] = child
        elif not isinstance(child, MutableMapping):
            raise ValueError(f"cannot set {path!r}: {part!r} holds a {type(child).__name__}, not a table")
        current = child
    current[parts[-1]] = value
