"""``syncd plan`` as a preview: what the next sync would do, summed up per app, then its writes.

A plan is a real cycle run in dry-run mode on a throw-away copy of the state (``open_runner``
with ``dry_run``): the dispatcher records each write instead of sending it (``Runner.planned``),
with the payload it would have sent — the intent's payload, which the planner built through the
mapping's outbound transforms and which a real dispatch hands to the connector as it is. So the
values shown are the ones each app would receive, computed by the same code that sends them.

``build_preview`` gathers the summary and the grouped writes once the cycle has run; the text
rendering (``preview_lines``) is a pure function of that, so it is tested without any app.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from syncd.store import StateStore

from .stats import RunStats

#: The kinds of write, in the order a preview shows them.
KINDS = ("create", "update", "delete")
#: How many writes a preview shows per app and kind, unless told otherwise.
DEFAULT_LIMIT = 20


def preview_data(store: StateStore, planned: Sequence[dict[str, Any]], stats: RunStats) -> dict[str, Any]:
    """The preview of a dry-run cycle (a unit of work on its throw-away state): ``summary`` per
    app and ``writes`` (each with the entity's key and the ``payload`` the app would receive),
    sorted by app, kind and entity."""
    apps = sorted({*stats.apps, *(w["app"] for w in planned)})
    keys = {e.id: e.key for e in store.entities({int(w["entity_id"]) for w in planned}).values()}
    conflicts: dict[str, int] = defaultdict(int)
    for conflict in store.conflicts(status="open", limit=1_000_000):
        for app in {str(c.get("app")) for c in conflict["candidates"]}:
            conflicts[app] += 1
    held: dict[str, int] = defaultdict(int)
    for hold in store.held_deletes(status="held"):
        if hold["run_id"] == stats.run_id:
            held[hold["app"]] += hold["missing"]
    counts: dict[str, dict[str, int]] = {app: dict.fromkeys(KINDS, 0) for app in apps}
    for w in planned:
        counts[w["app"]][w["op"] if w["op"] in KINDS else "update"] += 1
    summary = {
        app: {
            "read": stats.apps[app].read if app in stats.apps else 0,
            "matched": stats.apps[app].linked if app in stats.apps else 0,
            "new": counts[app]["create"],
            "updates": counts[app]["update"],
            "deletes": counts[app]["delete"],
            "conflicts": conflicts.get(app, 0),
            "held_deletes": held.get(app, 0),
        }
        for app in apps
    }
    writes = [{**w, "key": keys.get(int(w["entity_id"]))} for w in planned]
    writes.sort(key=lambda w: (w["app"], _kind_order(w["op"]), w["entity_id"]))
    return {"summary": summary, "writes": writes}


def _kind_order(op: str) -> int:
    return KINDS.index(op) if op in KINDS else len(KINDS)


SUMMARY_COLUMNS = (
    ("matched", "matched"),
    ("new", "new"),
    ("updates", "updates"),
    ("deletes", "deletes"),
    ("conflicts", "conflicts"),
    ("held_deletes", "held by guard"),
)


def preview_lines(preview: dict[str, Any], *, limit: int | None = DEFAULT_LIMIT) -> Iterator[str]:
    """The preview as text: the summary table first, then each app's writes per kind, at most
    ``limit`` per group (None: all) with how many more there are."""
    summary: dict[str, dict[str, int]] = preview["summary"]
    width = max([len("app"), *(len(a) for a in summary)])
    yield "  ".join([f"{'app':<{width}}", *(title for _, title in SUMMARY_COLUMNS)])
    for app, row in summary.items():
        cells = [f"{row[name]:>{len(title)}}" for name, title in SUMMARY_COLUMNS]
        yield "  ".join([f"{app:<{width}}", *cells])
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for w in preview["writes"]:
        groups[(w["app"], w["op"])].append(w)
    for (app, op), writes in groups.items():
        yield ""
        yield f"{app}: {op} ({len(writes)})"
        shown = writes if limit is None else writes[:limit]
        for w in shown:
            yield "  " + _write_line(w)
        if len(writes) > len(shown):
            yield f"  … and {len(writes) - len(shown)} more (--all shows every write)"


def _write_line(w: dict[str, Any]) -> str:
    target = w["remote_id"] or "(new)"
    who = w.get("key") or f"entity {w['entity_id']}"
    if w["op"] == "delete":
        return f"{target} {who}"
    values = json.dumps(w.get("payload") or {}, ensure_ascii=False, sort_keys=True, default=str)
    return f"{target} {who}: {values}"
