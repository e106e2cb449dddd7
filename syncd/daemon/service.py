"""``syncd run``: composition and lifecycle of the daemon.

Start-up, in order: take the state's lease (or refuse: another instance holds it; on a shared
PostgreSQL state, join the other daemons instead, see ``cluster``), load the
mappings and connectors, open the store and the runner, start the outbox dispatcher and the
webhook inbox worker (both resume what a previous run left), serve webhooks and the admin API,
then schedule per app an incremental poll (its ``poll_interval``, with jitter), a full
reconciliation (``full_reconcile_interval``) and, daemon-wide, housekeeping.

Shutdown (SIGTERM/SIGINT): webhooks answer 503, no job starts any more, polls and the dispatcher
stop at their next committed page or batch (bounded by ``drain_timeout``, after which what is
still running is cancelled: intents left in flight are repaired on the next start), the store is
closed and the lease released. SIGHUP reloads the mapping files; a bad file is rejected with its
errors logged and the last good mappings stay in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from syncd import __version__
from syncd.app import build_connectors, load_all_mappings, mapping_digest, used_apps
from syncd.connector.http import share_budget
from syncd.log import register_secret
from syncd.progress import SyncProgress
from syncd.runner import Runner
from syncd.settings import ConfigFileError, Settings
from syncd.store import AsyncStore, ConflictRow, StateStore
from syncd.store.location import is_postgres_url

from .admin import AdminApi, auth_middleware, error_middleware
from .cluster import HOUSEKEEPING, Cluster
from .connections import ConnectionLimiter
from .dispatcher import Dispatcher
from .first_sync import FirstSync
from .inbox import INBOX_RETENTION_DAYS, Inbox, InboxWorker
from .lease import Holder, Lease, LeaseHeld
from .metrics import Metrics
from .scheduler import Scheduler
from .stopping import Stopping, StopSwitch
from .throttle import FailedAuthThrottle
from .web import ActivityLog, ReviewPage, is_page
from .webhooks import WebhookIntake

log = structlog.get_logger("syncd.daemon")

#: Seconds between housekeeping runs (change-log retention, inbox and run-table pruning).
HOUSEKEEPING_INTERVAL = 3600.0
#: The lease of the daemon that logs each change on a shared state.
ACTIVITY = "activity-log"
#: Seconds between looks for work other daemons left for this one (a shared state only).
SHARED_NUDGE_INTERVAL = 0.5
#: Seconds between two looks at the mapping files (a change is reloaded, as on SIGHUP).
MAPPING_WATCH_INTERVAL = 2.0


class DaemonError(Exception):
    """The daemon cannot start (the message says why); the CLI exits with code 1."""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _store_snapshot(store: StateStore) -> dict[str, int]:
    return {
        "outbox_depth": store.outbox_depth(),
        "dead_letters": store.count_dead_letters(),
        "conflicts_open": store.count_conflicts("open"),
        "inbox_pending": store.count_inbox_pending(),
    }


class Daemon:
    """One running ``syncd run`` (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        source: str = "config.toml",
        ready_file: Path | None = None,
        public_url: str | None = None,
        progress_every: float | None = None,
    ) -> None:
        self.settings = settings
        #: Show the first sync's progress (``first_sync``), with JSON lines this often when not
        #: on a terminal; None: show nothing.
        self.progress_every = progress_every
        self._first_sync: FirstSync | None = None
        self.daemon = settings.daemon
        self.source = source
        self.ready_file = ready_file
        self.public_url = public_url
        self.switch = StopSwitch()
        self.metrics = Metrics(self.apps)
        self.scheduler = Scheduler()
        self.accepting = False
        self.serving = False
        self.stopping = False
        self.exit_code = 0
        self.url = ""
        self.started_at = time.time()
        self.locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.last_drift: dict[str, int] = {}
        #: The digest of the mapping files in use (``syncd.app.mapping_digest``), published.
        self.mapping_digest: str | None = None
        self._rejected_digest: str | None = None
        self._runner: Runner | None = None
        self._cluster: Cluster | None = None
        self._store: AsyncStore | None = None
        self._exit = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop_event = asyncio.Event()
        self._dispatcher: Dispatcher | None = None
        self._worker: InboxWorker | None = None
        self.web_app: web.Application | None = None
        self.review_page: ReviewPage | None = None
        self.connections: ConnectionLimiter | None = None

    # -- accessors -------------------------------------------------------------------------------

    @property
    def runner(self) -> Runner:
        assert self._runner is not None, "Daemon.start() first"
        return self._runner

    @property
    def cluster(self) -> Cluster:
        assert self._cluster is not None, "Daemon.start() first"
        return self._cluster

    @property
    def store(self) -> AsyncStore:
        assert self._store is not None, "Daemon.start() first"
        return self._store

    @property
    def dispatcher(self) -> Dispatcher:
        assert self._dispatcher is not None, "Daemon.start() first"
        return self._dispatcher

    @property
    def worker(self) -> InboxWorker:
        assert self._worker is not None, "Daemon.start() first"
        return self._worker

    def apps(self) -> list[str]:
        """The apps the current mappings sync."""
        return used_apps(self._runner.mappings) if self._runner is not None else []

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT (or a lost lease), stop; returns the exit code.

        Signal handlers are installed before start-up, so a SIGTERM arriving while the daemon
        starts still ends in a clean stop.
        """
        loop = asyncio.get_running_loop()
        handled = []
        for sig, action in (
            (signal.SIGTERM, partial(self.request_stop, "SIGTERM")),
            (signal.SIGINT, partial(self.request_stop, "SIGINT")),
            (signal.SIGHUP, self._reload_soon),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, action)
                handled.append(sig)
        try:
            await self.start()
            try:
                await self._stop_event.wait()
            finally:
                await self.stop()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
        return self.exit_code

    def request_stop(self, reason: str = "requested", exit_code: int = 0) -> None:
        if not self._stop_event.is_set():
            log.info("stop requested", reason=reason)
        self.exit_code = max(self.exit_code, exit_code)
        self.accepting = False
        self._stop_event.set()

    async def start(self) -> None:
        """Bring every part up (see the module docstring); on failure, undo what was started."""
        try:
            await self._start()
        except BaseException:
            await self._exit.aclose()
            raise

    async def _start(self) -> None:
        settings, daemon = self.settings, self.daemon
        token = daemon.admin_token
        register_secret(token.get_secret_value() if token is not None else None)
        readonly = daemon.readonly_token
        register_secret(readonly.get_secret_value() if readonly is not None else None)

        # Leases and heartbeats get their own connection, so long units of work never delay them.
        lease_store = await AsyncStore(settings.state).open()
        self._exit.push_async_callback(lease_store.close)
        holder = Holder.this_process()
        shared = is_postgres_url(settings.state)
        self._cluster = Cluster(
            lease_store, holder, ttl=daemon.lease_ttl, shared=shared, info=self._published
        )
        lease = Lease(lease_store, ttl=daemon.lease_ttl, state=str(settings.state), holder=holder)
        if shared:
            # Several daemons share this state: register, then make sure no one-off writer
            # (`syncd sync`, which takes the state's lease and refuses while daemons live) runs.
            await self.cluster.beat()
            self._exit.push_async_callback(self.cluster.leave)
            try:
                await lease.acquire()
                await lease.release()
            except LeaseHeld as exc:
                # Another daemon making this same check at this moment is no one-off writer.
                if exc.holder.id not in {m["id"] for m in await self.cluster.members()}:
                    raise
        else:
            await lease.acquire()  # LeaseHeld propagates: nothing else is touched
            self._exit.push_async_callback(lease.release)

        digest = await asyncio.to_thread(mapping_digest, settings)
        mappings = await asyncio.to_thread(load_all_mappings, settings, self.source)
        connectors = build_connectors(settings, used_apps(mappings), self.source)
        self.mapping_digest = digest

        store = await AsyncStore(settings.state).open()
        self._exit.push_async_callback(store.close)
        self._store = store
        self._runner = Runner(
            store,
            mappings,
            connectors,
            batch_size=settings.batch_size,
            id_scan_interval={name: app.id_scan_interval for name, app in settings.apps.items()},
        )
        self._exit.push_async_callback(self.runner.aclose_connectors)
        self.runner.report_progress(self._on_progress)
        self.metrics.runner = self.runner
        if shared:
            self.runner.share_apps(self.cluster)
            self.cluster.want(self.apps())
            self.cluster.on_acquired = self._serve_now
            for app in self.apps():
                share_budget(app, self.cluster.budget(app))
            self._exit.callback(self._unshare_budgets)

        self._dispatcher = Dispatcher(self.runner, switch=self.switch, on_written=self._settle_written)
        if self.progress_every is not None and not shared:
            await self._watch_first_sync(self.progress_every)
        inbox = Inbox(store)
        self._worker = InboxWorker(
            inbox,
            self.runner,
            on_processed=self.dispatcher.wake,
            switch=self.switch,
            serves=self.cluster.serves,
        )
        self._exit.push_async_callback(self._cancel_tasks)
        self._spawn(self.dispatcher.run(), "dispatcher")
        self._spawn(self.worker.run(), "inbox")
        self._spawn(ActivityLog(store, leads=self._leads_activity if shared else None).run(), "activity")
        self._spawn(self._watch_mappings(), "mapping watch")
        if shared:
            self._spawn(self.cluster.run(), "cluster")
            self._spawn(self._nudge(), "nudge")
        else:
            self._spawn(lease.heartbeat(partial(self.request_stop, "lease lost", 1)), "lease")

        intake = WebhookIntake(
            connectors=lambda: self.runner.connectors,
            inbox=inbox,
            metrics=self.metrics,
            max_bytes=daemon.webhook_max_bytes,
            accepting=lambda: self.accepting,
            on_stored=self.worker.wake,
            public_url=self.public_url,
            body_timeout=daemon.body_timeout,
        )
        listener = await self._listen(intake)
        host, port = listener.sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self.url = f"http://{shown}:{port}"
        self.accepting = True
        self.serving = True

        for name in self.apps():
            await self._schedule_app(name)
        self.scheduler.every("housekeeping", self.housekeeping, HOUSEKEEPING_INTERVAL, first_in=60.0)
        self._exit.push_async_callback(self.scheduler.stop, 0.0)
        self.scheduler.start()
        self.worker.wake()
        self.dispatcher.wake()

        if token is None:
            log.warning(
                "admin API disabled: no admin token configured (set SYNCD_DAEMON__ADMIN_TOKEN); "
                "every admin request but /healthz gets 401"
            )
        log.info(
            "syncd listening",
            url=self.url,
            webhooks=f"{self.url}/webhooks/{{app}}",
            apps=self.apps(),
            pid=os.getpid(),
            host=socket.gethostname(),
            version=__version__,
        )
        if self.ready_file is not None:
            self._write_ready_file(self.ready_file, int(port))

    async def _listen(self, intake: WebhookIntake) -> asyncio.Server:
        """Serve the webhooks and the admin API, with the connection cap and read timeouts.

        aiohttp's keep-alive timer starts when a connection opens and again after each response,
        and closes a connection still waiting for a complete request when it fires: with
        ``header_timeout`` as that timer, no connection stays open without sending a request.
        """
        daemon = self.daemon

        def handler() -> asyncio.BaseProtocol:
            server = web_runner.server
            assert server is not None, "AppRunner.setup() first"
            return server()

        limiter = ConnectionLimiter(handler, daemon.max_connections)
        throttle = FailedAuthThrottle()
        page = ReviewPage(self, body_timeout=daemon.body_timeout, throttle=throttle)
        app = web.Application(
            middlewares=[
                limiter.middleware,
                auth_middleware(daemon.admin_token, pages=is_page, throttle=throttle),
                page.middleware(),
                error_middleware,
            ]
        )
        app.add_routes(intake.routes())
        app.add_routes(AdminApi(self, body_timeout=daemon.body_timeout).routes())
        app.add_routes(page.routes())
        self.review_page = page
        self.web_app = app
        self.connections = limiter
        web_runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
            keepalive_timeout=daemon.header_timeout,
            # Unread bodies (a request refused before its body was read) are drained this long at most.
            lingering_time=min(daemon.body_timeout, 2.0),
        )
        await web_runner.setup()
        self._exit.push_async_callback(web_runner.cleanup)
        loop = asyncio.get_running_loop()
        try:
            listener = await loop.create_server(limiter, daemon.host, daemon.port, backlog=128)
        except OSError as exc:
            raise DaemonError(f"cannot listen on {daemon.host}:{daemon.port}: {exc.strerror or exc}") from exc

        async def close_listener() -> None:
            # Stop accepting; the runner's cleanup (next) closes the open connections. Waiting for
            # the listener here would wait for those connections.
            listener.close()

        self._exit.push_async_callback(close_listener)
        return listener

    def _write_ready_file(self, path: Path, port: int) -> None:
        data = {"url": self.url, "port": port, "pid": os.getpid()}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=f"syncd-{name}")
        self._tasks.append(task)

    async def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def stop(self) -> None:
        """Graceful shutdown (see the module docstring). Safe to call twice."""
        if self.stopping:
            return
        self.stopping = True
        self.accepting = False
        self.switch.request()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.daemon.drain_timeout
        log.info(
            "shutting down: webhooks refused, finishing in-flight work", timeout=self.daemon.drain_timeout
        )
        await self.scheduler.stop(grace=deadline - loop.time())
        if self._dispatcher is not None and self._worker is not None:
            self.dispatcher.wake()
            self.worker.wake()
            busy = [t for t in self._tasks if t.get_name() in ("syncd-dispatcher", "syncd-inbox")]
            _, late = await asyncio.wait(busy, timeout=max(deadline - loop.time(), 0.0))
            if late:
                log.warning(
                    "drain timeout reached; in-flight writes resume at the next start", tasks=len(late)
                )
        depth = None
        if self._store is not None:
            with contextlib.suppress(Exception):
                depth = await self.store.call(lambda s: s.outbox_depth())
        self.serving = False
        await self._exit.aclose()
        log.info("stopped", outbox_depth=depth, exit_code=self.exit_code)

    # -- several daemons on one state ----------------------------------------------------------------

    def _published(self) -> dict[str, Any]:
        """What this daemon tells the others (and ``/api/status``) about itself."""
        return {
            "url": self.url,
            "version": __version__,
            "started_at": _iso(self.started_at),
            "mappings": self.mapping_digest,
        }

    def _serve_now(self, app: str) -> None:
        """This daemon just took over ``app``: read what changed there since, and send its writes."""
        if self.serving and not self.stopping:
            self._spawn(self.poll(app), f"takeover:{app}")
        self.dispatcher.wake()

    async def _nudge(self) -> None:
        """On a shared state, work planned or received by other daemons (intents to send, webhook
        events to re-read) appears without a wake-up here: look for it twice a second."""
        while not self.switch.requested:
            await asyncio.sleep(SHARED_NUDGE_INTERVAL)
            self.worker.wake()
            self.dispatcher.wake()

    async def _leads_activity(self) -> bool:
        """On a shared state one daemon logs the change log's lines (see ``ActivityLog``)."""
        return await self.cluster.lead(ACTIVITY) is not None

    def _unshare_budgets(self) -> None:
        for app in self.apps():
            share_budget(app, None)

    # -- readiness, status, metrics (the AdminBackend protocol) ------------------------------------

    def readiness(self) -> tuple[bool, str]:
        if self.stopping or self._stop_event.is_set():
            return False, "shutting down"
        if not self.serving:
            return False, "starting"
        return True, "serving"

    async def metrics_text(self) -> bytes:
        self.metrics.update_from_store(await self.store.call(_store_snapshot))
        return self.metrics.render()

    async def status(self) -> dict[str, Any]:
        from syncd.failures import cause
        from syncd.sync.health import AppInfo, health_report, paused_live

        snapshot = await self.store.call(_store_snapshot)
        now = time.time()
        infos = {
            n: AppInfo(self.settings.apps[n].connector, self.settings.apps[n].poll_interval)
            for n in self.apps()
        }
        # The same report as `syncd status`, read from the state; this daemon's live facts on top.
        report = await self.store.call(health_report, infos, now)
        apps: dict[str, Any] = {}
        for name in self.apps():
            stats = self.runner.app_stats(name)
            last = self.metrics.last_poll.get(name)
            nxt = self.scheduler.next_run(f"poll:{name}")
            full = self.scheduler.next_run(f"full:{name}")
            apps[name] = {
                "connector": self.settings.apps[name].connector,
                "paused": self.runner.is_paused(name),
                "served_here": self.cluster.serves(name),
                "poll_interval": self.settings.apps[name].poll_interval,
                "last_poll_at": _iso(last) if last is not None else None,
                "lag_seconds": round(now - (last if last is not None else self.started_at), 3),
                "next_poll_at": nxt.isoformat() if nxt else None,
                "next_full_reconcile_at": full.isoformat() if full else None,
                "last_drift": self.last_drift.get(name),
                "read": stats.read,
                "written": stats.writes,
                "failed": stats.errors,
            }
            known = report["apps"].get(name, {})
            if known.get("lag_seconds") is None:  # never read yet: the daemon's wait since it started
                known.pop("lag_seconds", None)
                known.pop("last_poll_at", None)
            apps[name] = {**apps[name], **known}
            if self.runner.is_paused(name):
                failed = self.runner.stats.failures.get(name)
                paused_live(report, name, f"paused: {cause(failed)}" if failed else "paused by the daemon")
                apps[name].update(report["apps"].get(name, {}))
        return {
            **report,
            "version": __version__,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "url": self.url,
            "state": str(self.settings.state),
            "started_at": _iso(self.started_at),
            "uptime_seconds": round(now - self.started_at, 3),
            "ready": self.readiness()[0],
            "accepting_webhooks": self.accepting,
            "mappings": [
                {"name": m.name, "apps": list(m.apps), "source": str(m.source)} for m in self.runner.mappings
            ],
            "apps": apps,
            # Every live daemon on this state (on SQLite: this one), with the leases it holds.
            "daemons": await self.cluster.members(),
            **snapshot,
            # A fixed mistake leaves a backlog until someone replays it: say how, not just how many.
            "dead_letters_hint": (
                "fix the cause, then: syncd deadletters replay --all" if snapshot["dead_letters"] else None
            ),
        }

    async def resolve_conflict(
        self, conflict_id: int, take: str | None, value: Any, allow_empty: bool = False
    ) -> ConflictRow:
        result = await self.runner.resolve_conflict(
            conflict_id, take=take, value=value, allow_empty=allow_empty
        )
        self.dispatcher.wake()
        return result

    async def forget(self, key: str, dry_run: bool) -> dict[str, Any]:
        from syncd.erasure import forget

        return await forget(self.runner, key, dry_run=dry_run)

    # -- jobs ------------------------------------------------------------------------------------

    async def _schedule_app(self, app: str) -> None:
        interval = self.settings.apps[app].poll_interval
        self.scheduler.every(
            f"poll:{app}", partial(self.poll, app), interval, jitter=interval * self.daemon.poll_jitter
        )
        self.scheduler.every(
            f"full:{app}",
            partial(self.reconcile, app),
            self.daemon.full_reconcile_interval,
            first_in=await self._first_full_in(app),
        )

    async def _first_full_in(self, app: str) -> float:
        """Seconds until the app's next full reconciliation, counted from the last one on record.

        None on record: one interval from now (a first poll without a cursor reads everything
        anyway). One that never finished (the daemon stopped during it): right away.
        """
        interval = self.daemon.full_reconcile_interval
        last = await self.store.call(lambda s: s.last_run(f"full:{app}"))
        if last is None:
            return interval
        if last["finished_at"] is None:
            return 0.0
        started = datetime.fromisoformat(last["started_at"]).timestamp()
        return max(started + interval - time.time(), 0.0)

    def _on_progress(self, stats: Any) -> None:
        if self._first_sync is not None:
            self._first_sync.update(stats)
        self.switch.checkpoint(stats)

    async def _watch_first_sync(self, every: float) -> None:
        """Show the progress of the apps' first full reads and their writes (``first_sync``)."""

        def unread(store: StateStore) -> set[str]:
            return {
                app
                for mapping in self.runner.mappings
                for app in mapping.apps
                if store.get_cursor(mapping.name, app) is None
            }

        first = await self.store.call(unread)
        if first:
            display = SyncProgress("first sync", interval=every)
            self._first_sync = FirstSync(first, display, self.dispatcher)
            self._spawn(self._first_sync.run(), "first sync")

    async def poll(self, app: str) -> None:
        """Incremental poll of one app, then plan and wake the dispatcher (on a shared state,
        only by the daemon serving the app)."""
        runner = self.runner
        if runner.is_paused(app) or app not in self.apps() or not self.cluster.serves(app):
            return
        async with self.locks[app]:
            before = runner.app_stats(app)
            read, errors = before.read, before.errors
            failure: Exception | None = None
            try:
                await runner.poll(app)
            except Stopping:
                return
            except Exception as exc:  # counted and logged; the next poll tries again
                failure = exc
                log.error("poll failed", app=app, error=type(exc).__name__)
                await self._record_failure(app, exc)
            finally:
                if self._first_sync is not None:
                    self._first_sync.polled(app)
            stats = runner.app_stats(app)
            ok = failure is None and not runner.is_paused(app) and stats.errors == errors
        self.metrics.polls.labels(app=app, outcome="ok" if ok else "failed").inc()
        if ok:
            self.metrics.last_poll[app] = time.time()
        got = stats.read - read
        (log.info if got or not ok else log.debug)("poll", app=app, read=got, ok=ok)
        self.dispatcher.wake()

    async def _settle_written(self, apps: Sequence[str]) -> list[str]:
        """The dispatcher wrote to ``apps`` and nothing is in flight: let their connectors step
        the cursors past syncd's own writes (``cursor_after_writes``, as ``syncd sync`` asks
        after its cycle), so the next poll does not read them back. An app being polled right
        now is left for the next lull."""
        later: list[str] = []
        for app in apps:
            lock = self.locks[app]
            if lock.locked():
                later.append(app)
                continue
            if self.stopping or app not in self.apps():
                continue
            async with lock:
                # Only where the connector vouches for its writes: the fallback compares versions
                # alone, and an app whose versions are coarse (Mailchimp's last_changed has
                # one-second resolution) can show someone's edit made in the second of our write
                # at that write's version; a live daemon meets that, and would skip the edit.
                await self.runner.settle_own_writes(app, catch_up=False)
        return later

    async def _record_failure(self, app: str, exc: Exception) -> None:
        """Keep a poll's unexpected failure in the state, where ``syncd status`` reads it."""
        from syncd.failures import failure

        record = failure(exc)
        with contextlib.suppress(Exception):  # the state itself may be what failed
            await self.store.call(lambda s: s.record_read(app, ok=False, failure=record))

    async def reconcile(self, app: str) -> None:
        """Full reconciliation of one app: re-read everything, plan, report drift."""
        runner = self.runner
        if runner.is_paused(app) or app not in self.apps() or not self.cluster.serves(app):
            return
        async with self.locks[app]:
            run = await self.store.call(lambda s: s.begin_run(f"full:{app}"))
            complete = True
            try:
                for mapping in runner.mappings:
                    if app in mapping.apps:
                        complete &= await runner.read_app(mapping, app, full=True, run=run)
                await runner.plan()
            except Stopping:
                return
            drift = await self.store.call(lambda s: s.count_drift(run, app))
            await self.store.call(
                lambda s: s.finish_run(run, {"app": app, "drift": drift, "complete": complete})
            )
        self.last_drift[app] = drift
        self.metrics.drift.labels(app=app).set(drift)
        self.metrics.reconciliations.labels(app=app).inc()
        (log.warning if drift else log.info)(
            "full reconciliation", app=app, drift=drift, complete=complete, run=run
        )
        self.dispatcher.wake()

    async def housekeeping(self) -> None:
        """Prune the change log past its retention, old processed inbox events and old run rows;
        retry erasures an app failed. On a shared state, one daemon at a time does it."""
        if await self.cluster.lead(HOUSEKEEPING) is None:
            return
        now = time.time()
        keep = _iso(now - timedelta(days=self.daemon.changelog_retention_days).total_seconds())
        inbox = _iso(now - timedelta(days=INBOX_RETENTION_DAYS).total_seconds())

        def prune(store: StateStore) -> dict[str, int]:
            return {
                "changelog": store.prune_changelog(keep),
                "inbox": store.prune_inbox(inbox),
                "runs": store.prune_runs(keep),
            }

        pruned = await self.store.call(prune)
        log.info("housekeeping", **{f"{k}_pruned": v for k, v in pruned.items()})
        from syncd.erasure import retry_erasures

        if finished := await retry_erasures(self.runner):
            log.info("erasures finished on retry", erasures=finished)

    # -- mapping reload --------------------------------------------------------------------------

    def _reload_soon(self) -> None:
        if self._runner is None or self.stopping:
            log.warning("SIGHUP ignored: the daemon is starting or stopping")
            return
        self._spawn(self.reload(), "reload")

    async def _watch_mappings(self) -> None:
        """Reload the mapping files when they change on disk: daemons sharing the files (the
        review page's "always prefer" writes them on one daemon) follow within seconds, without
        SIGHUP. A rejected version is not retried until the files change again."""
        while not self.switch.requested:
            await asyncio.sleep(MAPPING_WATCH_INTERVAL)
            if self.stopping or self._runner is None:
                continue
            digest = await asyncio.to_thread(mapping_digest, self.settings)
            if digest not in (self.mapping_digest, self._rejected_digest):
                log.info("mapping files changed on disk; reloading", mappings=digest)
                await self.reload()

    async def reload(self) -> bool:
        """Reload the mapping files; keep the current ones if any file is bad. True if applied."""
        runner = self.runner
        digest = await asyncio.to_thread(mapping_digest, self.settings)
        try:
            mappings = await asyncio.to_thread(load_all_mappings, self.settings, self.source)
            added = [a for a in used_apps(mappings) if not runner.syncs(a)]
            connectors = build_connectors(self.settings, added, self.source)
        except ConfigFileError as exc:
            self._rejected_digest = digest
            log.error("mapping reload rejected; keeping the last good mappings", problems=exc.problems)
            return False
        self.mapping_digest, self._rejected_digest = digest, None
        before = set(self.apps())
        runner.reload(mappings, connectors)
        now = set(self.apps())
        if self.cluster.shared:
            self.cluster.want(now)
            for app in sorted(now - before):
                share_budget(app, self.cluster.budget(app))
        for app in sorted(before - now):
            self.scheduler.remove(f"poll:{app}")
            self.scheduler.remove(f"full:{app}")
        for app in sorted(now - before):
            await self._schedule_app(app)
        log.info(
            "mappings reloaded",
            syncs=[m.name for m in mappings],
            apps_added=sorted(now - before),
            apps_removed=sorted(before - now),
        )
        self.dispatcher.wake()
        return True
