"""One demo run, step by step: apps up and seeded, first sync, daemon up, converged, stopped.

``DemoSession`` is the seam the command and the tests share::

    session = DemoSession(console, seed=1)
    await session.start()        # fakes on loopback ports, seeded; workspace written
    await session.first_sync()   # one full cycle with live progress
    await session.start_daemon() # `syncd run` on the same state; fakes' webhooks point at it
    await session.converged()    # every app polled by the daemon, nothing queued
    ...                          # the guide, the change feed, Ctrl-C
    await session.stop()

The first sync is one ``Runner.run_cycle`` (apps read in mapping order, then planned and
written), so a seed always gives the same counts; the daemon then takes over the state, and its
first polls read back syncd's own writes and must find nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from syncd.app import open_runner
from syncd.daemon import Daemon
from syncd.log import configure
from syncd.runner import RunStats
from syncd.settings import Settings, load_settings
from syncd.store import ConflictRow, StateStore

from .apps import DemoApps
from .dataset import Dataset, build_dataset
from .fourapps import ExtraApps
from .progress import APP_TITLES, SyncProgress
from .workspace import POLL_INTERVAL, Workspace


class DemoError(Exception):
    """The demo could not reach a converged state (the message says what was still pending)."""


@dataclass(frozen=True, slots=True)
class Example:
    """The customer the guide suggests editing: linked in both apps, no conflict, on the list."""

    email: str
    contact_id: str
    first_name: str
    last_name: str


@dataclass(frozen=True, slots=True)
class Convergence:
    """The daemon's view once converged (from its status report)."""

    seconds: float
    conflicts_open: int
    dead_letters: int
    daemon_writes: int


