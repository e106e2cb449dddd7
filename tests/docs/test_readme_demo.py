"""The README's demo transcript is what ``syncd demo`` prints, line for line.

The demo runs in-process with the command's defaults; the test does what the README shows the
user doing (the HubSpot edit, then Ctrl-C) and compares the output with the README's block once
ports, the temporary directory, the admin token, clock times and durations are masked on both
sides.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import click
import pytest
from rich.console import Console

from syncd.demo.cli import demo_command
from syncd.demo.run import READY, demo
from syncd.demo.session import DemoSession

from ..demo.curl import run_curl

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def readme_transcript() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```\n$ syncd demo\n", 1)[1].split("\n```", 1)[0]
    return [line for line in block.splitlines() if line != "^C"]


def masked(lines: list[str], workspace: str | None = None) -> list[str]:
    out = []
    for line in lines:
        if workspace is not None:
            line = line.replace(workspace, "DIR")
        line = re.sub(r"/tmp/syncd-demo-\w+", "DIR", line)
        line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
        line = re.sub(r"Bearer (?!pat-na1-)[\w-]+", "Bearer TOKEN", line)
        line = re.sub(r"the admin token: [\w-]+", "the admin token: TOKEN", line)
        line = re.sub(r"^\d\d:\d\d:\d\d ", "HH:MM:SS ", line)
        line = re.sub(r"\b\d+\.\d s\b", "N s", line)
        out.append(line.rstrip())
    return out


def default(name: str) -> int:
    option = next(p for p in demo_command.params if isinstance(p, click.Option) and p.name == name)
    assert isinstance(option.default, int)
    return option.default


async def test_the_readme_demo_transcript_is_what_syncd_demo_prints() -> None:
    buffer = io.StringIO()
    session = DemoSession(
        Console(file=buffer, width=100), seed=default("seed"), customers=default("customers")
    )
    running = asyncio.create_task(demo(session, once=False))
    deadline = time.monotonic() + 60
    while READY not in buffer.getvalue():
        assert not running.done(), buffer.getvalue()
        assert time.monotonic() < deadline, "the demo did not converge"
        await asyncio.sleep(0.02)
    edit = next(line.strip() for line in buffer.getvalue().splitlines() if "-X PATCH" in line)
    assert (await run_curl(edit)).status_code == 200
    while "(written to email)" not in buffer.getvalue():
        assert time.monotonic() < deadline, "the edit did not propagate"
        await asyncio.sleep(0.02)
    assert session.daemon is not None
    session.daemon.request_stop("Ctrl-C")
    assert await asyncio.wait_for(running, 30) == 0

    printed = masked(buffer.getvalue().splitlines(), str(session.workspace.root))
    assert printed == masked(readme_transcript())
