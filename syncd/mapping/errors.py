"""Mapping errors: every problem found in mapping files, each naming the file and the key path.

A problem reads ``<file>: <key.path>: <what was expected>``, e.g.
``mappings/contacts.toml: fields.phone.transforms[0]: unknown transform 'e164x' — did you mean 'e164'?``.
Loading collects all problems before raising, so an admin fixes a file in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class MappingError(Exception):
    """One or more mapping files are invalid.

    ``problems`` lists every problem as ``"file: key.path: message"``; ``str()`` joins them with
    newlines.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


def format_path(parts: Iterable[str | int]) -> str:
    """``('fields', 'phone', 'transforms', 0)`` -> ``fields.phone.transforms[0]`` (odd keys quoted)."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if _BARE_KEY.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
        text = f"{text}.{key}" if text else key
    return text


class Problems:
    """Collects the problems of one file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, path: Sequence[str | int] | str, message: str) -> None:
        where = path if isinstance(path, str) else format_path(path)
        self.items.append(f"{self.source}: {where}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)
