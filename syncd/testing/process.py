"""``syncd run`` as a real subprocess, for tests and benchmarks: start it, wait until it is
ready (its ready file), signal or kill it, read its JSON log, talk to its admin API.

Waiting is always polling a condition against a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

#: The admin token the test and benchmark configurations give their daemons.
ADMIN_TOKEN = "admin-token-7f3c9b2e1d"


def base_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any SYNCD_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update(extra)
    return env


@dataclass
class DaemonProcess:
    """``syncd run`` in a subprocess; its log (stderr, JSON lines) goes to a file."""

    config: Path
    env: dict[str, str]
    name: str = "daemon"
    #: Run in the child before ``syncd run`` starts (e.g. to lower its resource limits).
    preexec: Callable[[], None] | None = None
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ready_file(self) -> Path:
        return self.config.parent / f"{self.name}.ready.json"

    @property
    def log_path(self) -> Path:
        return self.config.parent / f"{self.name}.log"

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def spawn(self) -> subprocess.Popen[bytes]:
        self.ready_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "syncd.cli",
            "run",
            "--config",
            str(self.config),
            "--ready-file",
            str(self.ready_file),
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=self.config.parent,
                stdin=subprocess.DEVNULL,
                preexec_fn=self.preexec,
            )
        return self.proc

    async def start(self, within: float = 20.0) -> DaemonProcess:
        proc = self.spawn()

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"syncd run exited with {proc.returncode}:\n{self.log_text()}")
            return self.ready_file.exists()

        await wait_for(ready, within, what="the daemon's ready file")
        self.info = json.loads(self.ready_file.read_text())
        return self

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, within: float) -> int:
        proc = self.proc
        assert proc is not None
        await wait_for(lambda: proc.poll() is not None, within, what="the daemon to exit")
        return int(proc.returncode)

    async def stop(self, within: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        try:
            return await self.wait_exit(within)
        except AssertionError:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0)


async def wait_for(
    check: Callable[[], Any], within: float, *, what: str = "condition", every: float = 0.02
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(every)
