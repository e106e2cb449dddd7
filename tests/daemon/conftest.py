"""In-process daemons for the API and lifecycle tests (the subprocess ones use ``harness``)."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.daemon import Daemon
from syncd.settings import Settings

from .harness import ADMIN_TOKEN, PEOPLE_MAPPING, SqlTable, sql_app, wait_for


def make_settings(
    tmp_path: Path,
    apps: Mapping[str, Mapping[str, Any]],
    mappings: Mapping[str, str],
    *,
    token: str | None = ADMIN_TOKEN,
    **daemon: Any,
) -> Settings:
    folder = tmp_path / "mappings"
    folder.mkdir(exist_ok=True)
    for name, text in mappings.items():
        (folder / f"{name}.toml").write_text(textwrap.dedent(text))
    return Settings(
        state=tmp_path / "state" / "syncd.db",
        mappings=[folder],
        apps=dict(apps),
        daemon={"host": "127.0.0.1", "port": 0, "admin_token": token, **daemon},
    )


async def started(settings: Settings) -> Daemon:
    """Start a daemon and wait for the first poll of every app (or for the app to be paused)."""
    daemon = Daemon(settings)
    await daemon.start()
    await wait_for(
        lambda: set(daemon.metrics.last_poll) | daemon.runner.paused >= set(daemon.apps()),
        15,
        what="the first polls",
    )
    return daemon


@pytest.fixture
def tables(tmp_path: Path) -> tuple[SqlTable, SqlTable]:
    return SqlTable.create(tmp_path / "alpha.db", 3, prefix="a"), SqlTable.create(
        tmp_path / "beta.db", 2, prefix="b"
    )


@pytest.fixture
def pair_settings(tmp_path: Path, tables: tuple[SqlTable, SqlTable]) -> Settings:
    """Two SQL apps polled once at start and then only hourly: the tests drive every poll."""
    alpha, beta = tables
    return make_settings(
        tmp_path, {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}, {"people": PEOPLE_MAPPING}
    )


@pytest.fixture
async def daemon(pair_settings: Settings, tables: tuple[SqlTable, SqlTable]) -> AsyncIterator[Daemon]:
    running = await started(pair_settings)
    alpha, beta = tables
    await wait_for(lambda: alpha.names() == beta.names(), 10, what="the initial sync")
    yield running
    await running.stop()


Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
def client() -> Client:
    """``client(daemon, token=...)``: an HTTP client on a running daemon (token None: anonymous)."""

    def make(daemon: Daemon, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=daemon.url, headers=headers, timeout=10.0)

    return make
