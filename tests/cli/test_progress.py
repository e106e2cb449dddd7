"""Black-box: progress of ``syncd sync --once`` — JSON lines on stderr when not on a terminal,
a rich display on a terminal (a pseudo-terminal here), and the summary printed either way."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .sqlworld import SqlWorld, mapping

pytestmark = pytest.mark.slow


def _world(tmp_path: Path) -> SqlWorld:
    world = SqlWorld(tmp_path, mapping())
    world.executescript(
        "a",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
        "INSERT INTO a (email, name, updated_at) "
        "SELECT 'p' || i || '@example.com', 'P' || i, '2026-01-01T00:00:00.000Z' FROM n;",
    )
    for i in range(40):
        world.insert("b", email=f"b{i}@example.com", name=f"B{i}")
    return world


def _progress_lines(stderr: str) -> list[dict[str, Any]]:
    lines = []
    for line in stderr.splitlines():
        if line.startswith("{") and '"event": "progress"' in line:
            lines.append(json.loads(line))
    return lines


def test_json_progress_lines_on_stderr_carry_the_counts_when_not_on_a_terminal(tmp_path: Path) -> None:
    world = _world(tmp_path)
    proc = world.syncd("sync", "--once", "--progress-every", "0.0001")
    lines = _progress_lines(proc.stderr)
    assert len(lines) >= 2
    last = lines[-1]
    assert last["done"] is True
    assert last["title"] == "sync"
    assert last["apps"] == {"a": {"read": 300, "total": None}, "b": {"read": 40, "total": None}}
    assert last["writes"] == {"done": 340, "planned": 340}
    assert last["phase"] == "writing"
    assert [x for x in lines if not x["done"]], "only the final line was written"
    reads = [sum(app["read"] for app in x["apps"].values()) for x in lines]
    assert reads == sorted(reads)  # counts only grow
    # stdout keeps the summary only: no progress there, no terminal drawing anywhere.
    assert proc.stdout.startswith("linked 0, created 340")
    assert '"event"' not in proc.stdout
    assert "\x1b[" not in proc.stderr + proc.stdout


def test_progress_lines_can_be_turned_off_and_json_output_stays_clean(tmp_path: Path) -> None:
    world = _world(tmp_path)
    proc = world.syncd("sync", "--once", "--json", "--progress-every", "0")
    assert _progress_lines(proc.stderr) == []
    assert json.loads(proc.stdout)["writes"] == 340


def _run_in_pty(args: list[str], cwd: Path, deadline: float = 120.0) -> tuple[int, str]:
    """Run a command with stdin, stdout and stderr on a pseudo-terminal; its exit code and output."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update(COLUMNS="120", LINES="40", TERM="xterm-256color")
    proc = subprocess.Popen(args, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    out = bytearray()
    end = time.monotonic() + deadline
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the command exited and the terminal closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(end - time.monotonic(), 1))
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    return code, out.decode("utf-8", "replace")


def test_on_a_terminal_rich_progress_is_drawn_and_the_summary_still_printed(tmp_path: Path) -> None:
    world = _world(tmp_path)
    code, out = _run_in_pty(
        [sys.executable, "-m", "syncd.cli", "--config", str(tmp_path / "config.toml"), "sync", "--once"],
        tmp_path,
    )
    assert code == 0, out
    assert "read a" in out
    assert "writes" in out
    assert "\x1b[" in out  # drawn in place with terminal control sequences
    assert '"event": "progress"' not in out  # no JSON lines on a terminal
    assert "linked 0, created 340" in out
    assert len(world.rows("b")) == 340
