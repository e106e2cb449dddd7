"""Child process of the SQL scenarios: run sync cycles on one config and print their counts as JSON.

    python -m benchmarks._cycles CONFIG [--cycles N] [--until-quiet]

Runs in its own process so that its peak memory is syncd's alone: it prints
``{"cycles": [...], "peak_rss_kib": N}``, N being this process image's high-water mark
(``VmHWM``). The parent's ``ru_maxrss`` of the child would not do: Linux carries that figure
across ``exec``, so it counts the parent's memory at the fork (a 1M-row benchmark parent that
had just read both tables for its floor reported 736 MiB for a sync that never passed 110).
``--until-quiet`` stops after the first cycle that writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from syncd.app import open_runner
from syncd.settings import load_settings


async def cycles(config: Path, count: int, until_quiet: bool) -> list[dict[str, Any]]:
    settings = load_settings(config)
    out: list[dict[str, Any]] = []
    async with open_runner(settings, source=str(config)) as runner:
        for _ in range(count):
            start = time.perf_counter()
            stats = (await runner.run_cycle()).as_dict()
            out.append(
                {
                    "seconds": round(time.perf_counter() - start, 3),
                    "read": stats["read"],
                    "writes": stats["writes"],
                    "created": stats["created"],
                    "updated": stats["updated"],
                    "linked": stats["linked"],
                    "changes": stats["changes"],
                    "errors": stats["errors"],
                    "apps": {
                        name: {"read": app["read"], "writes": app["writes"]}
                        for name, app in stats["apps"].items()
                    },
                }
            )
            if until_quiet and stats["writes"] == 0:
                break
    return out


def peak_rss_kib() -> int | None:
    """This process image's resident high-water mark in KiB (Linux), or None where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--cycles", type=int, default=1)
    parser.add_argument("--until-quiet", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(cycles(args.config, args.cycles, args.until_quiet))
    sys.stdout.write(json.dumps({"cycles": result, "peak_rss_kib": peak_rss_kib()}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
