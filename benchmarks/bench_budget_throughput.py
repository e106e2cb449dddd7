"""Benchmark: budget-bound throughput, records/s into HubSpot against its documented ceiling.

    python -m benchmarks.bench_budget_throughput [--quick] [--out benchmarks/results/budget_throughput.json]

A SQL table of ``rows`` people is synced into a HubSpot fake that enforces HubSpot's documented
budget of 190 requests per rolling 10 s (a 429 beyond), with the connector configured to that
budget (19 requests/s). The initial sync creates every contact (``batch/upsert``, 100 a call),
then every row changes and the next cycle updates them all (a ``batch/read`` re-read and a
``batch/update`` per 100). The ceiling is what the budget allows: 19 calls/s x 100 records per
call = 1,900 creates/s, and half that for updates (two calls per 100). Reported: records/s and
its share of the ceiling, HubSpot calls per second against the 19/s budget, and the 429s met
(target: 0, and >= 90 % of the budget busy while writes are due: from the first write call to
the last, ``while_writing``). Searches (the incremental read, and the read after the writes that
steps the cursor past them) have HubSpot's own limit of about 5 a second; they are counted
against it apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

from ._machine import machine

TOKEN = "pat-bench"
SECRET = "bench-client-secret"
BUDGET_PER_TEN_SECONDS = 190
PER_SECOND = BUDGET_PER_TEN_SECONDS / 10
#: The connector's default pace for searches (HubSpot allows about 5 a second per account).
SEARCH_PER_SECOND = 4.0
BATCH = 100

MAPPING = """
name = "people"
key = "email"
initial_conflict = "policy"
[apps.product]
object = "people"
[apps.crm]
object = "contacts"
[conflict]
policy = "priority"
priority = ["product", "crm"]
[fields.email]
transforms = ["email"]
apps.product = "email"
apps.crm = "properties.email"
[fields.first_name]
transforms = ["trim"]
apps.product = "first_name"
apps.crm = "properties.firstname"
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
properties = ["email", "firstname"]
requests_per_second = {rps}
"""


def _phase(
    fake: HubSpotFake, since: int, seconds: float, records: int, calls_per_batch: int
) -> dict[str, Any]:
    requests = fake.captured[since:]

    def kind(path: str) -> str:
        last = path.rsplit("/", 1)[-1]
        return "write" if last in ("upsert", "create", "update") else last

    kinds = Counter(kind(c.path) for c in requests)
    ceiling = PER_SECOND * BATCH / calls_per_batch
    # While writes are due: from the first write call to the last one. Every call that arrived
    # in that window counts against the budget (the re-reads before updates among them);
    # n calls evenly spread at the budget's rate span (n - 1) / rate seconds.
    writes = [c.at for c in requests if kind(c.path) == "write"]
    first, last = (min(writes), max(writes)) if writes else (0.0, 0.0)
    in_window = [c for c in requests if first <= c.at <= last]
    span = last - first
    window_rate = (len(in_window) - 1) / span if span > 0 else None
    searches = kinds.get("search", 0)
    return {
        "seconds": round(seconds, 2),
        "records": records,
        "records_per_second": round(records / seconds, 1),
        "ceiling_records_per_second": ceiling,
        "share_of_ceiling": round(records / seconds / ceiling, 3),
        "hubspot_calls": dict(kinds),
        "hubspot_calls_per_second": round(len(requests) / seconds, 2),
        "share_of_budget_busy": round(len(requests) / seconds / PER_SECOND, 3),
        "while_writing": {
            "seconds": round(span, 2),
            "calls": len(in_window),
            "calls_per_second": None if window_rate is None else round(window_rate, 2),
            "share_of_budget_busy": None if window_rate is None else round(window_rate / PER_SECOND, 3),
            # Each call takes one slot of the budget's pace: n calls fill span + one slot.
            "records_per_second": round(records / (span + 1 / PER_SECOND), 1) if writes else None,
        },
        # Searches (the incremental reads, and the read after the writes that steps the cursor
        # past them) wait on HubSpot's own search limit, not on the budget above.
        "searches": searches,
        "searches_per_second_allowed": SEARCH_PER_SECOND,
        "seconds_of_searches_at_their_limit": round(searches / SEARCH_PER_SECOND, 2),
    }


async def measure(rows: int) -> dict[str, Any]:
    fake = HubSpotFake(token=TOKEN, client_secret=SECRET, ten_second_limit=BUDGET_PER_TEN_SECONDS)
    await fake.start()
    os.environ["SYNCD_APPS__CRM__SETTINGS__TOKEN"] = TOKEN
    os.environ["SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET"] = SECRET
    out: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
            root = Path(tmp)
            with sqlite3.connect(root / "product.db") as conn:
                conn.execute(
                    "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, updated_at TEXT)"
                )
                conn.executemany(
                    "INSERT INTO people (email, first_name, updated_at) VALUES (?, ?, ?)",
                    [(f"p{i}@bench.io", f"F{i}", "2026-01-01T00:00:00.000000Z") for i in range(rows)],
                )
            (root / "people.toml").write_text(MAPPING)
            config = root / "config.toml"
            config.write_text(CONFIG.format(root=root, hubspot=fake.url, rps=PER_SECOND))
            for name, calls_per_batch in (("creates", 1), ("updates", 2)):
                if name == "updates":
                    # Let the rolling window empty, then change every row.
                    await asyncio.sleep(10.5)
                    with sqlite3.connect(root / "product.db") as conn:
                        conn.execute(
                            "UPDATE people SET first_name = first_name || ' edited', "
                            "updated_at = '2026-06-01T00:00:00.000000Z'"
                        )
                since, limited = len(fake.captured), fake.rate_limited
                settings = load_settings(config)
                async with open_runner(settings, source=str(config)) as runner:
                    started = time.perf_counter()
                    stats = await runner.run_cycle()
                    seconds = time.perf_counter() - started
                written = stats.as_dict()["apps"]["crm"]["writes"]
                out[name] = {
                    **_phase(fake, since, seconds, written, calls_per_batch),
                    "hubspot_429s": fake.rate_limited - limited,
                }
    finally:
        await fake.stop()
    return out


def run(quick: bool) -> dict[str, Any]:
    rows = 3000 if quick else 20_000
    return {
        "benchmark": "budget_throughput",
        "quick": quick,
        "rows": rows,
        "budget_requests_per_ten_seconds": BUDGET_PER_TEN_SECONDS,
        "machine": machine(),
        **asyncio.run(measure(rows)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "budget_throughput.json"
    )
    args = parser.parse_args()
    result = run(args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
