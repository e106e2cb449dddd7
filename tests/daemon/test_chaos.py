"""Chaos: `syncd run` as a real process over two SQL apps with edits on both sides, killed with
SIGKILL at seeded random moments, round after round; then restarted until quiet.

After quiescence: no duplicate in either app, both apps agree, every last edit of each side was
either applied or recorded (with its value) in the change log, a further full cycle writes
nothing, the state database passes ``integrity_check``, and there is no dead letter.

Size and rounds: ``SYNCD_CHAOS_RECORDS`` (default 4,000 records across both apps, so the suite
stays within its time on a 2-core machine; run it with 10,000 or more before a release) and
``SYNCD_CHAOS_ROUNDS`` (default 10); ``SYNCD_CHAOS_SEED`` picks the kill moments and the edits.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from .harness import (
    ADMIN_TOKEN,
    PEOPLE_MAPPING,
    DaemonProcess,
    SqlTable,
    base_env,
    sql_app,
    stamp,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow

RECORDS = int(os.environ.get("SYNCD_CHAOS_RECORDS", "4000"))
ROUNDS = int(os.environ.get("SYNCD_CHAOS_ROUNDS", "10"))
SEED = int(os.environ.get("SYNCD_CHAOS_SEED", "20261130"))


def _insert_range(table: SqlTable, start: int, stop: int) -> None:
    with closing(sqlite3.connect(table.path, timeout=30)) as db:
        db.executemany(
            "INSERT INTO users (email, name, updated_at) VALUES (?, ?, ?)",
            [(f"user{i}@example.com", f"User {i}", stamp()) for i in range(start, stop)],
        )
        db.commit()


def _changelog_values(state: Path) -> set[tuple[str, str]]:
    """(app, new value) of every change-log line about the name field."""
    with closing(sqlite3.connect(state)) as db:
        rows = db.execute("SELECT app, new FROM changelog WHERE field = 'name'").fetchall()
    return {(str(app), json.loads(new)) for app, new in rows if new is not None}


@pytest.mark.timeout(900)
async def test_kill_9_at_random_moments_with_edits_on_both_sides_converges_without_loss(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    half = RECORDS // 4
    # alpha holds users 0..2h-1, beta users h..3h-1: h shared, h unique to each side.
    alpha = SqlTable.create(tmp_path / "alpha.db")
    beta = SqlTable.create(tmp_path / "beta.db")
    _insert_range(alpha, 0, 2 * half)
    _insert_range(beta, half, 3 * half)
    config = write_config(
        tmp_path,
        apps={"alpha": sql_app(alpha, 0.5), "beta": sql_app(beta, 0.5)},
        # Differing values at a first match (an edit during the initial sync) follow the policy too.
        mapping=PEOPLE_MAPPING.replace('key = "email"', 'key = "email"\ninitial_conflict = "policy"'),
        daemon={"full_reconcile_interval": 86400.0, "drain_timeout": 2.0},
    )
    env = base_env(SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN)
    last_edit: dict[tuple[str, str], str] = {}  # (side, email) -> the side's last value
    tables = {"alpha": alpha, "beta": beta}
    next_new = 3 * half

    for round_no in range(ROUNDS):
        daemon = DaemonProcess(config, env, name=f"round{round_no}")
        await daemon.start(within=60)
        try:
            kill_after = rng.uniform(0.3, 3.0)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + kill_after
            k = 0
            while loop.time() < deadline:
                side = rng.choice(["alpha", "beta"])
                if rng.random() < 0.1:
                    email = f"user{next_new}@example.com"
                    next_new += 1
                    value = f"new r{round_no} e{k}"
                    tables[side].insert(email, value)
                else:
                    email = f"user{rng.randrange(0, 3 * half)}@example.com"
                    if tables[side].name_of(email) is None:
                        continue
                    value = f"{side} r{round_no} e{k}"
                    tables[side].rename(email, value)
                last_edit[(side, email)] = value
                k += 1
                await asyncio.sleep(rng.uniform(0.0, 0.05))  # people editing, not waiting for syncd
        finally:
            daemon.kill()  # SIGKILL: no drain, no lease release, whatever was in flight

    final = DaemonProcess(config, env, name="final")
    await final.start(within=60)
    try:
        seen: dict[str, object] = {}

        async def quiet() -> bool:
            a, b = alpha.names(), beta.names()
            async with final.client() as admin:
                status = (await admin.get("/api/status")).json()
            seen["differ"] = sorted((e, a.get(e), b.get(e)) for e in set(a) | set(b) if a.get(e) != b.get(e))[
                :5
            ]
            seen["outbox_depth"] = status["outbox_depth"]
            return bool(a == b and status["outbox_depth"] == 0 and status.get("inbox_pending", 0) == 0)

        try:
            await wait_for(quiet, 300, what="both apps to converge after the kills", every=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen: {seen}") from exc
        assert await final.stop(within=30) == 0
    finally:
        final.kill()

    # No duplicates, and both apps hold the same people with the same names.
    for table in (alpha, beta):
        assert table.count() == table.distinct_emails()
    assert alpha.names() == beta.names()
    assert len(alpha.names()) == next_new
    # Every side's last edit was applied or is in the change log as that side's value.
    state = tmp_path / "state" / "syncd.db"
    logged = _changelog_values(state)
    names = alpha.names()
    lost = [
        (side, email, value)
        for (side, email), value in last_edit.items()
        if names.get(email) != value and (side, value) not in logged
    ]
    assert lost == []
    # A further full cycle writes nothing; the state is sound; nothing was dead-lettered.
    cli = [sys.executable, "-m", "syncd.cli", "--config", str(config)]
    once = await asyncio.to_thread(
        subprocess.run,
        [*cli, "sync", "--once", "--full", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert once.returncode == 0, once.stderr
    assert json.loads(once.stdout)["writes"] == 0
    with closing(sqlite3.connect(state)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    letters = await asyncio.to_thread(
        subprocess.run,
        [*cli, "deadletters", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(letters.stdout) == []
