"""syncd connector for CardDAV address books: vCard 3.0/4.0 contacts, synced by resource name."""

from ._config import CardDavConfig
from ._connector import CardDavConnector
from ._errors import InvalidSyncToken, ReportNotSupported
from ._vcard import Card, VCardError

__all__ = [
    "Card",
    "CardDavConfig",
    "CardDavConnector",
    "InvalidSyncToken",
    "ReportNotSupported",
    "VCardError",
]
