"""``python -m syncd.testing.fakes.zendesk``: run the Zendesk fake standalone (``syncd demo``, manual poking)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from ._app import ZendeskFake


async def serve(args: argparse.Namespace) -> None:
    """Run a fake until SIGINT/SIGTERM."""
    fake = ZendeskFake(
        agent_email=args.email,
        api_token=args.token,
        oauth_token=args.oauth_token,
        webhook_secret=args.secret,
        webhook_url=args.webhook_url,
        rate_limit=args.rate_limit,
    )
    fake.add_user_field("plan", "Plan", "text")
    for n in range(args.seed):
        fake.seed_user(name=f"Person {n}", email=f"person{n}@example.com")
    await fake.start(args.port)
    print(f"Zendesk fake listening on {fake.url}/api/v2", flush=True)
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
        prog="python -m syncd.testing.fakes.zendesk",
        description="Serve a fake Zendesk Support API v2 (users, organizations) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--email", default="admin@syncd-fake.example", help="agent email of the API token")
    parser.add_argument("--token", default="zendesk-test-token", help="API token to accept")
    parser.add_argument("--oauth-token", default="zendesk-oauth-token", help="OAuth bearer token to accept")
    parser.add_argument("--secret", default="zendesk-webhook-secret", help="webhook signing secret")
    parser.add_argument("--webhook-url", default=None, help="where to POST webhook events")
    parser.add_argument("--rate-limit", type=int, default=700, help="requests per rolling minute")
    parser.add_argument("--seed", type=int, default=0, help="number of demo users to create")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
