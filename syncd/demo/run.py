"""``syncd demo``: the whole newcomer's tour in one call, printed as it goes.

``run_demo`` starts the fakes, runs the first sync with live progress, starts the daemon, waits
until it has converged, prints the guide, and then either stops (``once``: exit code 0 when
everything converged) or prints each change as it happens until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from pathlib import Path

from rich.console import Console

from syncd.daemon import DaemonError, LeaseHeld
from syncd.store import AsyncStore

from .dataset import Dataset
from .feed import ChangeFeed
from .guide import GuideFacts, guide_lines
from .session import Convergence, DemoError, DemoSession

#: Exit code after Ctrl-C before the daemon was up (the shell's convention for SIGINT).
INTERRUPTED = 130
#: Printed once the change feed runs.
READY = "Changes appear below as the daemon makes them (times in UTC). Ctrl-C stops the demo."
#: Prose is wrapped at this width; commands never are.
WIDTH = 100


def say(console: Console, text: str = "") -> None:
    """Print one line as is: no markup, no highlighting, never wrapped."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def seeded_lines(data: Dataset, hubspot_url: str, mailchimp_url: str) -> list[str]:
    """What was planted in the fakes, in numbers."""
    planted = (
        f"Planted in them: {len(data.case_variants)} addresses spelt with capitals and "
        f"{len(data.invisible_variants)} with an invisible character (matched all the same), "
        f"{len(data.conflicts)} surnames or phones that differ between the apps, "
        f"{len(data.consent_disagreements)} people opted in in HubSpot but unsubscribed in Mailchimp, "
        f"{len(data.off_list)} in both apps whose HubSpot lifecycle is 'other' (the mapping keeps them "
        f"off the mailing list: left alone in Mailchimp), "
        f"and {len(data.duplicates)} customer entered twice in HubSpot."
    )
    return [
        f"Fake HubSpot at {hubspot_url}: {len(data.contacts)} contacts.",
        f"Fake Mailchimp at {mailchimp_url}/3.0: {len(data.members)} audience members.",
        f"{data.customers} customers (seed {data.seed}): {len(data.overlap)} in both apps, "
        f"{data.crm_only} only in HubSpot, {data.email_only} only in Mailchimp.",
        *textwrap.wrap(planted, width=WIDTH),
    ]


async def gather_facts(session: DemoSession) -> GuideFacts:
    daemon = session.daemon
    assert daemon is not None
    example = await session.example()
    edited = {"lastname": f"{example.last_name}-Hartley"}
    return GuideFacts(
        workspace=str(session.workspace.root),
        temporary=session.workspace.temporary,
        config=str(session.workspace.config),
        daemon_url=daemon.url,
        admin_token=session.workspace.admin_token,
        poll_interval=session.poll_interval,
        example_email=example.email,
        edit=session.apps.crm_edit(example.contact_id, edited),
        check=session.apps.member_read(example.email),
        edited=edited,
        conflicts=await session.open_conflicts(),
        mapping=session.workspace.mapping_name,
    )


def summary_line(session: DemoSession) -> str:
    stats = session.first
    assert stats is not None
    return (
        f"First sync done in {session.first_seconds:.1f} s: {stats.total('linked')} records matched by email, "
        f"{stats.total('created')} created, {stats.total('updated')} updated, "
        f"{stats.review} conflicts left for review, {stats.total('errors')} errors."
    )


def convergence_line(url: str, done: Convergence, apps: int = 2) -> str:
    every = "both fakes send their webhooks" if apps == 2 else f"all {apps} apps send their webhooks"
    polled = "both apps" if apps == 2 else f"all {apps} apps"
    return (
        f"Daemon running at {url}; {every} to it. It polled {polled} and "
        f"found {done.daemon_writes} writes to make: converged in {done.seconds:.1f} s."
    )


async def demo(session: DemoSession, *, once: bool, within: float = 60.0) -> int:
    """The demo on the running event loop; returns the exit code. Always stops ``session``."""
    console = session.console
    feed_task: asyncio.Task[None] | None = None
    feed_store: AsyncStore | None = None
    try:
        await session.start()
        for line in seeded_lines(session.data, session.apps.hubspot.url, session.apps.mailchimp.url):
            say(console, line)
        for line in session.extra_lines:
            say(console, line)
        say(console)
        stats = await session.first_sync()
        say(console, summary_line(session))
        daemon = await session.start_daemon()
        done = await session.converged(within=within)
        say(console, convergence_line(daemon.url, done, len(daemon.settings.apps)))
        say(console)
        for line in guide_lines(await gather_facts(session)):
            say(console, line)
        say(console)
        if session.extra is not None:
            for line in await session.customer_view():
                say(console, line)
            say(console)
        if once:
            failed = stats.total("errors") + done.dead_letters
            say(console, f"--once: converged with {failed} errors; stopping.")
            code = await session.stop()
            return 1 if failed else code
        # The feed reads through a connection of its own: the daemon closes its store when it
        # stops, possibly while the feed is between two looks.
        feed_store = await AsyncStore(daemon.settings.state).open()
        feed = ChangeFeed(feed_store, console)
        await feed.start_here()
        feed_task = asyncio.create_task(feed.run(), name="syncd-demo-feed")
        say(console, READY)
        code = await session.wait_daemon()
        say(console, "Stopped.")
        return code
    except (DemoError, DaemonError, LeaseHeld) as exc:
        say(console, f"error: {exc}")
        return 1
    finally:
        if feed_task is not None:
            feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed_task
        if feed_store is not None:
            await feed_store.close()
        await session.aclose()


def run_demo(
    *,
    once: bool,
    port: int | None,
    seed: int,
    customers: int = 300,
    directory: Path | None = None,
    console: Console | None = None,
    timeout: float = 60.0,
    apps: str = "two",
) -> int:
    """Run ``syncd demo`` to the end; returns the process exit code (see the module docstring)."""
    out = console or Console()
    try:
        session = DemoSession(out, seed=seed, customers=customers, port=port, directory=directory, apps=apps)
    except FileExistsError as exc:
        say(out, f"error: {exc}")
        return 2
    try:
        return asyncio.run(demo(session, once=once, within=timeout))
    except KeyboardInterrupt:
        say(out, "Interrupted.")
        return INTERRUPTED
