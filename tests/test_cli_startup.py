"""A CLI command starts without loading what only some commands use.

Every ``syncd`` invocation, ``--version`` and ``--help`` included, pays for what ``syncd.cli``
imports. The daemon (aiohttp's web server, APScheduler, Prometheus), the HTTP clients, the
connectors, pydantic, structlog and the state store's SQL helpers are loaded by the commands that
use them. These tests read ``sys.modules`` in a fresh interpreter: they state what is loaded,
not how long it takes (timings live in benchmarks/).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Top-level packages (or syncd subpackages) a bare ``import syncd.cli`` must not load.
HEAVY = (
    "aiohttp",
    "httpx",
    "apscheduler",
    "prometheus_client",
    "pydantic",
    "pydantic_settings",
    "structlog",
    "rich",
    "sqlite_utils",
    "syncd.daemon",
    "syncd.app",
    "syncd.runner",
    "syncd.store",
    "syncd.settings",
    "syncd.connector",
    "syncd_carddav",
    "syncd_hubspot",
    "syncd_mailchimp",
    "syncd_sql",
)


def _loaded_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    modules: list[str] = json.loads(out.stdout.splitlines()[-1])
    return modules


def _heavy(modules: list[str], prefixes: tuple[str, ...] = HEAVY) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_the_check_sees_a_heavy_module_when_one_is_loaded() -> None:
    # Guard for the guard: the same subprocess check reports aiohttp once something imports it.
    assert "aiohttp" in _heavy(_loaded_after("import aiohttp"))


def test_importing_the_cli_loads_no_daemon_http_client_connector_or_settings_model() -> None:
    assert _heavy(_loaded_after("import syncd.cli")) == []


def test_importing_the_log_setup_loads_neither_aiohttp_nor_structlog() -> None:
    assert _heavy(_loaded_after("import syncd.log"), ("aiohttp", "structlog", "syncd.connector")) == []


def test_a_one_off_sync_needs_the_lease_but_not_the_daemon_service() -> None:
    # `syncd sync --once` imports LeaseHeld from syncd.daemon: the web server must stay unloaded.
    loaded = _loaded_after("from syncd.daemon import LeaseHeld")
    assert _heavy(loaded, ("aiohttp", "apscheduler", "prometheus_client", "syncd.daemon.service")) == []


def test_the_daemon_package_still_exports_the_daemon_on_first_use() -> None:
    import syncd.daemon

    assert syncd.daemon.Daemon.__name__ == "Daemon"
    assert issubclass(syncd.daemon.DaemonError, Exception)
    with pytest.raises(AttributeError):
        _ = syncd.daemon.NoSuchThing  # type: ignore[attr-defined]


def test_the_store_package_resolves_every_exported_name() -> None:
    import syncd.store

    for name in syncd.store.__all__:
        assert getattr(syncd.store, name) is not None, name
    with pytest.raises(AttributeError):
        _ = syncd.store.NoSuchThing  # type: ignore[attr-defined]


def test_version_prints_the_version_with_the_light_start_up() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert "syncd, version" in out.stdout
