"""``python -m syncd.testing.fakes.hubspot``: run the HubSpot fake standalone (``syncd demo``, manual poking)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from ._app import HubSpotFake


async def serve(args: argparse.Namespace) -> None:
    """Run a fake until SIGINT/SIGTERM (for ``syncd demo`` and manual poking)."""
    fake = HubSpotFake(
        token=args.token,
        client_secret=args.secret,
        webhook_url=args.webhook_url,
        index_lag_seconds=args.index_lag,
        ten_second_limit=args.ten_second_limit,
    )
    for n in range(args.seed):
        fake.seed({"email": f"person{n}@example.com", "firstname": "Person", "lastname": str(n)})
    await fake.start(args.port)
    print(f"HubSpot fake listening on {fake.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m syncd.testing.fakes.hubspot",
        description="Serve a fake HubSpot CRM v3 API (contacts, companies) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--token", default="hubspot-test-token", help="bearer token to accept")
    parser.add_argument("--secret", default="hubspot-test-secret", help="client secret signing webhooks")
    parser.add_argument("--webhook-url", default=None, help="where to POST webhook batches")
    parser.add_argument("--index-lag", type=float, default=2.0, help="search index lag in seconds")
    parser.add_argument("--ten-second-limit", type=int, default=190, help="requests per rolling 10 s")
    parser.add_argument("--seed", type=int, default=0, help="number of demo contacts to create")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
