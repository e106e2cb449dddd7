"""The connector interface: the one contract between syncd's core and an app.

A connector is a class registered under the entry-point group ``syncd.connectors``. The core only
ever sees this interface; first-party connectors are discovered exactly like third-party ones.

Conventions every connector follows:

* ``read_changes(obj, None)`` is a full listing; its last page has ``complete=True`` only if the
  whole listing succeeded. ``read_changes(obj, cursor)`` resumes strictly after what the cursor
  covers, may repeat records (overlap is fine) but never skips one.
* Writes are batched: ``create``/``update``/``delete`` take up to ``capabilities.batch_size`` items
  and return one ``WriteResult`` per item, in order, with the record as written (and its new
  version) or a typed error. A failure of one item never fails the others; a failure of the whole
  request (auth, transport) is raised.
* ``find`` looks records up by a natural key (e.g. email) so that syncd links an existing record
  instead of creating a duplicate; comparison is case-insensitive and ignores surrounding spaces.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ._errors import ConnectorError, WebhookVerificationError
from ._models import (
    Capabilities,
    Cursor,
    ObjectType,
    Page,
    PathProblem,
    RemoteRecord,
    WebhookHint,
    WriteItem,
    WriteResult,
)

#: Version of this interface. A connector declares the version it was written for.
CONNECTOR_API_VERSION = 1


class ConnectorConfig(BaseModel):
    """Base of every connector's settings model (secrets as ``SecretStr``)."""

    model_config = ConfigDict(extra="forbid")


class Connector(ABC):
    """Base class of all connectors. Subclasses declare the class attributes and implement I/O."""

    #: Registry name (``hubspot``, ``sql``...).
    name: ClassVar[str]
    #: Connector interface version the class implements.
    api_version: ClassVar[int] = CONNECTOR_API_VERSION
    #: The connector's own release version.
    version: ClassVar[str] = "0.0.0"
    #: Pydantic model of the connector's settings.
    config_model: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Object types the connector serves.
    objects: ClassVar[tuple[ObjectType, ...]] = ()

    def __init__(self, config: ConnectorConfig, *, app: str | None = None) -> None:
        self.config = config
        self.app = app or self.name

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, app: str | None = None, base_dir: Path | None = None
    ) -> Connector:
        """Validate raw settings with ``config_model`` and build the connector.

        ``base_dir`` is the config file's folder: a settings model resolves relative file paths
        against it (validators find it as ``info.context["base_dir"]``), never against the
        working directory.
        """
        context = {"base_dir": base_dir} if base_dir is not None else None
        return cls(cls.config_model.model_validate(dict(settings), context=context), app=app)

    def object_type(self, name: str) -> ObjectType:
        for obj in self.objects:
            if obj.name == name:
                return obj
        known = ", ".join(o.name for o in self.objects) or "none"
        raise ConnectorError(f"{self.name}: unknown object type {name!r} (known: {known})")

    # -- lifecycle -----------------------------------------------------------------------------

    async def check(self) -> None:  # noqa: B027 - optional hook with a sensible default
        """Verify credentials and reachability; raise AuthError/TransientError/ConfigError."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook with a sensible default
        """Release connections."""

    async def preflight(
        self, obj: str, *, read: Sequence[str], write: Sequence[str], key: str | None
    ) -> list[PathProblem]:
        """Check, without changing anything in the app, that ``obj`` and the mapped paths exist.

        ``read`` are the paths the mapping reads, ``write`` the ones it writes, ``key`` the path of
        the natural key (looked up by ``find``). Return one ``PathProblem`` per path the app does
        not have (or cannot serve in that direction), ``path=None`` for a missing object type.
        Raise ``ConfigError`` when the settings cannot work at all (a database file that does not
        exist), ``AuthError``/``TransientError`` when the app cannot be asked. The default checks
        nothing: a connector that cannot describe its app returns no problems.
        """
        return []

    # -- reading -------------------------------------------------------------------------------

    @abstractmethod
    def read_changes(self, obj: str, cursor: Cursor | None) -> AsyncIterator[Page]:
        """Pages of records changed after ``cursor`` (all records when ``cursor`` is None)."""

    @abstractmethod
    async def get(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        """The current state of the given records; missing ones are simply absent."""

    @abstractmethod
    async def find(self, obj: str, path: str, values: Sequence[str]) -> list[RemoteRecord]:
        """Records whose field at ``path`` equals one of ``values`` (case-insensitive, trimmed)."""

    async def list_ids(self, obj: str) -> list[str]:
        """Every record id of ``obj`` (no fields): a cheap complete listing that finds hard deletes.

        Only called when ``capabilities.id_listing`` is true; raise ConnectorError if it fails.
        """
        raise NotImplementedError(f"{self.name} has no id listing")

    # -- writing -------------------------------------------------------------------------------

    @abstractmethod
    async def create(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Create records; one result per item, in order."""

    @abstractmethod
    async def update(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Update only the given fields of existing records; one result per item, in order."""

    @abstractmethod
    async def delete(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Delete (or archive, per the connector's settings) records by ``item.id``."""

    async def erase(self, obj: str, items: Sequence[WriteItem]) -> list[WriteResult]:
        """Erase records for good (a person's right to erasure): the app's permanent-deletion
        route, not an archive. The default is ``delete``; connectors whose delete is restorable
        override this. ``NotFound`` for an item means there was nothing left to erase."""
        return await self.delete(obj, items)

    # -- webhooks ------------------------------------------------------------------------------

    def verify_webhook_request(self, method: str, url: str, headers: Mapping[str, str]) -> None:  # noqa: B027
        """Raise WebhookVerificationError if the request can be refused before its body is read.

        The daemon calls this first, so an unauthenticated sender cannot make it buffer a body:
        check here what needs no body (a secret in the URL, required signature headers, a
        timestamp's freshness). ``verify_webhook`` still runs on the full request afterwards.
        The default accepts everything (the full check decides).
        """

    def verify_webhook(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise WebhookVerificationError unless the request is authentic and fresh."""
        raise WebhookVerificationError(f"{self.name} does not accept webhooks")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookHint]:
        """Turn a verified webhook body into hints. Raise ValueError for a malformed body."""
        raise ValueError(f"{self.name} does not accept webhooks")


__all__ = [
    "CONNECTOR_API_VERSION",
    "Capabilities",
    "Connector",
    "ConnectorConfig",
    "Cursor",
    "ObjectType",
    "Page",
    "PathProblem",
    "RemoteRecord",
    "WebhookHint",
    "WriteItem",
    "WriteResult",
]
