"""On a PostgreSQL state shared by daemons, a one-off writer (`syncd sync --once`) refuses to run
while a daemon's heartbeat says it is alive, and runs once the daemons are gone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from syncd.store import connect
from syncd.testing.process import base_env

from ..daemon.harness import PEOPLE_MAPPING, SqlTable, sql_app, write_config


def _sync_once(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd.cli", "--config", str(config), "sync", "--once"],
        env=base_env(),
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_one_off_sync_refuses_while_a_daemon_shares_the_postgresql_state(
    tmp_path: Path, postgres_url: str
) -> None:
    alpha = SqlTable.create(tmp_path / "alpha.db", rows=3)
    beta = SqlTable.create(tmp_path / "beta.db")
    config = write_config(
        tmp_path, apps={"alpha": sql_app(alpha, 60.0), "beta": sql_app(beta, 60.0)}, mapping=PEOPLE_MAPPING
    )
    config.write_text(config.read_text().replace('state = "state/syncd.db"', f'state = "{postgres_url}"'))
    store = connect(postgres_url)
    try:
        store.heartbeat("d-elsewhere", {"pid": 4242, "host": "db-host-2"}, time.time(), 60.0)
        refused = _sync_once(config)
        assert refused.returncode == 1, refused.stderr
        assert "pid 4242 on host db-host-2" in refused.stderr
        assert beta.count() == 0, "nothing was written while the daemon runs"

        store.heartbeat("d-elsewhere", {"pid": 4242, "host": "db-host-2"}, time.time(), 0.0)  # it stopped
        done = _sync_once(config)
        assert done.returncode == 0, done.stderr
        assert beta.count() == 3
    finally:
        store.close()
