"""syncd's HubSpot connector (CRM v3 contacts and companies), registered as ``hubspot``."""

from ._config import HubSpotConfig
from ._connector import HubSpotConnector

__all__ = ["HubSpotConfig", "HubSpotConnector"]
