"""Benchmark: initial sync between two SQLite apps, then a quiet cycle and a small-change cycle.

    python benchmarks/bench_initial_sync.py [--rows 20000] [--overlap 0.6] [--out benchmarks/results/initial_sync.json]

Measures records per second of the initial sync (records read from both apps / wall time), the
time of a cycle with nothing to do and of one with 100 changed rows (cycle time should follow the
number of changes, not of records), and the process's peak memory. Results are written as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from syncd.app import open_runner
from syncd.settings import load_settings

MAPPING = """
name = "contacts"
key = "email"
initial_conflict = "policy"
[apps.left]
object = "contacts"
[apps.right]
object = "people"
[conflict]
policy = "priority"
priority = ["left", "right"]
[delete]
policy = "propagate"
[fields.email]
transforms = ["email"]
apps.left = "email"
apps.right = "email_address"
[fields.first_name]
transforms = ["trim"]
apps.left = "first_name"
apps.right = "given_name"
[fields.last_name]
transforms = ["trim"]
apps.left = "last_name"
apps.right = "family_name"
[fields.phone]
transforms = [{ e164 = "US" }]
apps.left = "phone"
apps.right = "mobile"
"""

CONFIG = """
state = "state.db"
mappings = ["contacts.toml"]
log_level = "error"
batch_size = 500
[apps.left]
connector = "sql"
[apps.left.settings]
url = "sqlite:///{root}/left.db"
table = "contacts"
updated_at = "updated_at"
[apps.right]
connector = "sql"
[apps.right.settings]
url = "sqlite:///{root}/right.db"
table = "people"
primary_key = "contact_id"
updated_at = "modified"
"""


def make_dbs(root: Path, rows: int, overlap: float) -> None:
    shared = int(rows * overlap)
    left = sqlite3.connect(root / "left.db")
    left.execute(
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, phone TEXT, updated_at TEXT)"
    )
    left.executemany(
        "INSERT INTO contacts (email, first_name, last_name, phone, updated_at) VALUES (?, ?, ?, ?, ?)",
        [
            (
                f"p{i}@example.com",
                f"F{i}",
                f"L{i}",
                f"+1415{i % 10_000_000:07d}",
                "2026-01-01T00:00:00.000000Z",
            )
            for i in range(rows)
        ],
    )
    left.commit()
    left.close()
    right = sqlite3.connect(root / "right.db")
    right.execute(
        "CREATE TABLE people (contact_id INTEGER PRIMARY KEY, email_address TEXT, given_name TEXT, family_name TEXT, "
        "mobile TEXT, modified TEXT)"
    )
    right.executemany(
        "INSERT INTO people (email_address, given_name, family_name, mobile, modified) VALUES (?, ?, ?, ?, ?)",
        [
            (f" P{i}@Example.com", f"F{i}", f"L{i}", None, "2026-01-01T00:00:00.000000Z")
            for i in range(rows - shared, 2 * rows - shared)
        ],
    )
    right.commit()
    right.close()


async def cycle(config: Path) -> tuple[float, dict[str, Any]]:
    settings = load_settings(config)
    async with open_runner(settings, source=str(config)) as runner:
        start = time.perf_counter()
        stats = await runner.run_cycle()
        return time.perf_counter() - start, stats.as_dict()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=20_000, help="rows in each app")
    parser.add_argument("--overlap", type=float, default=0.6, help="share of rows present in both apps")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "initial_sync.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        root = Path(tmp)
        make_dbs(root, args.rows, args.overlap)
        (root / "contacts.toml").write_text(MAPPING)
        config = root / "config.toml"
        config.write_text(CONFIG.format(root=root))
        initial, stats = asyncio.run(cycle(config))
        quiet, quiet_stats = asyncio.run(cycle(config))
        conn = sqlite3.connect(root / "left.db")
        conn.execute(
            "UPDATE contacts SET first_name = first_name || 'x', updated_at = '2027-01-01T00:00:00.000000Z' WHERE id <= 100"
        )
        conn.commit()
        conn.close()
        changed, changed_stats = asyncio.run(cycle(config))
    result = {
        "benchmark": "initial_sync_two_sqlite_apps",
        "rows_per_app": args.rows,
        "overlap": args.overlap,
        "records_read": stats["read"],
        "writes": stats["writes"],
        "initial_seconds": round(initial, 3),
        "records_per_second": round(stats["read"] / initial, 1),
        "quiet_cycle_seconds": round(quiet, 3),
        "quiet_cycle_writes": quiet_stats["writes"],
        "hundred_changes_cycle_seconds": round(changed, 3),
        "hundred_changes_cycle_writes": changed_stats["writes"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
