"""A throwaway PostgreSQL for tests: one server per test session, one fresh database per test.

The server is the one ``SYNCD_TEST_POSTGRES_URL`` names (any database on it that the user may
create databases from), else one started from the ``pgserver`` wheel (it ships the PostgreSQL
binaries) in a temporary folder of the test session. pytest-xdist workers share that one
server: ``pgserver`` starts it under an inter-process lock, and the last process using it stops
it and deletes its folder when it exits. Each test gets its own database, created from the server's template and dropped after.

Without either, tests that need PostgreSQL skip with the reason; in CI (``CI=true``) they fail
instead, so a CI machine that lost PostgreSQL cannot pass by skipping the backend.

Use from a ``conftest.py``::

    from syncd.testing.postgres import postgres_server, postgres_url  # noqa: F401
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV_URL = "SYNCD_TEST_POSTGRES_URL"

#: Seconds the last ``start_server`` took (for reports; 0.0 when a URL was given).
last_start_seconds = 0.0


class PostgresUnavailable(RuntimeError):
    """Neither a configured server nor the ``pgserver`` wheel could give a PostgreSQL."""


def start_server(folder: Path) -> str:
    """The URL of a PostgreSQL to create test databases on (see the module docstring)."""
    global last_start_seconds
    configured = os.environ.get(ENV_URL)
    if configured:
        return configured
    started = time.perf_counter()
    # pgserver warns when XDG_RUNTIME_DIR is unset (it then keeps its lock file under /tmp).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from pgserver.postgres_server import get_server
        except ImportError as exc:
            raise PostgresUnavailable(f"set {ENV_URL} or install the pgserver wheel ({exc})") from exc
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(folder, cleanup_mode="delete")
    except Exception as exc:  # no binaries for this platform, a user that cannot run them, ...
        raise PostgresUnavailable(f"pgserver could not start PostgreSQL in {folder}: {exc}") from exc
    last_start_seconds = time.perf_counter() - started
    return str(server.get_uri())


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (host, user and options kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(server_url: str) -> str:
    """Create an empty database with a fresh name on the server; returns its URL."""
    import psycopg

    name = f"syncd_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    return with_database(server_url, name)


def drop_database(server_url: str, database_url: str) -> None:
    """Drop a database made by ``create_database`` (connections still open on it are ended)."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL for these tests: {reason}")


def _session_folder() -> Path:
    """A folder for the session's server, the same for every pytest-xdist worker of the session.

    Not under pytest's base temp: pytest removes old base temps of *other* sessions running on
    the same machine at the same time, which would pull the data folder from under the server.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return Path(tempfile.gettempdir()) / f"syncd-test-postgres-{run}"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the session's PostgreSQL server (its ``postgres`` database)."""
    try:
        return start_server(_session_folder())
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
        raise


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    url = create_database(postgres_server)
    try:
        yield url
    finally:
        drop_database(postgres_server, url)
