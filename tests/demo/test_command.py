"""``syncd demo --once`` as a user runs it: a subprocess that converges, explains and cleans up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncd.demo.dataset import build_dataset

# The lead registers the command on ``syncd.cli.main``; until then the test does it itself.
LAUNCH = (
    "import sys\n"
    "from syncd.cli import main\n"
    "from syncd.demo.cli import demo_command\n"
    "if 'demo' not in main.commands:\n"
    "    main.add_command(demo_command)\n"
    "sys.exit(main())\n"
)


def run_syncd(args: list[str], tmp: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["TMPDIR"] = str(tmp)
    return subprocess.run(
        [sys.executable, "-c", LAUNCH, *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_demo_once_converges_within_a_minute_exits_0_and_removes_its_temporary_directory(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    proc = run_syncd(["demo", "--once", "--seed", "2"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.monotonic() - started < 60
    out = proc.stdout
    assert "300 customers (seed 2): 105 in both apps" in out
    # Customers in both apps are matched, but for those the mapping's filter keeps off the list.
    matched = 105 - len(build_dataset(2, 300).off_list)
    assert re.search(rf"First sync done in [\d.]+ s: {matched} records matched by email, \d+ created", out)
    assert "found 0 writes to make: converged" in out
    assert "--once: converged with 0 errors; stopping." in out
    workspace = re.search(r"Everything is in (\S+) \(removed when the demo stops\)", out)
    assert workspace is not None
    assert Path(workspace.group(1)).parent == tmp_path.resolve()
    assert not Path(workspace.group(1)).exists()
    assert proc.stderr == "", "the demo logs nothing at warning level or above when all goes well"


@pytest.mark.slow
def test_demo_with_the_same_seed_prints_the_same_story(tmp_path: Path) -> None:
    def story(run: str) -> list[str]:
        folder = tmp_path / run
        folder.mkdir()
        proc = run_syncd(["demo", "--once", "--seed", "9", "--customers", "80"], folder)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # ports, paths, tokens and timings differ between runs; the data and the counts must not
        text = re.sub(r"127\.0\.0\.1:\d+", "HOST", proc.stdout)
        text = re.sub(r"Bearer [\w-]+", "Bearer TOKEN", text.replace(str(folder.resolve()), "DIR"))
        text = re.sub(r"admin token: [\w-]+", "admin token: TOKEN", text)
        text = re.sub(r"syncd-demo-\w+", "WS", text)
        return [re.sub(r"[\d.]+ s\b", "N s", line) for line in text.splitlines()]

    assert story("a") == story("b")
