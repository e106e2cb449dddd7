"""Discovery of connectors through the ``syncd.connectors`` entry-point group."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from ._base import CONNECTOR_API_VERSION, Connector
from ._errors import ConfigError

GROUP = "syncd.connectors"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """Names of every installed connector, sorted."""
    return sorted(_entry_points())


def load(name: str) -> type[Connector]:
    """The connector class registered as ``name``; ConfigError if unknown or incompatible."""
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise ConfigError(f"unknown connector {name!r} (installed: {known})")
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"entry point {name!r} does not name a syncd Connector class")
    if cls.api_version != CONNECTOR_API_VERSION:
        raise ConfigError(
            f"connector {name!r} implements interface v{cls.api_version}, this syncd speaks v{CONNECTOR_API_VERSION}"
        )
    return cls
