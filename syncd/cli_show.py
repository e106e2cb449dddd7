"""How ``syncd show`` prints one entity (``syncd.sync.operations.entity_view``) for a person.

A table of fields: the canonical value, where it came from, and beside it each app's own stored
value (what syncd last knew that app's record to hold), marked where it differs. Then each linked
record and how it came to be linked, the open conflicts as a table, and the recent change log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: How a link's origin (``link_origins``) reads.
ORIGIN_TEXT = {
    "created": "created by syncd",
    "linked": "linked existing record",
    "first_seen": "existing record, where the entity was first read",
}


def _value(value: Any) -> str:
    return escape(json.dumps(value, default=str, ensure_ascii=False))


def _when(at: Any) -> str:
    """``2026-01-01 09:30`` for an ISO stamp (the minute is enough beside a value)."""
    text = str(at or "")
    return text[:16].replace("T", " ") if len(text) >= 16 else text or "?"


def fields_table(view: Mapping[str, Any]) -> Table:
    links = view["links"]
    table = Table(title="values", title_justify="left", show_lines=False)
    table.add_column("field", no_wrap=True)
    table.add_column("canonical", overflow="fold")
    table.add_column("from", overflow="fold")
    for link in links:
        table.add_column(f"in {escape(str(link['app']))}", overflow="fold")
    names = sorted(set(view["values"]) | {n for link in links for n in (link["baseline"] or {})})
    for name in names:
        canonical = view["values"].get(name)
        prov = view["provenance"].get(name) or {}
        source = f"{prov.get('app')}, {_when(prov.get('at'))}" if prov else "-"
        cells = [escape(name), _value(canonical), escape(source)]
        for link in links:
            baseline = link["baseline"] or {}
            if name not in baseline:
                cells.append("[dim]not mapped[/]")
                continue
            own = baseline[name]
            cells.append(_value(own) if own == canonical else f"[yellow]{_value(own)} (differs)[/]")
        table.add_row(*cells)
    return table


def conflicts_table(conflicts: list[Mapping[str, Any]]) -> Table:
    apps = sorted({str(side["app"]) for c in conflicts for side in c["candidates"]})
    table = Table(title="open conflicts", title_justify="left")
    table.add_column("#", no_wrap=True)
    table.add_column("field", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for app in apps:
        table.add_column(escape(app), overflow="fold")
    table.add_column("since", overflow="fold")
    for c in conflicts:
        sides = {str(side["app"]): side.get("value") for side in c["candidates"]}
        table.add_row(
            str(c["id"]),
            escape(str(c["field"])),
            escape(str(c["kind"])),
            *[_value(sides[a]) if a in sides else "-" for a in apps],
            escape(_when(c["created_at"])),
        )
    return table


def render(view: Mapping[str, Any], console: Console) -> None:
    """Print the view (see the module docstring)."""
    console.print(
        f"entity {view['id']} ({escape(str(view['sync']))}) key {escape(repr(view['key']))} "
        f"\\[{escape(str(view['state']))}]",
        soft_wrap=True,
    )
    console.print(fields_table(view))
    for link in view["links"]:
        how = ORIGIN_TEXT.get(str(link.get("origin")), "linked record")
        console.print(
            f"  {escape(str(link['app']))} record {escape(str(link['remote_id']))}: {how} "
            f"(version {escape(str(link['version']))})",
            soft_wrap=True,
        )
    if not view["links"]:
        console.print("  not linked to any app's record")
    if view["conflicts"]:
        console.print(conflicts_table(view["conflicts"]))
        console.print(
            "  settle with: syncd conflicts resolve ID --take APP (or --value VALUE)", soft_wrap=True
        )
    if view["changes"]:
        console.print("recent changes, newest first:")
    origins = {link["app"]: link.get("origin") for link in view["links"]}
    for ch in view["changes"]:
        reason = ch["reason"]
        if ch.get("code") == "new_record" and origins.get(ch["app"]) == "linked":
            # The entity was new to syncd, the record was not: another app's record matched it.
            reason = f"first read from {ch['app']}: an existing record, linked by key"
        console.print(
            f"  {ch['at']} {ch['app'] or '-'} {ch['field']}: {ch['old']!r} -> {ch['new']!r} ({reason})",
            soft_wrap=True,
            markup=False,
        )
