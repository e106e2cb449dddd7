"""Run the benchmark suite: ``python -m benchmarks [--quick] [--full] [--only NAME] [--out DIR]``.

Each scenario writes ``<out>/<name>.json`` (``<name>.quick.json`` with ``--quick``) holding its
figures, their ratios and the machine they were taken on. ``--quick`` runs tiny sizes: it checks
that the suite works (CI runs it), not how fast syncd is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import bench_batch_writes, bench_budget_throughput, bench_webhook_latency, sql_sync
from ._machine import machine

Scenario = Callable[..., dict[str, Any]]

#: Scenario name -> function(quick=..., full=...) returning its JSON-ready result.
SCENARIOS: dict[str, Scenario] = {
    "sql_sync": sql_sync.run,
    # The app scenarios (HubSpot and Mailchimp fakes on loopback) have one size and a quick one.
    "batch_writes": lambda quick, full, sizes: bench_batch_writes.run(quick),
    "budget_throughput": lambda quick, full, sizes: bench_budget_throughput.run(quick),
    "webhook_latency": lambda quick, full, sizes: bench_webhook_latency.run(quick),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="syncd's benchmark suite.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the suite runs (CI)")
    parser.add_argument("--full", action="store_true", help="also the largest sizes (1M rows per side)")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only this scenario")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="where JSON goes")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help="sizes of the SQL scenario instead of its defaults (e.g. 10000 30000)",
    )
    args = parser.parse_args(argv)
    names = args.only or sorted(SCENARIOS)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        before = machine()
        start = time.perf_counter()
        result = SCENARIOS[name](quick=args.quick, full=args.full, sizes=args.sizes)
        document = {
            **result,
            "mode": "quick" if args.quick else "full" if args.full else "default",
            "seconds": round(time.perf_counter() - start, 1),
            "machine": before,
            "load_average_after": machine()["load_average"],
        }
        path = args.out / (f"{name}.quick.json" if args.quick else f"{name}.json")
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"{name}: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
