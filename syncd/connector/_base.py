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
* A connector names its settings model once, as the type argument of the base:
  ``class AcmeConnector(Connector[AcmeConfig])``. The base then sets ``config_model``, checks the
  settings it is given and types ``self.config`` as ``AcmeConfig``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict
from typing_extensions import TypeVar

from ._errors import ConfigError, ConnectorError, WebhookVerificationError
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


#: A connector's settings model. The default keeps a plain ``class X(Connector)`` valid (and
#: accepted by strict type checkers): its ``config`` is a ``ConnectorConfig``, as it always was.
#: Covariant, so that ``Connector`` (any settings) is still the type of every connector: a
#: ``Connector[HubSpotConfig]`` goes wherever the core or a plugin expects a ``Connector``.
ConfigT = TypeVar("ConfigT", bound=ConnectorConfig, default=ConnectorConfig, covariant=True)


def _declared_config(cls: type) -> type[ConnectorConfig] | None:
    """The settings model named in ``cls``'s own bases as ``Connector[Model]``, if any."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = get_origin(base)
        if not (isinstance(origin, type) and issubclass(origin, Connector)):
            continue
        for arg in get_args(base):
            if isinstance(arg, type) and issubclass(arg, ConnectorConfig):
                return arg
    return None


class Connector(ABC, Generic[ConfigT]):
    """Base class of all connectors. Subclasses declare the class attributes and implement I/O.

    Generic over the settings model: ``class AcmeConnector(Connector[AcmeConfig])`` sets
    ``config_model = AcmeConfig``, makes the constructor refuse any other settings object
    (``ConfigError``) and types ``self.config`` as ``AcmeConfig``, so the connector needs no
    ``isinstance`` check of its own.

    Backwards compatible with connectors written before the type argument existed: a plain
    ``class AcmeConnector(Connector)`` with ``config_model = AcmeConfig`` still builds, runs and
    type-checks (``ConfigT`` defaults to ``ConnectorConfig``, so ``self.config`` keeps that type
    and such a constructor may keep its own check and its own ``config: ConnectorConfig``
    parameter). Both forms get the same check against ``config_model``. Naming both, the
    ``config_model`` must be the type argument or a subclass of it (``TypeError`` otherwise).
    """

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

    #: The validated settings this instance was built with.
    config: ConfigT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = _declared_config(cls)
        if declared is None:
            return
        own = cls.__dict__.get("config_model")
        if own is None:
            cls.config_model = declared
        elif not (isinstance(own, type) and issubclass(own, declared)):
            raise TypeError(
                f"{cls.__name__}: config_model {getattr(own, '__name__', own)!r} is not "
                f"{declared.__name__}, the settings model named in Connector[{declared.__name__}]"
            )

    def __init__(self, config: ConfigT, *, app: str | None = None) -> None:
        model = type(self).config_model
        if not isinstance(config, model):
            raise ConfigError(
                f"{app or getattr(self, 'name', type(self).__name__)}: settings must be "
                f"{model.__name__}, not {type(config).__name__}"
            )
        self.config = config
        self.app = app or self.name

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, app: str | None = None, base_dir: Path | None = None
    ) -> Self:
        """Validate raw settings with ``config_model`` and build the connector.

        ``base_dir`` is the config file's folder: a settings model resolves relative file paths
        against it (validators find it as ``info.context["base_dir"]``), never against the
        working directory.
        """
        context = {"base_dir": base_dir} if base_dir is not None else None
        config = cls.config_model.model_validate(dict(settings), context=context)
        # ``config_model`` is ``ConfigT`` by construction (``__init_subclass__``); the constructor
        # checks it again at run time.
        return cls(cast(ConfigT, config), app=app)

    def _shadow_class_vars(
        self, *, capabilities: Capabilities | None = None, objects: tuple[ObjectType, ...] | None = None
    ) -> None:
        """Give this instance its own ``capabilities`` or ``objects`` where its settings decide them.

        Both are ClassVars in the interface (what the class can do, what it serves); a value set
        here shadows the class's for this instance only (a table named in the settings, a delete
        mode that cannot be undone, a configured batch size).
        """
        if capabilities is not None:
            vars(self)["capabilities"] = capabilities
        if objects is not None:
            vars(self)["objects"] = objects

    def object_type(self, name: str) -> ObjectType:
        for obj in self.objects:
            if obj.name == name:
                return obj
        known = ", ".join(o.name for o in self.objects) or "none"
        raise ConnectorError(f"{self.name}: unknown object type {name!r} (known: {known})")

    # -- lifecycle -----------------------------------------------------------------------------

    async def check(self) -> None:
        """Verify credentials and reachability; raise AuthError/TransientError/ConfigError."""

    async def aclose(self) -> None:
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

    async def cursor_after_writes(self, obj: str, cursor: Cursor) -> Cursor | None:
        """A cursor past this connector's own writes, or None to keep ``cursor`` as it is.

        Called once a cycle's writes are settled (each success recorded as the record's new
        baseline), with the cursor saved for ``obj``. The next read would return those writes
        only for the engine to recognise them as echoes; a connector that can tell that every
        change after ``cursor`` is exactly one of its own writes (same record, same version as
        the write returned) may return a cursor past them, so the next read skips them. It
        returns None as soon as anything else may have changed: a cursor never skips a change
        that is not the connector's own. The default keeps the cursor.
        """
        return None

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

    def verify_webhook_request(self, method: str, url: str, headers: Mapping[str, str]) -> None:
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

    def records_from_webhooks(self, obj: str, ids: Sequence[str]) -> list[RemoteRecord]:
        """Records among ``ids`` whose current state the webhooks parsed so far tell, read from no app.

        Called before the re-read a webhook causes: ids answered here are not re-read. Answer
        only for a record whose every change since it was last read in full came with its new
        values, whatever order the events arrived in; give such a record no ``version`` unless
        the events prove it is the app's current one. The default answers for none.
        """
        return []


__all__ = [
    "CONNECTOR_API_VERSION",
    "Capabilities",
    "ConfigT",
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
