"""Prometheus metrics of one daemon, in their own registry (never the process-global one).

Counters of records read, written and failed per app are read from the runner's running totals
at scrape time; gauges that live in the store (outbox depth, dead letters, open conflicts) are
refreshed by ``update_from_store`` just before each scrape; the daemon sets the others as things
happen (webhooks, drift, pauses, last successful poll).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from syncd.runner import Runner

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _RunnerTotals(Collector):
    """Per-app record counters from ``runner.stats`` plus sync lag and pause state."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        runner = self.metrics.runner
        apps = self.metrics.apps()
        read = CounterMetricFamily("syncd_records_read", "Records read from each app.", labels=["app"])
        written = CounterMetricFamily("syncd_records_written", "Writes applied to each app.", labels=["app"])
        failed = CounterMetricFamily(
            "syncd_records_failed",
            "Failed reads and writes per app (retried or dead-lettered).",
            labels=["app"],
        )
        lag = GaugeMetricFamily(
            "syncd_sync_lag_seconds", "Seconds since the last successful poll of each app.", labels=["app"]
        )
        paused = GaugeMetricFamily(
            "syncd_app_paused", "1 while an app is paused (its credentials were rejected).", labels=["app"]
        )
        guard = CounterMetricFamily(
            "syncd_delete_guard_trips",
            "Complete listings whose delete propagation the mass-delete guard stopped, per app.",
            labels=["app"],
        )
        refused = CounterMetricFamily(
            "syncd_creates_refused",
            "Creates refused because the record's natural key was empty, per target app.",
            labels=["app"],
        )
        quarantined = CounterMetricFamily(
            "syncd_records_quarantined",
            "Records or webhook events set aside because they could not be read or mapped (dead letters).",
            labels=["app"],
        )
        oscillations = CounterMetricFamily(
            "syncd_oscillations",
            "Fields parked because two apps kept rewriting each other's form of a value (alert on any).",
        )
        oscillations.add_metric([], runner.stats.oscillations if runner is not None else 0)
        now = self.metrics.clock()
        for app in apps:
            stats = runner.app_stats(app) if runner is not None else None
            read.add_metric([app], stats.read if stats else 0)
            written.add_metric([app], stats.writes if stats else 0)
            failed.add_metric([app], stats.errors if stats else 0)
            since = self.metrics.last_poll.get(app, self.metrics.started)
            lag.add_metric([app], max(now - since, 0.0))
            paused.add_metric([app], 1.0 if runner is not None and runner.is_paused(app) else 0.0)
            guard.add_metric([app], stats.delete_guard if stats else 0)
            refused.add_metric([app], stats.refused if stats else 0)
            quarantined.add_metric([app], stats.quarantined if stats else 0)
        total = GaugeMetricFamily("syncd_apps_paused", "How many apps are paused.")
        total.add_metric([], float(len(runner.paused)) if runner is not None else 0.0)
        yield from (read, written, failed, lag, paused, total, guard, refused, quarantined, oscillations)


class Metrics:
    """The daemon's metrics; ``render()`` gives the Prometheus text exposition."""

    def __init__(self, apps: Callable[[], list[str]], *, clock: Callable[[], float] = time.time) -> None:
        self.apps = apps
        self.clock = clock
        self.runner: Runner | None = None
        self.started = clock()
        #: Wall-clock time of each app's last successful poll.
        self.last_poll: dict[str, float] = {}
        # ``*_created`` samples only add noise to a scrape (process-wide switch; the daemon owns the process).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks_received = Counter(
            "syncd_webhooks_received", "Webhook deliveries accepted and stored.", ["app"], registry=r
        )
        self.webhooks_rejected = Counter(
            "syncd_webhooks_rejected", "Webhook deliveries refused, by reason.", ["app", "reason"], registry=r
        )
        self.webhook_events = Counter(
            "syncd_webhook_events", "Webhook events stored (duplicates excluded).", ["app"], registry=r
        )
        self.outbox_depth = Gauge("syncd_outbox_depth", "Writes queued or in flight.", registry=r)
        self.dead_letters = Gauge(
            "syncd_dead_letters", "Writes the apps rejected, awaiting a person.", registry=r
        )
        self.conflicts_open = Gauge("syncd_conflicts_open", "Conflicts left for review.", registry=r)
        self.drift = Gauge(
            "syncd_drift_records",
            "Records the last full reconciliation found out of sync, per app.",
            ["app"],
            registry=r,
        )
        self.reconciliations = Counter(
            "syncd_full_reconciliations", "Full reconciliations run, per app.", ["app"], registry=r
        )
        self.polls = Counter("syncd_polls", "Polls run, per app and outcome.", ["app", "outcome"], registry=r)
        r.register(_RunnerTotals(self))

    def update_from_store(self, snapshot: Mapping[str, int]) -> None:
        self.outbox_depth.set(snapshot["outbox_depth"])
        self.dead_letters.set(snapshot["dead_letters"])
        self.conflicts_open.set(snapshot["conflicts_open"])

    def render(self) -> bytes:
        return generate_latest(self.registry)
