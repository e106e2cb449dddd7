"""The store contract suite (syncd.testing.store_contract) on both backends."""

from __future__ import annotations

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
