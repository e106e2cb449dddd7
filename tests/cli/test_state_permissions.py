"""The state holds customer data: ``syncd sync --once`` creates it owner-only, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from ..daemon.harness import PEOPLE_MAPPING, SqlTable, base_env, sql_app, write_config


def test_sync_creates_the_state_folder_0700_and_the_database_wal_and_shm_0600(tmp_path: Path) -> None:
    alpha = SqlTable.create(tmp_path / "alpha.db", 3, prefix="a")
    beta = SqlTable.create(tmp_path / "beta.db", 2, prefix="b")
    config = write_config(
        tmp_path, apps={"alpha": sql_app(alpha, 60.0), "beta": sql_app(beta, 60.0)}, mapping=PEOPLE_MAPPING
    )
    proc = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "sync", "--once", "--config", str(config)],
        cwd=tmp_path,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
        # The usual default umask: without care, files come out world-readable (0644/0755).
        preexec_fn=lambda: os.umask(0o022),
    )
    assert proc.returncode == 0, proc.stderr
    assert len(beta.names()) == 5
    state = tmp_path / "state"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [state, *state.iterdir()]}
    assert modes.pop("state") == 0o700
    assert {"syncd.db"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}
