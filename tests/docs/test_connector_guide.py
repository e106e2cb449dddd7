"""docs/connector-guide.md: its code names real SDK objects, and its last section works as written.

The slow test follows section 10 to the letter: scaffold the plugin, install it, write the files
the guide shows, create the table, start the fake, and run the commands; the output must be the
output the guide prints.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "connector-guide.md"


def blocks(text: str) -> list[tuple[str, str | None, str]]:
    """Fenced code blocks as (language, title, code)."""
    found = []
    for match in re.finditer(r"^```([^\n]*)\n(.*?)^```$", text, flags=re.M | re.S):
        info = match.group(1).split()
        title = next((w.split("=", 1)[1] for w in info[1:] if w.startswith("title=")), None)
        found.append((info[0] if info else "", title, match.group(2)))
    return found


def test_every_python_snippet_parses_and_imports_only_what_the_sdk_has() -> None:
    snippets = [code for lang, _title, code in blocks(GUIDE.read_text(encoding="utf-8")) if lang == "python"]
    assert len(snippets) >= 6
    checked = 0
    for code in snippets:
        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "syncd":
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                    checked += 1
    assert checked >= 15


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(site: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


@pytest.mark.slow
def test_the_guide_ends_with_a_working_plugin_syncing_with_a_sqlite_table(tmp_path: Path) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("\n## A working plugin\n", 1)[1]
    found = blocks(section)
    files = {title: code for _lang, title, code in found if title}
    assert set(files) == {"serve_fake.py", "config.toml", "mappings/people.toml"}
    shell = next(code for lang, title, code in found if not lang and "syncd sync --once" in code)
    expected = next(code for lang, title, code in found if not lang and code.startswith("ok: "))

    made = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "connectors", "new", "acme", "--dest", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    site = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(tmp_path / "syncd-acme"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr

    work = tmp_path / "try"
    port = str(_free_port())
    for name, code in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code.replace("8765", port))

    env_extra: dict[str, str] = {}
    commands: list[list[str]] = []
    for line in shell.splitlines():
        words = shlex.split(line)
        if words[:1] == ["sqlite3"]:
            db = sqlite3.connect(work / words[1])
            db.execute(words[2])
            db.commit()
            db.close()
        elif words[:1] == ["export"]:
            key, _, value = words[1].partition("=")
            env_extra[key] = value
        elif words[:1] == ["syncd"]:
            commands.append(words[1:])
        else:
            assert words == ["python", "serve_fake.py"], line
    env = _env(site, env_extra)

    fake = subprocess.Popen(
        [sys.executable, "serve_fake.py"], cwd=work, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert fake.stdout is not None
        line = fake.stdout.readline()  # the fake prints this once it serves
        assert line.startswith("fake Acme API at"), line
        output = ""
        for args in commands:
            proc = subprocess.run(
                [sys.executable, "-m", "syncd.cli", *args],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
            output += proc.stdout
        assert output == expected
        rows = sqlite3.connect(work / "product.db").execute("SELECT email, name FROM people ORDER BY email")
        assert rows.fetchall() == [("ada@acme.io", "Ada Lovelace"), ("alan@acme.io", "Alan Turing")]
        again = subprocess.run(
            [sys.executable, "-m", "syncd.cli", "sync", "--once", "--json"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert '"writes": 0' in again.stdout, again.stdout + again.stderr
    finally:
        fake.terminate()
        fake.wait(timeout=30)
        if fake.stdout is not None:
            fake.stdout.close()
