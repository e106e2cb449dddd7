"""Benchmark: seconds from an edit in HubSpot to the write in a SQL table, through `syncd run`.

    python benchmarks/bench_webhook_latency.py [--edits 20] [--out benchmarks/results/webhook_latency.json]

The fake HubSpot sends its signed webhook to a real `syncd run` subprocess whose polls are an hour
apart, so only the webhook path can make the write. Reports the median, p90 and max latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from syncd.testing.fakes.hubspot import HubSpotFake

TOKEN = "pat-bench"
SECRET = "bench-client-secret"

MAPPING = """
name = "contacts"
key = "email"
[apps.crm]
object = "contacts"
[apps.product]
object = "users"
[conflict]
policy = "priority"
priority = ["crm", "product"]
[fields.email]
transforms = ["email"]
apps.crm = "properties.email"
apps.product = "email"
[fields.name]
transforms = ["trim"]
apps.crm = "properties.firstname"
apps.product = "name"
"""

CONFIG = """
state = "state.db"
mappings = ["contacts.toml"]
log_format = "json"
log_level = "warning"
[daemon]
port = 0
[apps.crm]
connector = "hubspot"
poll_interval = 3600
[apps.crm.settings]
base_url = "{url}"
properties = ["email", "firstname"]
[apps.product]
connector = "sql"
poll_interval = 3600
[apps.product.settings]
url = "sqlite:///{root}/product.db"
table = "users"
updated_at = "updated_at"
"""


def name_of(db: Path, email: str) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT name FROM users WHERE email = ?", (email,)).fetchone()
    return row[0] if row else None


async def wait_until(check: Callable[[], object], within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the change did not arrive")
        await asyncio.sleep(0.005)


async def measure(edits: int) -> list[float]:
    fake = HubSpotFake(token=TOKEN, client_secret=SECRET)
    await fake.start()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        root = Path(tmp)
        with sqlite3.connect(root / "product.db") as conn:
            conn.execute(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, updated_at TEXT)"
            )
        ids = [fake.seed({"email": f"p{i}@example.com", "firstname": f"P{i}"}) for i in range(edits)]
        (root / "contacts.toml").write_text(MAPPING)
        (root / "config.toml").write_text(CONFIG.format(url=fake.url, root=root))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        env |= {"SYNCD_APPS__CRM__SETTINGS__TOKEN": TOKEN, "SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET": SECRET}
        ready = root / "ready.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syncd.cli",
            "--config",
            str(root / "config.toml"),
            "run",
            "--ready-file",
            str(ready),
            cwd=root,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await wait_until(ready.exists, 30)
            url = json.loads(ready.read_text())["url"]
            await wait_until(
                lambda: name_of(root / "product.db", f"p{edits - 1}@example.com") is not None, 60
            )
            fake.webhook_url = f"{url}/webhooks/crm"
            latencies = []
            for i, rid in enumerate(ids):
                started = time.perf_counter()
                fake.edit(rid, {"firstname": f"Edited {i}"})
                await wait_until(
                    lambda i=i: name_of(root / "product.db", f"p{i}@example.com") == f"Edited {i}", 30
                )
                latencies.append(time.perf_counter() - started)
            return latencies
        finally:
            proc.terminate()
            await proc.wait()
            await fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[1])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "webhook_latency.json"
    )
    args = parser.parse_args()
    latencies = sorted(asyncio.run(measure(args.edits)))
    result = {
        "benchmark": "webhook_edit_to_write_latency",
        "edits": len(latencies),
        "median_seconds": round(statistics.median(latencies), 3),
        "p90_seconds": round(latencies[int(len(latencies) * 0.9) - 1], 3),
        "max_seconds": round(latencies[-1], 3),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
