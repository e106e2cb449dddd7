"""The store contract suite (syncd.testing.store_contract) on both backends."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.store import StateStore, connect
from syncd.testing.store_contract import StoreContract


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("postgres_url"))


class TestStoreContract(StoreContract):
    @pytest.fixture
    def location(self, backend_location: str) -> str:
        return backend_location

    @pytest.fixture
    def store(self, location: str) -> Iterator[StateStore]:
        store = connect(location)
        yield store
        store.close()


def test_postgres_store_has_every_method_of_the_interface_with_the_same_parameters() -> None:
    from syncd.store import base
    from syncd.store.postgres import PgStore

    names = {
        n
        for cls in StateStore.__mro__
        if cls.__module__ == base.__name__
        for n, v in vars(cls).items()
        if callable(v) and not n.startswith("_")
    }
    assert {"run", "claim_dirty", "take_tokens", "heartbeat", "read_table"} <= names
    for name in sorted(names):
        want = list(inspect.signature(getattr(StateStore, name)).parameters)
        assert list(inspect.signature(getattr(PgStore, name)).parameters) == want, name