class DemoSession:
    """See the module docstring."""

    def __init__(
        self,
        console: Console,
        *,
        seed: int = 1,
        customers: int = 300,
        port: int | None = None,
        directory: Path | None = None,
        poll_interval: float = POLL_INTERVAL,
        apps: str = "two",
    ) -> None:
        self.console = console
        self.seed = seed
        self.port = port
        self.poll_interval = poll_interval
        self.data: Dataset = build_dataset(seed, customers)
        self.apps = DemoApps()
        #: ``--apps all``: the help desk and billing apps, and what was planted in them.
        self.extra: ExtraApps | None = None
        self.extra_lines: list[str] = []
        if apps == "all":
            self.extra = ExtraApps()
            self.extra.prepare_crm(self.apps.hubspot)
        self.workspace = Workspace.create(directory)
        self.first: RunStats | None = None
        self.first_seconds = 0.0
        self.daemon: Daemon | None = None
        self._daemon_task: asyncio.Task[int] | None = None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        assert self._settings is not None, "DemoSession.start() first"
        return self._settings

    @property
    def source(self) -> str:
        return str(self.workspace.config)

    # -- steps -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start both fakes, seed them and write the workspace."""
        await self.apps.start()
        self.apps.seed(self.data)
        if self.extra is not None:
            await self.extra.start()
            self.extra_lines = await self.extra.seed(self.data)
        self.workspace.write(
            hubspot_url=self.apps.hubspot.url,
            mailchimp_url=self.apps.mailchimp.url,
            port=self.port or 0,
            poll_interval=self.poll_interval,
            extra=self.extra,
        )
        self._settings = load_settings(self.workspace.config)
        configure(self.settings.log_format, self.settings.log_level)

    async def first_sync(self) -> RunStats:
        """One full cycle over both apps, drawn live."""
        started = time.monotonic()
        titles = list(APP_TITLES.values())
        if self.extra is not None:
            titles += [f"{app} ({name})" for app, name in self.extra.names().items()]
        title = f"First sync: {' ⇄ '.join(titles)}"
        with SyncProgress(self.console, title) as progress:
            async with open_runner(self.settings, source=self.source) as runner:
                runner.report_progress(progress.update)
                stats = await runner.run_cycle(full=True)
                progress.update(stats)
        self.first = stats
        self.first_seconds = time.monotonic() - started
        return stats

    async def start_daemon(self, *, within: float = 30.0) -> Daemon:
        """Run the daemon (``syncd run``) on the workspace and point the fakes' webhooks at it."""
        daemon = Daemon(self.settings, source=self.source)
        self.daemon = daemon
        self._daemon_task = asyncio.create_task(daemon.run(), name="syncd-demo-daemon")
        deadline = time.monotonic() + within
        while not daemon.serving:
            if self._daemon_task.done():
                self._daemon_task.result()  # raises what stopped it (port taken, bad config)
                raise DemoError("the daemon stopped before it was serving")
            if time.monotonic() > deadline:
                raise DemoError(f"the daemon was not serving after {within:.0f} s")
            await asyncio.sleep(0.02)
        self.apps.connect_webhooks(daemon.url)
        if self.extra is not None:
            await self.extra.connect_webhooks(daemon.url)
        return daemon

    async def converged(self, *, within: float = 60.0) -> Convergence:
        """Wait until the daemon has polled every app and no write or webhook is left to process."""
        daemon = self._running()
        started = time.monotonic()
        deadline = started + within
        status: dict[str, Any] = {}
        while True:
            status = await daemon.status()
            polled = all(app["last_poll_at"] is not None for app in status["apps"].values())
            if polled and status["outbox_depth"] == 0 and status["inbox_pending"] == 0:
                return Convergence(
                    seconds=time.monotonic() - started,
                    conflicts_open=status["conflicts_open"],
                    dead_letters=status["dead_letters"],
                    daemon_writes=daemon.runner.total("writes"),
                )
            if self._daemon_task is not None and self._daemon_task.done():
                raise DemoError("the daemon stopped before converging")
            if time.monotonic() > deadline:
                waiting = {
                    name: {"last_poll_at": app["last_poll_at"], "failed": app["failed"]}
                    for name, app in status["apps"].items()
                }
                raise DemoError(
                    f"not converged after {within:.0f} s: outbox {status['outbox_depth']}, "
                    f"webhook events pending {status['inbox_pending']}, apps {waiting}"
                )
            await asyncio.sleep(0.1)

    async def wait_daemon(self) -> int:
        """Until the daemon stops (Ctrl-C / SIGTERM are its own); returns its exit code."""
        assert self._daemon_task is not None
        return await self._daemon_task

    async def stop(self) -> int:
        """Stop the daemon (if running), then the fakes; remove a temporary workspace."""
        code = 0
        try:
            self.apps.disconnect_webhooks()
            if self.extra is not None:
                self.extra.disconnect_webhooks()
            if self.daemon is not None and self._daemon_task is not None:
                self.daemon.request_stop("demo finished")
                code = await self._daemon_task
        finally:
            try:
                await self.apps.stop()
            finally:
                if self.extra is not None:
                    await self.extra.stop()
                self.workspace.cleanup()
        return code

    # -- what the guide shows ----------------------------------------------------------------------

    def _running(self) -> Daemon:
        if self.daemon is None:
            raise DemoError("the daemon is not running")
        return self.daemon

    async def example(self) -> Example:
        """The first overlapping customer synced in both apps with nothing parked or filtered."""
        daemon = self._running()
        suspects = {e for e, _ in self.data.conflicts} | set(self.data.consent_disagreements)
        suspects |= set(self.data.invisible_variants)
        candidates = [e for e in self.data.overlap if e not in suspects]

        def pick(store: StateStore) -> str | None:
            parked = {c["entity_key"] for c in store.conflicts(status="open")}
            for email in candidates:
                entity = store.find_entity(None, email)
                if entity is None or email in parked:
                    continue
                links = store.links_of([entity.id]).get(entity.id, {})
                if {"crm", "email"} <= set(links):
                    return email
            return None

        email = await daemon.store.call(pick)
        if email is None:
            raise DemoError("no customer is linked in both apps")
        contact_id = self.apps.contact_id(email)
        if contact_id is None:
            raise DemoError(f"HubSpot has no contact {email}")
        record = self.apps.hubspot.record(contact_id) or {}
        props = record.get("properties", {})
        return Example(email, contact_id, str(props.get("firstname", "")), str(props.get("lastname", "")))

    async def customer_view(self) -> list[str]:
        """``--apps all``: the seeded customer present in every app, as ``syncd show`` sees it."""
        daemon = self._running()
        assert self.extra is not None
        email = self.extra.everywhere

        def look(store: StateStore) -> tuple[dict[str, Any], dict[str, str]] | None:
            entity = store.find_entity(None, email)
            if entity is None:
                return None
            links = store.links_of([entity.id]).get(entity.id, {})
            return dict(entity.values), {app: str(link.remote_id) for app, link in sorted(links.items())}

        found = await daemon.store.call(look)
        if found is None:
            raise DemoError(f"{email} is not synced")
        values, links = found
        shown = ", ".join(
            f"{k} {values[k]!r}" for k in ("company", "plan", "mrr") if values.get(k) is not None
        )
        return [
            f"One customer, {len(links)} apps (the single customer view: values, where each came from, links):",
            f"  syncd show {email} --config {self.workspace.config}",
            "  linked: "
            + ", ".join(f"{app} {rid}" for app, rid in links.items())
            + (f"; {shown}" if shown else ""),
        ]

    async def open_conflicts(self) -> list[ConflictRow]:
        daemon = self._running()
        rows: list[ConflictRow] = await daemon.store.call(lambda s: s.conflicts(status="open"))
        return rows

    async def aclose(self) -> None:
        """``stop`` for error paths: never raises."""
        with contextlib.suppress(Exception):
            await self.stop()
