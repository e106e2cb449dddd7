"""An app's failure is reported with its real cause: credentials, settings, or a passing outage."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from syncd.cli import _print_failures
from syncd.connector import AuthError, ConfigError, WriteItem, WriteResult
from syncd.runner import Runner
from syncd.testing.memory import MemoryConnector

from .engine.world import OBJ, World, person


class SettingsBroken(MemoryConnector):
    """Refuses every create as a connector does whose settings cannot work (a column missing)."""

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        raise ConfigError("b: column 'full_name' is missing from the table")


class TokenRevoked(MemoryConnector):
    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        raise AuthError("b: 401 the token was revoked", status=401)


def _swap(cls: type[MemoryConnector]) -> Callable[[Runner], None]:
    def before(runner: Runner) -> None:
        backend = runner.connectors["b"]
        assert isinstance(backend, MemoryConnector)
        runner.set_connector("b", cls(backend.settings, app="b", backend=backend.backend))

    return before


async def test_an_app_paused_for_its_settings_is_not_said_to_have_rejected_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(tmp_path, apps=("a", "b"))
    world.apps["a"].seed(OBJ, person("ann@acme.io"))
    stats = await world.cycle(before=_swap(SettingsBroken))
    assert stats.paused == ["b"]
    assert stats.failures["b"] == {
        "kind": "config",
        "error": "b: column 'full_name' is missing from the table",
    }
    _print_failures(stats.as_dict())
    err = capsys.readouterr().err
    assert "ALERT: b paused: its settings do not work: b: column 'full_name' is missing" in err
    assert "credentials" not in err


async def test_an_app_whose_credentials_are_rejected_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(tmp_path, apps=("a", "b"))
    world.apps["a"].seed(OBJ, person("ann@acme.io"))
    stats = await world.cycle(before=_swap(TokenRevoked))
    _print_failures(stats.as_dict())
    assert (
        "ALERT: b paused: its credentials were rejected: b: 401 the token was revoked"
        in capsys.readouterr().err
    )


async def test_a_read_that_fails_for_now_is_reported_as_transient_with_its_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(tmp_path, apps=("a", "b"))
    for i in range(10):
        world.apps["a"].seed(OBJ, person(f"p{i}@acme.io"))
    world.apps["a"].fail_listing_after = 3
    stats = await world.cycle()
    assert stats.failures["a"]["kind"] == "transient"
    assert stats.as_dict()["errors"] >= 1
    _print_failures(stats.as_dict())
    assert "ERROR: a: reading failed: it is unreachable or failing for now" in capsys.readouterr().err
