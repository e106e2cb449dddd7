"""``syncd connectors new`` → the plugin installs, ``syncd connectors list`` shows it, its kit passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_connectors_list_shows_first_party_connectors_with_capabilities(tmp_path: Path) -> None:
    proc = _run([sys.executable, "-m", "syncd.cli", "connectors", "list", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"hubspot", "mailchimp", "sql"} <= set(rows)
    assert rows["hubspot"]["capabilities"]["batch_size"] == 100
    assert rows["sql"]["capabilities"]["conditional_writes"] is True


def test_the_test_only_memory_connector_is_not_listed_as_an_app_connector(tmp_path: Path) -> None:
    listed = _run([sys.executable, "-m", "syncd.cli", "connectors", "list", "--json"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "memory" not in {r["name"] for r in json.loads(listed.stdout)}
    text = _run([sys.executable, "-m", "syncd.cli", "connectors", "list"], tmp_path)
    assert "memory" not in {line.split(" ", 1)[0] for line in text.stdout.splitlines()}
    every = _run([sys.executable, "-m", "syncd.cli", "connectors", "list", "--all", "--json"], tmp_path)
    assert "memory" in {r["name"] for r in json.loads(every.stdout)}  # still installed, for tests


def test_connectors_list_shows_the_zendesk_and_stripe_connectors(tmp_path: Path) -> None:
    proc = _run([sys.executable, "-m", "syncd.cli", "connectors", "list", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    for name, batch in (("zendesk", 100), ("stripe", 20)):
        assert "error" not in rows[name], rows[name]
        assert rows[name]["capabilities"]["batch_size"] == batch
        assert rows[name]["capabilities"]["webhooks"] is True
    text = _run([sys.executable, "-m", "syncd.cli", "connectors", "list"], tmp_path)
    assert text.returncode == 0, text.stderr
    listed = {line.split(" ", 1)[0] for line in text.stdout.splitlines()}
    assert {"hubspot", "mailchimp", "zendesk", "stripe"} <= listed


@pytest.mark.slow
def test_scaffolded_plugin_installs_is_listed_and_passes_the_conformance_kit(tmp_path: Path) -> None:
    made = _run(
        [sys.executable, "-m", "syncd.cli", "connectors", "new", "acme_crm", "--dest", str(tmp_path)],
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    project = next(tmp_path.glob("syncd-acme*"))
    site = tmp_path / "site"
    # a real install of the generated project (its own pyproject, build backend and entry point)
    pip = _run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(project)],
        tmp_path,
    )
    assert pip.returncode == 0, pip.stderr
    listed = _run(
        [sys.executable, "-m", "syncd.cli", "connectors", "list", "--json"], tmp_path, pythonpath=site
    )
    assert listed.returncode == 0, listed.stderr
    names = {r["name"]: r for r in json.loads(listed.stdout)}
    assert "acme_crm" in names, listed.stdout
    assert "error" not in names["acme_crm"]
    tests = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", str(project / "tests")],
        project,
        pythonpath=site,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout
