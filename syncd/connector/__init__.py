"""The connector SDK: the interface every app connector implements, and its data types."""

from ._base import CONNECTOR_API_VERSION, ConfigT, Connector, ConnectorConfig
from ._errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    NotFound,
    OutcomeUnknown,
    PermanentError,
    PreconditionFailed,
    RateLimited,
    TransientError,
    WebhookVerificationError,
)
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
from ._registry import available, load

__all__ = [
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
    "ObjectType",
    "OutcomeUnknown",
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
]
