"""The health report behind ``syncd status`` and ``/api/status``: what needs a person, and why.

Everything here is read from the state store, so the report is the same whether a daemon runs or
not: each read records how it ended (``StateStore.record_read``), the outbox and the inbox are
counted per app, the shared rate buckets say how much of each app's budget is in use, and the
daemon registry (plus the state's writer lease) says who runs. A running daemon adds its live
facts on top (``/api/status``).

``health_report`` is a unit of work (``store.call(health_report, apps, now)``); its keys are
stable and documented in docs/cli.md (``syncd status --json``) and docs/admin-api.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from syncd.failures import cause
from syncd.store import StateStore

#: How to retry dead letters once their cause is fixed.
REPLAY_COMMAND = "syncd deadletters replay --all"
#: The lease a single writer (``syncd run`` on SQLite, or a one-off command) holds on a state.
WRITER_LEASE = "syncd-run"


@dataclass(frozen=True)
class AppInfo:
    """What the configuration says of one app (the report's rows)."""

    connector: str
    poll_interval: float


class Attention(TypedDict):
    """One thing a person must act on: what, why, and the command that does it."""

    what: str
    why: str
    command: str


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def _seconds_since(stamp: str | None, now: float) -> float | None:
    if not stamp:
        return None
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return round(max(0.0, now - at), 3)


def pending_deletes(store: StateStore) -> dict[str, int]:
    """Per app, the deletes the mass-delete guard holds back for a person (open holds: approved
    ones are carried out by the next complete listing without anyone). Apps with none are left out."""
    held: dict[str, int] = {}
    for hold in store.held_deletes(status="held"):
        held[hold["app"]] = held.get(hold["app"], 0) + hold["missing"]
    return held


def _last_full(store: StateStore, app: str) -> dict[str, Any] | None:
    """The app's last full reconciliation (the daemon's ``full:APP`` runs, else a
    ``sync --once --full``), with its drift where it was measured."""
    run = store.last_run(f"full:{app}")
    drift: int | None = None
    complete: bool | None = None
    if run is not None and run["stats"]:
        stats = json.loads(run["stats"])
        drift = stats.get("drift")
        complete = stats.get("complete")
    if run is None:
        run = store.last_run("full")
        if run is None:
            return None
    return {
        "run": run["id"],
        "started_at": run["started_at"],
        "finished_at": run["finished_at"],
        "drift": drift,
        "complete": complete,
    }


def _daemons(store: StateStore, now: float) -> list[dict[str, Any]]:
    """Who runs on this state: every daemon's heartbeat (several daemons on PostgreSQL), and the
    holder of the state's writer lease (``syncd run`` on SQLite, or a one-off command)."""
    out: list[dict[str, Any]] = []
    for row in store.live_daemons(now):
        if row["info"].get("stopping"):
            continue
        out.append(
            {
                "id": row["daemon_id"],
                **row["info"],
                "last_seen_seconds": round(max(0.0, now - float(row["seen_at"])), 3),
                "via": "heartbeat",
            }
        )
    for lease in store.live_leases(now):
        if lease["name"] != WRITER_LEASE:
            continue
        try:
            holder = json.loads(lease["holder"])
        except ValueError:
            holder = {"id": lease["holder"]}
        if not isinstance(holder, dict):
            holder = {"id": str(holder)}
        if any(d["id"] == holder.get("id") for d in out):
            continue
        out.append(
            {
                "id": str(holder.get("id")),
                "host": holder.get("host"),
                "pid": holder.get("pid"),
                "acquired_at": lease["acquired_at"],
                "via": "lease",
            }
        )
    return out


def _app_state(row: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """``ok``, ``paused`` or ``failing``, and why (None when ok)."""
    if row is None:
        return "ok", None
    failure = row.get("failure") or {}
    if row.get("paused"):
        return "paused", f"paused ({row['paused']}): {cause(failure)}"
    failed, ok = row.get("last_failed_at"), row.get("last_ok_at")
    if failed and (not ok or failed > ok):
        kind = failure.get("kind")
        what = "auth refused" if kind == "auth" else "last poll failed"
        return "failing", f"{what}: {cause(failure)}"
    return "ok", None


def paused_live(report: dict[str, Any], app: str, reason: str) -> None:
    """A running daemon knows ``app`` is paused (a write was refused, say) before the state says
    so: show it paused, and ask a person to act."""
    row = report["apps"].get(app)
    if row is None or row["state"] == "paused":
        return
    row["state"], row["state_reason"] = "paused", reason
    report["attention"].append(
        {
            "what": f"{app} is paused",
            "why": f"{reason}; fix the app's credentials or settings in the config, then restart the daemon",
            "command": "syncd validate",
        }
    )
    report["needs_attention"] = True


def health_report(store: StateStore, apps: Mapping[str, AppInfo], now: float) -> dict[str, Any]:
    """The whole report (see the module docstring) for the configured ``apps`` at ``now``."""
    health = store.app_health()
    outbox = store.outbox_by_app()
    hooks = store.last_webhooks()
    budgets = store.budget_levels(now)
    held = pending_deletes(store)
    open_conflicts = store.count_conflicts("open")
    attention: list[Attention] = []
    report_apps: dict[str, Any] = {}
    for name in sorted(set(apps) | set(outbox)):
        info = apps.get(name)
        row = health.get(name)
        state, reason = _app_state(row)
        queue = outbox.get(name, {"pending": 0, "dead": 0})
        last_ok = row["last_ok_at"] if row else None
        report_apps[name] = {
            "connector": info.connector if info else None,
            "configured": info is not None,
            "state": state,
            "state_reason": reason,
            "last_poll_at": last_ok,
            "last_failure_at": row["last_failed_at"] if row else None,
            "failure": row["failure"] if row and state != "ok" else None,
            "lag_seconds": _seconds_since(last_ok, now),
            "webhook_age_seconds": _seconds_since(hooks.get(name), now),
            "outbox_depth": queue["pending"],
            "dead_letters": queue["dead"],
            "dead_letters_command": REPLAY_COMMAND if queue["dead"] else None,
            "budget_used": budgets.get(f"budget:{name}"),
            "pending_deletes": held.get(name, 0),
            "last_full_reconcile": _last_full(store, name),
        }
        if state == "paused":
            attention.append(
                {
                    "what": f"{name} is paused",
                    "why": f"{reason}; fix the app's credentials or settings in the config, check them, "
                    "then sync (a running `syncd run`: restart it)",
                    "command": "syncd validate && syncd sync --once",
                }
            )
        elif state == "failing":
            attention.append(
                {
                    "what": f"{name} is failing",
                    "why": f"{reason}; the next poll tries again, `syncd validate` asks the app now",
                    "command": "syncd validate",
                }
            )
        if queue["dead"]:
            attention.append(
                {
                    "what": f"{_count(queue['dead'], 'dead letter')} for {name}",
                    "why": "writes or reads the app refused, not retried on their own: see why with "
                    "`syncd deadletters list`, fix the cause, then replay them",
                    "command": REPLAY_COMMAND,
                }
            )
        if held.get(name):
            attention.append(
                {
                    "what": f"{_count(held[name], 'delete')} in {name} held by the mass-delete guard",
                    "why": "a complete listing missed too many linked records, so nothing was deleted; "
                    "`syncd deletes list` shows the evidence; check the app, then approve the deletes "
                    "if they are real or reject them to keep the records",
                    "command": "syncd deletes approve ID  (or: syncd deletes reject ID)",
                }
            )
    if open_conflicts:
        attention.append(
            {
                "what": f"{_count(open_conflicts, 'open conflict')}",
                "why": "fields parked until a person picks a value: `syncd conflicts list` shows them; "
                "settle one with `syncd conflicts resolve ID --take APP`, or many at once",
                "command": "syncd conflicts resolve --all --take APP",
            }
        )
    daemons = _daemons(store, now)
    digests = sorted({str(d["mappings"]) for d in daemons if d.get("mappings")})
    if len(digests) > 1:
        running = "; ".join(
            f"{d['id']} on {d.get('host') or '?'}: {d['mappings']}" for d in daemons if d.get("mappings")
        )
        attention.append(
            {
                "what": f"daemons run {len(digests)} different versions of the mapping files",
                "why": "each daemon decides conflicts and deletes by its own files, so the outcome "
                f"depends on which daemon serves an app ({running}); give every daemon the same "
                "mapping files: each reloads them within seconds of a change (or on SIGHUP)",
                "command": "syncd validate",
            }
        )
    return {
        "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "apps": report_apps,
        "open_conflicts": open_conflicts,
        "pending_deletes": sum(held.values()),
        "dead_letters": sum(q["dead"] for q in outbox.values()),
        "outbox_depth": sum(q["pending"] for q in outbox.values()),
        "daemons": daemons,
        "attention": attention,
        "needs_attention": bool(attention),
    }
