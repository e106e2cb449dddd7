"""Benchmark: API calls per app for creates and updates, against the batch minimum.

    python -m benchmarks.bench_batch_writes [--quick] [--rows 5000] [--out benchmarks/results/batch_writes.json]

A SQL table of ``rows`` people syncs to HubSpot contacts and to a Mailchimp audience (both
fakes on loopback, in this process). Four cycles: the initial sync (``rows`` creates in each
app), a quiet cycle, a cycle after every row's name changed (``rows`` updates in each app) and
another quiet cycle. The fakes count every request: write calls, reads, lookups. The batch
minimum is ``ceil(rows / 500)`` write calls for Mailchimp (batch subscribe) and
``ceil(rows / 100)`` for HubSpot (batch endpoints); the issue's target is at most 1.05 times
that. Writes in the quiet cycles are echo writes and must be 0. Calls are counted, not timed:
the result does not depend on the machine's speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from syncd.app import open_runner
from syncd.settings import load_settings
from syncd.testing.fakes.hubspot import HubSpotFake
from syncd.testing.fakes.mailchimp import MailchimpFake

from ._machine import machine

TOKEN = "pat-bench"
SECRET = "bench-client-secret"
API_KEY = "0123456789abcdef0123456789abcdef-us1"
LIST_ID = "a1b2c3d4e5"
MAILCHIMP_BATCH = 500
HUBSPOT_BATCH = 100

MAPPING = """
name = "people"
key = "email"
initial_conflict = "policy"
[apps.product]
object = "people"
[apps.crm]
object = "contacts"
[apps.email]
object = "members"
[conflict]
policy = "priority"
priority = ["product", "crm", "email"]
[fields.email]
transforms = ["email"]
apps.product = "email"
apps.crm = "properties.email"
apps.email = "email_address"
[fields.first_name]
transforms = ["trim"]
apps.product = "first_name"
apps.crm = "properties.firstname"
apps.email = "merge_fields.FNAME"
[fields.last_name]
transforms = ["trim"]
apps.product = "last_name"
apps.crm = "properties.lastname"
apps.email = "merge_fields.LNAME"
"""

CONFIG = """
state = "state.db"
mappings = ["people.toml"]
log_level = "error"
batch_size = 500
[apps.product]
connector = "sql"
[apps.product.settings]
url = "sqlite:///{root}/product.db"
table = "people"
updated_at = "updated_at"
[apps.crm]
connector = "hubspot"
[apps.crm.settings]
base_url = "{hubspot}"
properties = ["email", "firstname", "lastname"]
requests_per_second = 10000
search_requests_per_second = 10000
[apps.email]
connector = "mailchimp"
[apps.email.settings]
base_url = "{mailchimp}"
list_id = "{list_id}"
status_if_new = "subscribed"
"""


def _kind(app: str, method: str, path: str) -> str:
    """What one request to a fake was: a record ``write``, a ``read``, a ``batch_read`` or a
    ``search`` (HubSpot), or ``setup`` (HubSpot's one-time property check and creation)."""
    if app == "hubspot":
        if "/crm/v3/properties/" in path:
            return "setup"
        if path.endswith("/search"):
            return "search"
        if path.endswith("/batch/read"):
            return "batch_read"
    return "write" if method in ("POST", "PATCH", "DELETE", "PUT") else "read"


def _count(app: str, requests: list[tuple[str, str]]) -> dict[str, int]:
    counted = Counter(_kind(app, method, path.partition("?")[0]) for method, path in requests)
    kinds = ("write", "read", "batch_read", "search", "setup") if app == "hubspot" else ("write", "read")
    return {k: counted.get(k, 0) for k in kinds}


async def _cycle(config: Path) -> tuple[float, dict[str, Any]]:
    settings = load_settings(config)
    async with open_runner(settings, source=str(config)) as runner:
        started = time.perf_counter()
        stats = await runner.run_cycle()
        return time.perf_counter() - started, stats.as_dict()


async def measure(rows: int) -> dict[str, Any]:
    hubspot = HubSpotFake(token=TOKEN, client_secret=SECRET)
    mailchimp = MailchimpFake(api_key=API_KEY, list_ids=(LIST_ID,))
    await hubspot.start()
    await mailchimp.start()
    os.environ["SYNCD_APPS__CRM__SETTINGS__TOKEN"] = TOKEN
    os.environ["SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET"] = SECRET
    os.environ["SYNCD_APPS__EMAIL__SETTINGS__API_KEY"] = API_KEY
    phases: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
            root = Path(tmp)
            with sqlite3.connect(root / "product.db") as conn:
                conn.execute(
                    "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, "
                    "last_name TEXT, updated_at TEXT)"
                )
                conn.executemany(
                    "INSERT INTO people (email, first_name, last_name, updated_at) VALUES (?, ?, ?, ?)",
                    [
                        (f"p{i}@bench.io", f"F{i}", f"L{i}", "2026-01-01T00:00:00.000000Z")
                        for i in range(rows)
                    ],
                )
            (root / "people.toml").write_text(MAPPING)
            config = root / "config.toml"
            config.write_text(
                CONFIG.format(root=root, hubspot=hubspot.url, mailchimp=mailchimp.url, list_id=LIST_ID)
            )

            async def phase(name: str) -> None:
                hubspot.requests.clear()
                mailchimp.requests.clear()
                seconds, stats = await _cycle(config)
                phases[name] = {
                    "seconds": round(seconds, 3),
                    "writes": {app: s.get("writes", 0) for app, s in stats["apps"].items()},
                    "hubspot_calls": _count("hubspot", list(hubspot.requests)),
                    "mailchimp_calls": _count("mailchimp", list(mailchimp.requests)),
                }

            await phase("creates")
            await phase("quiet_after_creates")
            with sqlite3.connect(root / "product.db") as conn:
                conn.execute(
                    "UPDATE people SET first_name = first_name || ' edited', "
                    "updated_at = '2026-06-01T00:00:00.000000Z'"
                )
            await phase("updates")
            await phase("quiet_after_updates")
    finally:
        await hubspot.stop()
        await mailchimp.stop()
    mc_min = math.ceil(rows / MAILCHIMP_BATCH)
    hs_min = math.ceil(rows / HUBSPOT_BATCH)
    summary = {
        "mailchimp_batch_minimum": mc_min,
        "hubspot_batch_minimum": hs_min,
        "mailchimp_create_write_calls_vs_minimum": round(
            phases["creates"]["mailchimp_calls"]["write"] / mc_min, 2
        ),
        "mailchimp_update_write_calls_vs_minimum": round(
            phases["updates"]["mailchimp_calls"]["write"] / mc_min, 2
        ),
        "hubspot_create_write_calls_vs_minimum": round(
            phases["creates"]["hubspot_calls"]["write"] / hs_min, 2
        ),
        "hubspot_update_write_calls_vs_minimum": round(
            phases["updates"]["hubspot_calls"]["write"] / hs_min, 2
        ),
        "echo_writes": sum(
            sum(phases[p]["writes"].values()) for p in ("quiet_after_creates", "quiet_after_updates")
        ),
        "target_ratio": 1.05,
    }
    return {"rows": rows, "phases": phases, "summary": summary}


def run(quick: bool) -> dict[str, Any]:
    """The scenario at its full size (5,000 rows) or, with ``quick``, a smoke-test size."""
    rows = 600 if quick else 5000
    result = asyncio.run(measure(rows))
    return {"benchmark": "batch_writes", "quick": quick, "machine": machine(), **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="a small run that checks the scenario works")
    parser.add_argument(
        "--rows", type=int, default=None, help="rows to sync (default 5000, 600 with --quick)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "batch_writes.json")
    args = parser.parse_args()
    if args.rows is not None:
        result = {
            "benchmark": "batch_writes",
            "quick": False,
            "machine": machine(),
            **asyncio.run(measure(args.rows)),
        }
    else:
        result = run(args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
