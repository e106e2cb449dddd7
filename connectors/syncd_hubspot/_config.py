"""Settings of the HubSpot connector and what differs between the CRM object types it serves."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from syncd.connector import ConnectorConfig, ObjectType
from syncd.connector.webhooks import WebhookSecret

_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

ObjectName = Literal["contacts", "companies"]


@dataclass(frozen=True, slots=True)
class CrmObject:
    """One HubSpot CRM object type as the connector uses it."""

    name: str
    #: The property search filters and sorts on for incremental reads.
    last_modified: str
    #: Property group new custom properties go into.
    property_group: str
    #: A property HubSpot keeps unique and can look records up by (``idProperty``), if any.
    unique_key: str | None
    #: Whether ``gdpr-delete`` exists for this object type.
    gdpr: bool
    object_type: ObjectType


CRM_OBJECTS: dict[str, CrmObject] = {
    "contacts": CrmObject(
        name="contacts",
        last_modified="lastmodifieddate",
        property_group="contactinformation",
        unique_key="email",
        gdpr=True,
        object_type=ObjectType(
            "contacts",
            primary_key="id",
            fields=(
                "properties.email",
                "properties.firstname",
                "properties.lastname",
                "properties.phone",
                "properties.company",
                "properties.lifecyclestage",
            ),
            natural_keys=("properties.email",),
        ),
    ),
    "companies": CrmObject(
        name="companies",
        last_modified="hs_lastmodifieddate",
        property_group="companyinformation",
        unique_key=None,
        gdpr=False,
        object_type=ObjectType(
            "companies",
            primary_key="id",
            fields=("properties.name", "properties.domain", "properties.website", "properties.phone"),
            natural_keys=("properties.domain",),
        ),
    ),
}


def _check_names(names: list[str]) -> list[str]:
    bad = [n for n in names if not _PROPERTY_NAME.match(n)]
    if bad:
        raise ValueError(f"not HubSpot property names (lower case, digits, underscores): {bad}")
    return list(dict.fromkeys(names))


def _contacts_only() -> list[ObjectName]:
    return ["contacts"]


class HubSpotConfig(ConnectorConfig):
    """Settings of one HubSpot account (a private-app or OAuth access token)."""

    base_url: str = "https://api.hubapi.com"
    token: SecretStr
    #: The app's client secret, signing webhooks (v3 signature). None: webhooks are refused.
    client_secret: WebhookSecret | None = None
    #: Secrets still accepted during a rotation, besides ``client_secret``.
    previous_client_secrets: list[WebhookSecret] = Field(default_factory=list)
    #: Object types served.
    objects: list[ObjectName] = Field(default_factory=_contacts_only, min_length=1)
    #: Contact properties read (mapping paths look like ``properties.email``).
    properties: list[str] = Field(
        default_factory=lambda: ["email", "firstname", "lastname", "phone", "company", "lifecyclestage"]
    )
    #: Company properties read.
    company_properties: list[str] = Field(default_factory=lambda: ["name", "domain", "website", "phone"])
    #: Custom property holding syncd's entity id (created by the connector); None: no such property.
    entity_id_property: str | None = "syncd_entity_id"
    #: How ``delete`` removes contacts: soft archive (restorable) or a permanent GDPR delete.
    archive_mode: Literal["archive", "gdpr"] = "archive"
    #: Incremental reads re-read this much before the watermark, to cover HubSpot's search index lag.
    search_overlap_seconds: float = Field(default=60.0, ge=0)
    #: Records per listing request (HubSpot's list endpoints return at most 100).
    page_size: int = Field(default=100, ge=1, le=100)
    #: Records per search request (incremental reads; HubSpot returns at most 200). Searches have
    #: their own small rate limit, so the fewer the better.
    search_page_size: int = Field(default=200, ge=1, le=200)
    #: The public URL HubSpot posts webhooks to (the signed URI), when syncd sits behind a proxy.
    webhook_url: str | None = None
    webhook_tolerance_seconds: float = Field(default=300.0, gt=0)
    #: The account's budget per second: HubSpot counts it per 10 s (10.0 here means 100 requests
    #: in any 10 s, the limit of Free and Starter private apps).
    requests_per_second: float = Field(default=10.0, gt=0)
    #: HubSpot allows about 5 searches per second per account; stay below.
    search_requests_per_second: float = Field(default=4.0, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("properties", "company_properties")
    @classmethod
    def _property_names(cls, names: list[str]) -> list[str]:
        return _check_names(names)

    @field_validator("entity_id_property")
    @classmethod
    def _entity_property(cls, name: str | None) -> str | None:
        if name is not None:
            _check_names([name])
        return name

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, not {url!r}")
        return url.rstrip("/")

    def read_properties(self, obj: str) -> list[str]:
        """The properties read for ``obj``: the configured ones plus the entity-id property."""
        names = list(self.properties if obj == "contacts" else self.company_properties)
        if self.entity_id_property and self.entity_id_property not in names:
            names.append(self.entity_id_property)
        return names

    def secrets(self) -> list[str]:
        """Every client secret currently accepted for webhook signatures."""
        found = [self.client_secret, *self.previous_client_secrets]
        return [s.get_secret_value() for s in found if s is not None]
