"""The SDK's surface (``syncd.connector`` and its public modules): what plugins may rely on."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

import syncd.connector

#: The SDK's public modules; plugins import from these and from the package itself.
PUBLIC_MODULES = (
    "syncd.connector.http",
    "syncd.connector.pagination",
    "syncd.connector.redact",
    "syncd.connector.webhooks",
)


def _isort_order(name: str) -> tuple[int, str]:
    """The order ruff keeps ``__all__`` in: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def test_the_package_exports_exactly_its_sorted_all() -> None:
    public = {
        name
        for name, value in vars(syncd.connector).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert syncd.connector.__all__ == sorted(syncd.connector.__all__, key=_isort_order)
    assert public == set(syncd.connector.__all__)


def test_the_package_exports_the_interface_its_plugins_are_written_against() -> None:
    assert set(syncd.connector.__all__) == {
        "CONNECTOR_API_VERSION",
        "AuthError",
        "Capabilities",
        "ConfigError",
        "ConfigT",
        "Connector",
        "ConnectorConfig",
        "ConnectorError",
        "Cursor",
        "NotFound",
        "OutcomeUnknown",
        "ObjectType",
        "Page",
        "PathProblem",
        "PermanentError",
        "PreconditionFailed",
        "RateLimited",
        "RemoteRecord",
        "TransientError",
        "WebhookHint",
        "WebhookVerificationError",
        "WriteItem",
        "WriteResult",
        "available",
        "load",
    }


def test_every_export_is_defined_inside_the_sdk() -> None:
    for name in syncd.connector.__all__:
        value = getattr(syncd.connector, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("syncd.connector."), (name, value.__module__)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_each_public_module_lists_every_public_definition_in_a_sorted_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported: list[str] = module.__all__
    assert exported == sorted(exported, key=_isort_order)
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what the module does not have: {missing}"
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module_name
    }
    assert defined <= set(exported), (
        f"{module_name} defines public names it does not export: {defined - set(exported)}"
    )
