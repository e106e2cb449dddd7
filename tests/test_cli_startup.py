"""A CLI command starts without loading what only some commands use.

Every ``syncd`` invocation, ``--version`` and ``--help`` included, pays for what ``syncd.cli``
imports. The daemon (aiohttp's web server, APScheduler, Prometheus), the HTTP clients, the
connectors, pydantic, structlog and the state store's SQL helpers are loaded by the commands that
use them. These tests read ``sys.modules`` in a fresh interpreter: they state what is loaded,
not how long it takes (timings live in benchmarks/).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

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


def test_a_sync_logging_json_loads_neither_rich_nor_pygments(tmp_path: Path) -> None:
    # httpx (for its command-line client) and structlog (for console tracebacks) import rich and
    # pygments when installed; a sync whose log is not a terminal must not pay for them.
    from tests.cli.sqlworld import SqlWorld, mapping

    world = SqlWorld(tmp_path, mapping())
    world.insert("a", email="ada@example.org", name="Ada")
    code = (
        "import json, sys\n"
        "from syncd.cli import main\n"
        "try:\n"
        "    main(['--config', 'config.toml', 'sync', '--once'], standalone_mode=False)\n"
        "finally:\n"
        "    print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    modules = json.loads(out.stdout.splitlines()[-1])
    assert "created 1" in out.stdout, out.stdout + out.stderr
    assert {"structlog", "httpx", "syncd_sql"} <= set(modules)
    assert _heavy(modules, ("rich", "pygments")) == []
    rows = sqlite3.connect(tmp_path / "b.db").execute("SELECT email, name FROM b").fetchall()
    assert rows == [("ada@example.org", "Ada")]


def test_a_json_log_still_carries_the_traceback_without_rich() -> None:
    code = (
        "import sys\n"
        "from syncd.log import configure, get_logger, load_libraries\n"
        "load_libraries()\n"
        "configure('json')\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    get_logger('t').exception('failed')\n"
        "import rich.console\n"
        "print('rich' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = json.loads(out.stderr.strip().splitlines()[-1])
    assert line["event"] == "failed"
    assert "ZeroDivisionError: division by zero" in line["exception"]
    # rich stays importable for the code that draws on a terminal.
    assert out.stdout.strip() == "True"
