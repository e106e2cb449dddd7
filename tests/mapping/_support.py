"""Helpers for the mapping tests: build a mapping (or collect its problems) from TOML text."""

from __future__ import annotations

from pathlib import Path

from syncd.mapping import Mapping, MappingError, parse_mapping

REPO = Path(__file__).resolve().parents[2]
MAPPINGS = REPO / "mappings"
KNOWN_APPS = frozenset({"billing", "crm", "email", "helpdesk", "product", "zendesk"})

#: A minimal valid mapping: apps crm and email, keyed by a canonicalised email address.
TWO_APPS = """
name = "people"
key = "email"

[apps.crm]
object = "contacts"

[apps.email]
object = "members"

[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.email = "email_address"
"""


def build(extra: str = "", *, base: str = TWO_APPS) -> Mapping:
    """Compile ``base`` followed by ``extra``; raises ``MappingError`` if invalid."""
    return parse_mapping(base + extra, source="test.toml")


def problems_of(extra: str = "", *, base: str = TWO_APPS) -> list[str]:
    """The problems reported for ``base`` followed by ``extra`` (empty when it is valid)."""
    try:
        parse_mapping(base + extra, source="test.toml")
    except MappingError as exc:
        return exc.problems
    return []
