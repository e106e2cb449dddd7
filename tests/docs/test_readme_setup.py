"""The README's two set-up commands, as a newcomer types them on a fresh machine.

The first (install + ``syncd demo``) runs word for word in a fresh virtual environment made in a
copy of the project, with ``--once`` added so the demo stops after converging. The second
(install + ``pytest``) is what CI runs: ``.ci/run`` must install the same way and call the same
test command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)]


def test_readme_has_exactly_the_two_setup_commands() -> None:
    demo, tests = _setup_commands()
    assert demo.endswith("syncd demo")
    assert tests.endswith("pytest")
    assert "python3 -m venv .venv" in demo
    assert "python3 -m venv .venv" in tests


def test_ci_installs_like_the_readme_and_runs_exactly_its_test_command() -> None:
    _, tests = _setup_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    install = tests.split("&&")[-2].strip()  # pip install -e '.[dev]'
    test_command = tests.split("&&")[-1].strip()
    assert install.replace("pip install", "python -m pip install -q") in ci
    assert re.search(rf"^{re.escape(test_command)}$", ci, flags=re.MULTILINE), (
        "CI must run the README's test command"
    )


@pytest.mark.slow
def test_readme_demo_command_works_in_a_fresh_virtual_environment(tmp_path: Path) -> None:
    demo, _ = _setup_commands()
    copy = tmp_path / "syncd"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "state", "*.egg-info", "__pycache__", ".*_cache", "build"
        ),
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("SYNCD_")
    }
    # Only the venv the command makes is on PATH: nothing installed by the test run can help it.
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "venv" not in p)
    proc = subprocess.run(
        ["bash", "-c", demo + " --once"], cwd=copy, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--once: converged with 0 errors" in proc.stdout
    assert (copy / ".venv" / "bin" / "syncd").exists()
