"""Benchmark: throughput of 1, 2 and 3 `syncd run` daemons sharing one PostgreSQL state.

    python benchmarks/bench_daemons.py [--records 20000] [--daemons 1 2 3] [--runs 1]
                                       [--out benchmarks/results/daemons.json] [--quick]

Each run starts the HubSpot and Mailchimp fakes of ``syncd.testing.scale`` (HubSpot enforcing
its documented 190 requests per 10 s), a fresh PostgreSQL database (``SYNCD_TEST_POSTGRES_URL``,
else a throwaway server from the ``pgserver`` wheel), then N daemons on it, and times the initial
sync until both apps hold every person. Reports seconds, records per second (records read from
both apps), requests per app and any 429 or refused connection, so the ratios between 1, 2 and 3
daemons are measured in one run on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from syncd.testing.postgres import create_database, drop_database, start_server
from syncd.testing.process import ADMIN_TOKEN, DaemonProcess, base_env, wait_for
from syncd.testing.scale import Scenario


async def one_run(records: int, daemons: int, state: str, folder: Path) -> dict[str, Any]:
    apps = await Scenario(records).start()
    procs = []
    try:
        config = apps.write_config(folder, state)
        env = base_env(SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN, **apps.env())
        procs = [DaemonProcess(config, env, name=f"d{n}") for n in range(daemons)]
        started = time.monotonic()
        for proc in procs:
            proc.spawn()
        expected = apps.initial_names()
        await wait_for(lambda: apps.converged(expected), 3600, what="convergence", every=0.25)
        seconds = time.monotonic() - started
    finally:
        for proc in procs:
            proc.kill()
        await apps.stop()
    read = 2 * 2 * apps.quarter  # each app held 2q people at the start
    return {
        "daemons": daemons,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_second": round(read / seconds, 1),
        "requests": apps.requests(),
        "hubspot_429": apps.hubspot.rate_limited,
        "mailchimp_refused": apps.mailchimp.throttled,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {str(n): [] for n in args.daemons}
    with tempfile.TemporaryDirectory(prefix="syncd-bench-daemons-") as tmp:
        server = start_server(Path(tmp) / "postgres")
        for run in range(args.runs):
            for n in args.daemons:
                state = create_database(server)
                folder = Path(tmp) / f"run{run}-{n}"
                folder.mkdir()
                try:
                    result = await one_run(args.records, n, state, folder)
                finally:
                    drop_database(server, state)
                print(json.dumps(result), flush=True)
                results[str(n)].append(result)
    summary = {
        n: {
            "seconds_median": statistics.median(r["seconds"] for r in rs),
            "records_per_second_median": statistics.median(r["records_per_second"] for r in rs),
        }
        for n, rs in results.items()
    }
    base = summary[str(args.daemons[0])]["records_per_second_median"]
    for entry in summary.values():
        entry["speedup"] = round(entry["records_per_second_median"] / base, 2)
    return {
        "benchmark": "daemons",
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "records": args.records,
        "runs": results,
        "summary": summary,
    }


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--daemons", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2,000 records, one run (a smoke test)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/daemons.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.runs = 2_000, 1
    report = asyncio.run(main(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    sys.exit(cli())
