"""The connector base: generic over its settings model, and still open to connectors written before."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

import syncd
from syncd.connector import (
    ConfigError,
    Connector,
    ConnectorConfig,
    Cursor,
    Page,
    RemoteRecord,
    TransientError,
    WriteItem,
    WriteResult,
)
from syncd.connector.http import HttpConnector, RetryPolicy


class AcmeConfig(ConnectorConfig):
    base_url: str = "http://acme.test"
    page_size: int = 10


class OtherConfig(ConnectorConfig):
    token: str = "t"


class _Nothing:
    """The I/O methods, none of which these tests call."""

    async def _no_pages(self) -> AsyncIterator[Page]:
        if False:  # pragma: no cover - an empty async generator
            yield Page([], None)

    def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        return self._no_pages()

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        return []

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        return []

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return []

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return []

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return []


class TypedConnector(_Nothing, Connector[AcmeConfig]):
    name: ClassVar[str] = "typed"


class OldStyleConnector(_Nothing, Connector):
    """Written against the base before it took a type argument: its own model and its own check."""

    name: ClassVar[str] = "old"
    config_model: ClassVar[type[ConnectorConfig]] = AcmeConfig

    def __init__(self, config: ConnectorConfig, *, app: str | None = None) -> None:
        if not isinstance(config, AcmeConfig):
            raise ConfigError("old needs AcmeConfig")
        super().__init__(config, app=app)
        self.settings = config


def test_the_type_argument_is_the_settings_model() -> None:
    assert TypedConnector.config_model is AcmeConfig
    connector = TypedConnector.from_settings({"page_size": 3}, app="crm")
    assert isinstance(connector, TypedConnector)
    assert connector.config == AcmeConfig(page_size=3)
    assert connector.app == "crm"


def test_settings_of_another_model_are_refused_with_a_config_error() -> None:
    with pytest.raises(ConfigError, match="crm: settings must be AcmeConfig, not OtherConfig"):
        TypedConnector(OtherConfig(), app="crm")  # type: ignore[arg-type]


def test_unknown_settings_keys_are_refused_by_the_declared_model() -> None:
    with pytest.raises(ValueError, match="colour"):
        TypedConnector.from_settings({"colour": "red"})


def test_a_subclass_of_a_typed_connector_keeps_its_model() -> None:
    class Child(TypedConnector):
        name: ClassVar[str] = "child"

    assert Child.config_model is AcmeConfig
    assert Child.from_settings({}).config.page_size == 10


def test_a_narrower_config_model_than_the_type_argument_is_allowed() -> None:
    class StricterConfig(AcmeConfig):
        region: str = "eu"

    class Narrow(_Nothing, Connector[AcmeConfig]):
        name: ClassVar[str] = "narrow"
        config_model: ClassVar[type[ConnectorConfig]] = StricterConfig

    assert Narrow.config_model is StricterConfig
    with pytest.raises(ConfigError, match="settings must be StricterConfig"):
        Narrow(AcmeConfig())


def test_a_config_model_that_contradicts_the_type_argument_fails_at_class_creation() -> None:
    with pytest.raises(TypeError, match="config_model 'OtherConfig' is not AcmeConfig"):

        class Contradictory(_Nothing, Connector[AcmeConfig]):
            name: ClassVar[str] = "contradictory"
            config_model: ClassVar[type[ConnectorConfig]] = OtherConfig


def test_an_old_style_connector_still_builds_and_runs() -> None:
    connector = OldStyleConnector.from_settings({"page_size": 5})
    assert connector.config == AcmeConfig(page_size=5)
    assert connector.settings is connector.config
    with pytest.raises(ConfigError, match="old needs AcmeConfig"):
        OldStyleConnector(OtherConfig())


def test_an_old_style_connector_without_a_model_takes_the_base_settings() -> None:
    class Bare(_Nothing, Connector):
        name: ClassVar[str] = "bare"

    assert Bare.config_model is ConnectorConfig
    assert Bare.from_settings({}).config == ConnectorConfig()


def test_the_generic_helper_sets_no_model_of_its_own() -> None:
    assert HttpConnector.config_model is ConnectorConfig


_PLUGINS = """
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

from syncd.connector import (
    Connector, ConnectorConfig, Cursor, Page, RemoteRecord, WriteItem, WriteResult,
)


class PluginConfig(ConnectorConfig):
    page_size: int = 10


class Io:
    def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        raise NotImplementedError

    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        return []

    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        return []

    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return []

    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return []

    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        return []


class OldPlugin(Io, Connector):
    name: ClassVar[str] = "old"
    config_model: ClassVar[type[ConnectorConfig]] = PluginConfig

    def __init__(self, config: ConnectorConfig, *, app: str | None = None) -> None:
        super().__init__(config, app=app)
        assert isinstance(config, PluginConfig)
        self.settings = config

    def page_size(self) -> int:
        return self.settings.page_size


class NewPlugin(Io, Connector[PluginConfig]):
    name: ClassVar[str] = "new"

    def page_size(self) -> int:
        return self.config.page_size


# A bare ``Connector`` still types every connector, typed or not.
def build(settings: dict[str, int]) -> list[Connector]:
    new: NewPlugin = NewPlugin.from_settings(settings)
    return [OldPlugin.from_settings(settings), new]
"""


def test_old_and_new_style_plugins_pass_a_strict_type_check(tmp_path: Path) -> None:
    """A plugin written against the non-generic base keeps passing ``mypy --strict``."""
    pytest.importorskip("mypy", reason="mypy is in the dev extra")
    (tmp_path / "plugins.py").write_text(textwrap.dedent(_PLUGINS))
    syncd_root = str(Path(syncd.__file__).resolve().parent.parent)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "plugins.py"],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": syncd_root},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the HTTP helper -------------------------------------------------------------------------------


class HttpAcme(_Nothing, HttpConnector[AcmeConfig]):
    name: ClassVar[str] = "acme"

    def client(self) -> Any:
        return self.http_client(
            base_url=self.config.base_url, retry=RetryPolicy(attempts=3, base_delay=0.5, jitter=0.0)
        )


class _Flaky:
    """Answers 503 a number of times, then 200; counts the requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if len(self.requests) <= self.failures:
            return httpx.Response(503, json={"message": "busy"})
        return httpx.Response(200, json={"ok": True})


async def test_the_http_seams_reach_the_client_with_the_connectors_own_retry_policy() -> None:
    flaky = _Flaky(failures=2)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    connector = HttpAcme(AcmeConfig(), app="crm", transport=httpx.MockTransport(flaky), sleep=sleep)
    async with connector.client() as http:
        assert (await http.get("/ping")).json() == {"ok": True}
    assert flaky.requests == ["http://acme.test/ping"] * 3
    assert sleeps == [0.5, 1.0], "the connector's policy, waited through the sleep seam"


async def test_the_retry_seam_overrides_the_connectors_policy() -> None:
    flaky = _Flaky(failures=5)
    connector = HttpAcme(AcmeConfig(), transport=httpx.MockTransport(flaky), retry=RetryPolicy(attempts=1))
    async with connector.client() as http:
        with pytest.raises(TransientError):
            await http.get("/ping")
    assert len(flaky.requests) == 1
