"""Scenario ``sql_sync``: initial sync of two SQLite apps against its floor, at several sizes.

For each size N: the left table holds N rows, the right N/2, and 0.3 N people are in both
(the shape of issue 14's headline figure: 100,000 + 50,000 rows, 30,000 in both). Measured:

* the floor: a plain read of both tables and an ``executemany`` copy of each side's rows into
  the other side's columns — what any tool must at least do to sync them;
* the initial sync (one ``run_cycle`` in a child process, start-up included): wall time,
  records read per second, its ratio to the floor, peak RSS (the child's high-water mark from
  ``os.wait4``), change-log rows written, and state-store bytes per record;
* settling: the cycles after it, until one writes nothing, and the records each re-read;
* steady state: one cycle after 0.1 %, 1 % and 10 % of the left rows changed.

Records per second at each size show whether the sync is linear (the same figure at every size).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

LEFT_DDL = (
    "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, "
    "phone TEXT, updated_at TEXT)"
)
RIGHT_DDL = (
    "CREATE TABLE people (contact_id INTEGER PRIMARY KEY, email_address TEXT, given_name TEXT, "
    "family_name TEXT, mobile TEXT, modified TEXT)"
)
#: Each table's last-modified column is indexed, as the SQL connector's README asks of a table
#: synced incrementally: without it every incremental page is a scan and sort of the whole table
#: (0.7 s a page at 1.2M rows), and the floor's copies carry the same index.
LEFT_INDEX = "CREATE INDEX contacts_updated_at ON contacts (updated_at)"
RIGHT_INDEX = "CREATE INDEX people_modified ON people (modified)"
LEFT_COLUMNS = ("email", "first_name", "last_name", "phone", "updated_at")
RIGHT_COLUMNS = ("email_address", "given_name", "family_name", "mobile", "modified")
STAMP = "2026-01-01T00:00:00.000000Z"

DEFAULT_SIZES = (10_000, 100_000)
FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (300, 1_200)
STEADY_SHARES = (0.001, 0.01, 0.1)


def shape(size: int) -> tuple[int, int, int]:
    """(left rows, right rows, rows in both) for size N."""
    return size, size // 2, (size * 3) // 10


def make_dbs(root: Path, size: int) -> None:
    """The two apps' tables: the shared people have the same email in another case and spacing."""
    left_rows, right_rows, shared = shape(size)
    left = sqlite3.connect(root / "left.db")
    left.execute(LEFT_DDL)
    left.execute(LEFT_INDEX)
    left.executemany(
        f"INSERT INTO contacts ({', '.join(LEFT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
        (
            (f"p{i}@example.com", f"F{i}", f"L{i}", f"+1415{i % 10_000_000:07d}", STAMP)
            for i in range(left_rows)
        ),
    )
    left.commit()
    left.close()
    right = sqlite3.connect(root / "right.db")
    right.execute(RIGHT_DDL)
    right.execute(RIGHT_INDEX)
    first = left_rows - shared
    right.executemany(
        f"INSERT INTO people ({', '.join(RIGHT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
        ((f" P{i}@Example.com", f"F{i}", f"L{i}", None, STAMP) for i in range(first, first + right_rows)),
    )
    right.commit()
    right.close()


def floor(root: Path) -> dict[str, Any]:
    """A plain read of both tables plus an ``executemany`` copy of each into the other's columns."""
    start = time.perf_counter()
    left = sqlite3.connect(root / "left.db")
    right = sqlite3.connect(root / "right.db")
    left_rows = left.execute(f"SELECT id, {', '.join(LEFT_COLUMNS)} FROM contacts").fetchall()
    right_rows = right.execute(f"SELECT contact_id, {', '.join(RIGHT_COLUMNS)} FROM people").fetchall()
    left.close()
    right.close()
    to_right = sqlite3.connect(root / "floor_right.db")
    to_right.execute(RIGHT_DDL)
    to_right.execute(RIGHT_INDEX)
    to_right.executemany(
        f"INSERT INTO people ({', '.join(RIGHT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
        (row[1:] for row in left_rows),
    )
    to_right.commit()
    to_right.close()
    to_left = sqlite3.connect(root / "floor_left.db")
    to_left.execute(LEFT_DDL)
    to_left.execute(LEFT_INDEX)
    to_left.executemany(
        f"INSERT INTO contacts ({', '.join(LEFT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
        (row[1:] for row in right_rows),
    )
    to_left.commit()
    to_left.close()
    seconds = time.perf_counter() - start
    records = len(left_rows) + len(right_rows)
    return {
        "seconds": round(seconds, 3),
        "records": records,
        "records_per_second": round(records / seconds, 1),
    }


