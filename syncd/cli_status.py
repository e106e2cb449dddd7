"""How ``syncd status`` shows the health report (``syncd.sync.health``) on one screen.

A table per app (state and why, lag, webhook age, outbox, dead letters, budget, held deletes,
last full reconciliation), the overall lines, then what needs a person with the command to run.
Plain text when the output is not a terminal (rich drops the colours), never cut: a command a
person copies must arrive whole.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

STATE_STYLE = {"ok": "green", "paused": "bold red", "failing": "bold yellow"}
#: Columns when the output is not a terminal (a file, a pipe, a log): wide enough that a table
#: row stays on one line for grep.
PIPE_WIDTH = 160


def console() -> Console:
    """A console for a person's screen; plain and wide when the output goes elsewhere."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=PIPE_WIDTH)


def _age(seconds: float | None) -> str:
    """``4s``, ``12m 5s``, ``3h 2m``, ``2d 4h``; ``never`` for None."""
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _budget(used: float | None) -> str:
    return "not shared" if used is None else f"{used:.0%} of the burst"


def _full(last: Mapping[str, Any] | None) -> str:
    if last is None:
        return "none yet"
    when = last.get("finished_at") or f"{last.get('started_at')} (not finished)"
    drift = last.get("drift")
    return f"{when}, drift {drift if drift is not None else 'not measured'}"


def app_table(name: str, app: Mapping[str, Any]) -> Table:
    state = str(app["state"])
    title = f"[bold]{name}[/] ({app.get('connector') or 'not configured'}): [{STATE_STYLE.get(state, '')}]{state}[/]"
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column("fact", style="dim", no_wrap=True)
    table.add_column("value", overflow="fold")
    if app.get("state_reason"):
        table.add_row("why", str(app["state_reason"]))
    table.add_row(
        "last good poll", f"{_age(app['lag_seconds'])} ago" if app["lag_seconds"] is not None else "never"
    )
    hook = app["webhook_age_seconds"]
    table.add_row("last webhook", f"{_age(hook)} ago" if hook is not None else "none received")
    table.add_row("outbox", f"{app['outbox_depth']} writes pending")
    dead = f"{app['dead_letters']}"
    if app["dead_letters"]:
        dead += f" (replay: {app['dead_letters_command']})"
    table.add_row("dead letters", dead)
    table.add_row("API budget", _budget(app["budget_used"]))
    if app.get("pending_deletes"):
        table.add_row("held deletes", str(app["pending_deletes"]))
    table.add_row("last full reconcile", _full(app.get("last_full_reconcile")))
    return table


def _daemon_line(d: Mapping[str, Any]) -> str:
    where = f"{d.get('host') or '?'} pid {d.get('pid') or '?'}"
    if d.get("via") == "lease":
        return f"{where}: holds the state's writer lease (a `syncd run`, or a one-off command)"
    parts = [where]
    if d.get("url"):
        parts.append(str(d["url"]))
    leases = [x.removeprefix("app:") for x in d.get("leases", []) if str(x).startswith("app:")]
    if leases:
        parts.append("serves " + ", ".join(leases))
    if d.get("last_seen_seconds") is not None:
        parts.append(f"seen {_age(d['last_seen_seconds'])} ago")
    return "; ".join(parts)


def render(report: Mapping[str, Any], console: Console) -> None:
    """Print the report for a person (see the module docstring)."""
    for name, app in report["apps"].items():
        console.print(app_table(name, app))
        console.print()
    if not report["apps"]:
        console.print("no apps configured")
    console.print(f"open conflicts: {report['open_conflicts']}", soft_wrap=True)
    console.print(f"deletes held by the mass-delete guard: {report['pending_deletes']}", soft_wrap=True)
    console.print(
        f"outbox: {report['outbox_depth']} writes pending; dead letters: {report['dead_letters']}",
        soft_wrap=True,
    )
    daemons = report["daemons"]
    if not daemons:
        console.print("daemons: none running on this state", soft_wrap=True)
    for d in daemons:
        console.print(f"daemon: {_daemon_line(d)}", soft_wrap=True, markup=False)
    console.print()
    if not report["attention"]:
        console.print("[green]all well: nothing needs a person[/]")
        return
    console.print(f"[bold red]needs attention ({len(report['attention'])}):[/]")
    for item in report["attention"]:
        console.print(f"- {item['what']}: {item['why']}", soft_wrap=True, markup=False)
        console.print(f"    run: {item['command']}", soft_wrap=True, markup=False, highlight=False)
