"""``syncd run`` as a real subprocess on real SQLite apps (and the HubSpot fake for webhooks)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from syncd.testing.fakes.hubspot import HubSpotFake, sign_v3

from .harness import (
    ADMIN_TOKEN,
    CRM_MAPPING,
    PEOPLE_MAPPING,
    DaemonProcess,
    SqlTable,
    base_env,
    sql_app,
    wait_for,
    write_config,
)

HS_TOKEN = "pat-na1-daemon-test-token-5521"
HS_SECRET = "hubspot-client-secret-daemon-test-9931"
POLL = 1.0


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[DaemonProcess, SqlTable, SqlTable]]:
    """Two SQL apps (3 + 2 users) and a running daemon polling both every second."""
    alpha = SqlTable.create(tmp_path / "alpha.db", 3, prefix="a")
    beta = SqlTable.create(tmp_path / "beta.db", 2, prefix="b")
    config = write_config(
        tmp_path,
        apps={"alpha": sql_app(alpha, POLL), "beta": sql_app(beta, POLL)},
        mapping=PEOPLE_MAPPING,
    )
    daemon = DaemonProcess(config, base_env(SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN))
    await daemon.start()
    try:
        await wait_for(lambda: len(alpha.names()) == len(beta.names()) == 5, 15, what="the initial sync")
        yield daemon, alpha, beta
    finally:
        daemon.kill()


async def test_edits_on_either_sql_app_reach_the_other_within_one_poll_interval(
    pair: tuple[DaemonProcess, SqlTable, SqlTable],
) -> None:
    daemon, alpha, beta = pair
    assert alpha.names() == beta.names()
    # One poll interval (plus its jitter) and a margin for the write itself.
    within = POLL * 1.1 + 1.5

    alpha.rename("b0@example.com", "Edited In Alpha")
    started = time.monotonic()
    await wait_for(lambda: beta.name_of("b0@example.com") == "Edited In Alpha", within, what="alpha → beta")
    assert time.monotonic() - started < within

    beta.rename("a1@example.com", "Edited In Beta")
    beta.insert("new@example.com", "Newcomer")
    await wait_for(
        lambda: alpha.name_of("a1@example.com") == "Edited In Beta" and alpha.name_of("new@example.com"),
        within,
        what="beta → alpha",
    )
    await wait_for(lambda: alpha.names() == beta.names(), within, what="both tables equal")
    assert alpha.distinct_emails() == alpha.count() == 6
    assert beta.distinct_emails() == beta.count() == 6
    assert await daemon.stop() == 0


async def test_second_instance_on_the_same_state_refuses_with_exit_code_1(
    pair: tuple[DaemonProcess, SqlTable, SqlTable],
) -> None:
    first, _, _ = pair
    second = DaemonProcess(first.config, first.env, name="second")
    second.spawn()
    assert await second.wait_exit(15) == 1
    text = second.log_text()
    assert f"another syncd (pid {first.info['pid']} on host" in text
    assert "holds the state" in text
    assert "until" in text
    assert not second.ready_file.exists()
    async with first.client(token=None) as client:
        assert (await client.get("/healthz")).status_code == 200

    # Once the first has stopped (and released the lease) the state is free again.
    assert await first.stop() == 0
    await second.start()
    assert await second.stop() == 0


async def test_metrics_and_admin_api_answer_with_the_token_and_refuse_without(
    pair: tuple[DaemonProcess, SqlTable, SqlTable],
) -> None:
    daemon, _, _ = pair
    async with daemon.client(token=None) as anonymous, daemon.client(token="wrong-token") as wrong:
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        for path in ("/metrics", "/readyz", "/api/status", "/api/conflicts", "/api/changelog"):
            for client in (anonymous, wrong):
                response = await client.get(path)
                assert response.status_code == 401, path
                assert "syncd_" not in response.text
    async with daemon.client() as admin:
        metrics = await admin.get("/metrics")
        assert metrics.status_code == 200
        assert 'syncd_records_read_total{app="alpha"}' in metrics.text
        assert 'syncd_records_written_total{app="beta"}' in metrics.text
        for name in ("syncd_outbox_depth", "syncd_dead_letters", "syncd_conflicts_open", "syncd_apps_paused"):
            assert f"\n{name} " in metrics.text, name
        assert 'syncd_sync_lag_seconds{app="alpha"}' in metrics.text
        status = (await admin.get("/api/status")).json()
        assert status["pid"] == daemon.info["pid"]
        assert set(status["apps"]) == {"alpha", "beta"}
        assert status["apps"]["beta"]["written"] >= 3
        assert (await admin.get("/readyz")).json()["ready"] is True
        page = (await admin.get("/api/changelog", params={"limit": 2})).json()
        assert len(page["entries"]) == 2
        entity = await admin.get("/api/entities/a0@example.com")
        assert entity.status_code == 200
        assert {link["app"] for link in entity.json()["links"]} == {"alpha", "beta"}
    assert await daemon.stop() == 0


async def test_bad_mapping_on_sighup_is_rejected_and_the_last_good_one_keeps_syncing(
    pair: tuple[DaemonProcess, SqlTable, SqlTable],
) -> None:
    daemon, alpha, beta = pair
    mapping = daemon.config.parent / "mappings" / "sync.toml"
    good = mapping.read_text()
    mapping.write_text(good.replace('transforms = ["trim"]', 'transforms = ["trimm"]'))
    daemon.signal(signal.SIGHUP)
    rejected = await wait_for(
        lambda: [e for e in daemon.events() if e["event"].startswith("mapping reload rejected")],
        10,
        what="the reload to be rejected",
    )
    assert any("sync.toml" in p and "trimm" in p for p in rejected[0]["problems"])

    alpha.rename("a2@example.com", "Still Syncing")
    await wait_for(
        lambda: beta.name_of("a2@example.com") == "Still Syncing", 5, what="sync on the old mapping"
    )

    mapping.write_text(good)
    daemon.signal(signal.SIGHUP)
    await wait_for(
        lambda: any(e["event"] == "mappings reloaded" for e in daemon.events()), 10, what="the good reload"
    )
    assert await daemon.stop() == 0


@pytest.mark.slow
async def test_sigterm_mid_backlog_exits_cleanly_and_the_restart_finishes_without_duplicates(
    tmp_path: Path,
) -> None:
    rows = 20_000
    alpha = SqlTable.create(tmp_path / "alpha.db", rows)
    beta = SqlTable.create(tmp_path / "beta.db")
    config = write_config(
        tmp_path,
        apps={"alpha": sql_app(alpha, 5.0), "beta": sql_app(beta, 5.0)},
        mapping=PEOPLE_MAPPING,
        daemon={"drain_timeout": 8.0},
    )
    env = base_env(SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN)
    first = DaemonProcess(config, env, name="first")
    await first.start()
    try:
        await wait_for(lambda: beta.count() >= 1000, 60, what="the backlog to start draining")
        first.signal(signal.SIGTERM)
        started = time.monotonic()
        assert await first.wait_exit(10) == 0
        assert time.monotonic() - started < 10
    finally:
        first.kill()
    written = beta.count()
    assert 0 < written < rows, "SIGTERM should have landed mid-backlog"
    stopped = [e for e in first.events() if e["event"] == "stopped"]
    assert stopped
    assert stopped[0]["outbox_depth"] > 0

    second = DaemonProcess(config, env, name="second")
    await second.start()
    try:

        async def drained() -> bool:
            if beta.count() < rows:
                return False
            async with second.client() as admin:
                return bool((await admin.get("/api/status")).json()["outbox_depth"] == 0)

        await wait_for(drained, 90, what="the restart to finish the backlog", every=0.2)
        assert beta.count() == beta.distinct_emails() == rows
        assert alpha.count() == rows
        assert await second.stop() == 0
    finally:
        second.kill()


async def test_signed_webhook_is_applied_within_a_second_and_bad_deliveries_change_nothing(
    tmp_path: Path,
) -> None:
    fake = HubSpotFake(token=HS_TOKEN, client_secret=HS_SECRET)
    await fake.start()
    daemon: DaemonProcess | None = None
    try:
        ada = fake.seed({"email": "ada@example.com", "firstname": "Ada"})
        bob = fake.seed({"email": "bob@example.com", "firstname": "Bob"})
        product = SqlTable.create(tmp_path / "product.db")
        crm = {
            "connector": "hubspot",
            "poll_interval": 3600.0,
            "settings": {"base_url": fake.url, "properties": ["email", "firstname"]},
        }
        config = write_config(
            tmp_path,
            apps={"crm": crm, "product": sql_app(product, 3600.0)},
            mapping=CRM_MAPPING,
            daemon={"webhook_max_bytes": 4096},
        )
        env = base_env(
            SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN,
            SYNCD_APPS__CRM__SETTINGS__TOKEN=HS_TOKEN,
            SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET=HS_SECRET,
        )
        daemon = await DaemonProcess(config, env).start()
        await wait_for(
            lambda: product.names() == {"ada@example.com": "Ada", "bob@example.com": "Bob"},
            15,
            what="the first sync",
        )
        hook = f"{daemon.url}/webhooks/crm"
        fake.webhook_url = hook

        # A person edits the contact in HubSpot: the signed webhook makes the write, no poll involved
        # (polls are an hour apart). The latency itself is measured by benchmarks/bench_webhook_latency.py.
        fake.edit(ada, {"firstname": "Augusta"})
        await wait_for(
            lambda: product.name_of("ada@example.com") == "Augusta", 10.0, what="the webhook's write"
        )
        await fake.webhooks_idle()
        delivered = fake.deliveries[-1]
        assert delivered.status == 200

        # Silent edits (no webhook): only an accepted delivery could bring them into the product table.
        fake.webhook_url = None
        fake.edit(ada, {"firstname": "Silent"})
        fake.edit(bob, {"firstname": "Robert"})
        fake.webhook_url = hook
        event = [
            {
                "eventId": 77001,
                "subscriptionId": 4002,
                "portalId": fake.portal_id,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": int(ada),
                "propertyName": "firstname",
                "propertyValue": "Silent",
            }
        ]
        body = json.dumps(event).encode()
        now_ms = int(time.time() * 1000)

        def signed(payload: bytes, *, secret: str = HS_SECRET, ms: int = now_ms) -> dict[str, str]:
            return {
                "X-HubSpot-Signature-v3": sign_v3(secret, "POST", hook, payload, ms),
                "X-HubSpot-Request-Timestamp": str(ms),
                "Content-Type": "application/json",
            }

        async with httpx.AsyncClient(timeout=10) as client:
            forged = await client.post(hook, content=body, headers=signed(body, secret="not-the-secret"))
            stale = await client.post(hook, content=body, headers=signed(body, ms=now_ms - 600_000))
            unsigned = await client.post(hook, content=body, headers={"Content-Type": "application/json"})
            big = b"[" + b" " * 5000 + b"]"
            oversized = await client.post(hook, content=big, headers=signed(big))
            garbage = await client.post(hook, content=b"\x00not json{", headers=signed(b"\x00not json{"))
            wrong_shape = await client.post(hook, content=b'{"a": 1}', headers=signed(b'{"a": 1}'))
            unknown = await client.post(f"{daemon.url}/webhooks/nope", content=body, headers=signed(body))
            check = await client.get(hook)
            assert [r.status_code for r in (forged, stale, unsigned)] == [401, 401, 401]
            assert "signature" in forged.json()["error"]
            assert "stale" in stale.json()["error"] or "timestamp" in stale.json()["error"]
            assert oversized.status_code == 413
            assert [garbage.status_code, wrong_shape.status_code] == [400, 400]
            assert "JSON" in garbage.json()["error"]
            assert unknown.status_code == 404
            assert check.status_code == 200

            # A valid delivery about bob (it carries his new name, as HubSpot's would); once it is
            # applied, any accepted earlier one would be too.
            good = json.dumps(
                [{**event[0], "eventId": 77002, "objectId": int(bob), "propertyValue": "Robert"}]
            ).encode()
            first = await client.post(hook, content=good, headers=signed(good))
            assert first.status_code == 200
            assert first.json() == {"received": 1, "new": 1}
            await wait_for(lambda: product.name_of("bob@example.com") == "Robert", 5, what="bob's webhook")
            assert product.name_of("ada@example.com") == "Augusta"

            again = await client.post(hook, content=good, headers=signed(good))
            assert again.status_code == 200
            assert again.json() == {"received": 1, "new": 0}

            metrics = (
                await client.get(f"{daemon.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            ).text
        assert 'syncd_webhooks_rejected_total{app="crm",reason="unverified"} 3.0' in metrics
        assert 'syncd_webhooks_rejected_total{app="crm",reason="too_large"} 1.0' in metrics
        assert 'syncd_webhooks_rejected_total{app="crm",reason="malformed"} 2.0' in metrics
        assert 'syncd_webhooks_rejected_total{app="-",reason="unknown_app"} 1.0' in metrics
        assert await daemon.stop() == 0

        # The log of this whole run never shows a secret.
        text = daemon.log_text()
        assert "webhook rejected" in text
        assert "webhook accepted" in text
        for secret in (HS_TOKEN, HS_SECRET, ADMIN_TOKEN):
            assert secret not in text
    finally:
        if daemon is not None:
            daemon.kill()
        await fake.stop()