def run_cycles(config: Path, *, cycles: int = 1, until_quiet: bool = False) -> dict[str, Any]:
    """Cycles in a child process: their counts, the child's wall time (start-up included) and its
    peak RSS (high-water mark, from the child's own resource usage)."""
    command = [sys.executable, "-m", "benchmarks._cycles", str(config), "--cycles", str(cycles)]
    if until_quiet:
        command.append("--until-quiet")
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, cwd=Path(__file__).parent.parent
        )
        assert child.stdout is not None
        out = child.stdout.read()
        child.stdout.close()
        # wait4 (not wait) returns this child's own rusage; its ru_maxrss counts what the
        # parent held at the fork too, so the child's own high-water mark is used where known.
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"sync child exited with {child.returncode}: {text}")
    report = json.loads(out)
    peak_kib = report["peak_rss_kib"] if report["peak_rss_kib"] is not None else usage.ru_maxrss
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "cycles": report["cycles"],
    }


def state_figures(root: Path) -> dict[str, Any]:
    """Change-log rows, entities, links and bytes of the state store (database + write-ahead log)."""
    files = [root / "state.db", root / "state.db-wal"]
    size = sum(f.stat().st_size for f in files if f.exists())
    conn = sqlite3.connect(root / "state.db")
    try:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("changelog", "entities", "links", "outbox")
        }
    finally:
        conn.close()
    return {"state_bytes": size, **{f"{table}_rows": n for table, n in counts.items()}}


def change_left(root: Path, share: float, round_: int) -> int:
    """Edit ``share`` of the left rows (a different first name, stamped now); the count edited."""
    conn = sqlite3.connect(root / "left.db")
    total = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
    count = max(1, int(total * share))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn.execute(
        "UPDATE contacts SET first_name = ?, updated_at = ? WHERE id IN (SELECT id FROM contacts ORDER BY id LIMIT ?)",
        (f"Edited{round_}", stamp, count),
    )
    conn.commit()
    conn.close()
    return int(count)


def one_size(size: int, *, steady: bool) -> dict[str, Any]:
    left_rows, right_rows, shared = shape(size)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-sql-") as tmp:
        root = Path(tmp)
        make_dbs(root, size)
        (root / "contacts.toml").write_text(MAPPING)
        config = root / "config.toml"
        config.write_text(CONFIG.format(root=root))
        base = floor(root)
        initial = run_cycles(config)
        first = initial["cycles"][0]
        records = int(first["read"])
        state = state_figures(root)
        entities = state["entities_rows"]
        settle = run_cycles(config, cycles=6, until_quiet=True)
        result: dict[str, Any] = {
            "size": size,
            "left_rows": left_rows,
            "right_rows": right_rows,
            "rows_in_both": shared,
            "floor": base,
            "initial": {
                "seconds": initial["seconds"],
                "cycle_seconds": first["seconds"],
                "records_read": records,
                "records_per_second": round(records / initial["seconds"], 1),
                "writes": first["writes"],
                "created": first["created"],
                "errors": first["errors"],
                "peak_rss_mib": initial["peak_rss_mib"],
                **state,
                "changelog_rows_per_entity": round(state["changelog_rows"] / max(entities, 1), 2),
                "state_bytes_per_record": round(state["state_bytes"] / max(records, 1), 1),
            },
            "times_the_floor": round(initial["seconds"] / base["seconds"], 1),
            "settle": {
                "cycles": settle["cycles"],
                "cycles_with_writes": sum(1 for c in settle["cycles"] if c["writes"]),
                "records_re_read": sum(int(c["read"]) for c in settle["cycles"]),
                "echo_writes": sum(int(c["writes"]) for c in settle["cycles"]),
            },
        }
        if steady:
            result["steady_state"] = []
            for round_, share in enumerate(STEADY_SHARES):
                edited = change_left(root, share, round_)
                run = run_cycles(config)
                cycle = run["cycles"][0]
                result["steady_state"].append(
                    {
                        "share_changed": share,
                        "rows_changed": edited,
                        "cycle_seconds": cycle["seconds"],
                        "process_seconds": run["seconds"],
                        "read": cycle["read"],
                        "writes": cycle["writes"],
                    }
                )
        return result


def run(*, quick: bool, full: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    """The scenario's result: one entry per size, then how records/s held up as size grew."""
    chosen = sizes or list(QUICK_SIZES if quick else FULL_SIZES if full else DEFAULT_SIZES)
    # Steady state is measured once, on the size nearest 100,000 linked records.
    steady_size = min(chosen, key=lambda s: abs(s - 100_000))
    per_size = []
    for size in chosen:
        print(f"sql_sync: size {size:,} ...", file=sys.stderr, flush=True)
        per_size.append(one_size(size, steady=size == steady_size))
    rates = [entry["initial"]["records_per_second"] for entry in per_size]
    return {
        "scenario": "sql_sync",
        "sizes": per_size,
        "ratios": {
            "times_the_floor": {str(e["size"]): e["times_the_floor"] for e in per_size},
            # Linear means the same records/s at every size: 1.0 here, below 1 = super-linear.
            "records_per_second_vs_smallest": {
                str(e["size"]): round(rate / rates[0], 2) for e, rate in zip(per_size, rates, strict=True)
            },
        },
    }
