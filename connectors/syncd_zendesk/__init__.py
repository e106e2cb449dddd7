"""syncd connector for Zendesk Support: users (with custom user fields) and organizations."""

from ._client import RateBudget, TooManyJobs
from ._config import ZendeskConfig
from ._connector import ZendeskConnector
from ._webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "RateBudget",
    "TooManyJobs",
    "ZendeskConfig",
    "ZendeskConnector",
]
