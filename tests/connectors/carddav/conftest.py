"""Fixtures: one real Radicale per test session (per xdist worker), a fresh address book per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from syncd.connector.http import RetryPolicy
from syncd.testing import radicale
from syncd_carddav import CardDavConfig, CardDavConnector

USER = "ada"
PASSWORD = "analytical-engine"
OTHER_USER = "charles"
OTHER_PASSWORD = "difference-engine"
#: Retries without real waiting worth mentioning.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=0.005, max_delay=0.02, jitter=0.0)

ConnectorFactory = Callable[..., CardDavConnector]


@pytest.fixture(scope="session")
def radicale_server() -> Iterator[radicale.RadicaleServer]:
    if not radicale.available():
        pytest.skip("radicale is not installed (it is in the dev extra)")
    with radicale.RadicaleServer({USER: PASSWORD, OTHER_USER: OTHER_PASSWORD}) as server:
        yield server


@pytest.fixture
def book(radicale_server: radicale.RadicaleServer) -> str:
    """The path of a new, empty address book of USER."""
    return radicale_server.create_addressbook(USER)


@pytest.fixture
def dav(radicale_server: radicale.RadicaleServer) -> Iterator[httpx.Client]:
    """A plain WebDAV client logged in as USER: the person editing cards behind syncd's back."""
    with radicale_server.client(USER) as client:
        yield client


@pytest.fixture
async def make_connector(
    radicale_server: radicale.RadicaleServer, book: str
) -> AsyncIterator[ConnectorFactory]:
    made: list[CardDavConnector] = []

    def make(
        *, transport: httpx.AsyncBaseTransport | None = None, retry: RetryPolicy = FAST_RETRY, **settings: Any
    ) -> CardDavConnector:
        values: dict[str, Any] = {
            "url": radicale_server.url + book,
            "username": USER,
            "password": PASSWORD,
            **settings,
        }
        connector = CardDavConnector(CardDavConfig.model_validate(values), transport=transport, retry=retry)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()


@pytest.fixture
def connector(make_connector: ConnectorFactory) -> CardDavConnector:
    return make_connector()
