"""The HubSpot fake's data model: property definitions, object types and stored records."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .._clock import to_ms

MAX_BATCH_INPUTS = 100
MAX_LIST_LIMIT = 100
MAX_SEARCH_LIMIT = 200
SEARCH_WINDOW = 10_000
MAX_WEBHOOK_EVENTS = 100
MAX_QUERY_CHARS = 3000
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
DEFAULT_LIMIT = 10
#: The property listing the ids merged into a record, ``;``-separated (HubSpot's name for it; not
#: in the published OpenAPI documents, which describe no property at all).
MERGED_IDS = "hs_merged_object_ids"


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp format: ISO-8601 UTC with milliseconds and ``Z``."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def parse_time_ms(value: str) -> int | None:
    """Epoch milliseconds from a filter value: digits (epoch ms) or an ISO-8601 string."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return to_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


# -- the data model --------------------------------------------------------------------------------


@dataclass
class PropertyDef:
    """One property definition, as ``/crm/v3/properties/{objectType}`` describes it."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    group: str = "contactinformation"
    options: tuple[str, ...] = ()
    unique: bool = False
    read_only: bool = False
    hubspot_defined: bool = True
    description: str = ""
    created_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        stamp = iso_ms(self.created_ms)
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group,
            "description": self.description,
            "options": [
                {"label": o, "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "formField": not self.read_only,
            "archived": False,
            "createdAt": stamp,
            "updatedAt": stamp,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        return body


@dataclass(frozen=True)
class ObjectSpec:
    """What differs between CRM object types (contacts, companies)."""

    name: str
    singular: str
    label: str
    last_modified: str
    group: str
    default_properties: tuple[str, ...]
    text_search: tuple[str, ...]
    builtin: tuple[PropertyDef, ...]
    email_unique: bool = False
    gdpr: bool = False

    @property
    def system_properties(self) -> tuple[str, ...]:
        """Properties HubSpot maintains and returns on every object."""
        return ("createdate", "hs_object_id", self.last_modified)


def _contact_properties() -> tuple[PropertyDef, ...]:
    group = "contactinformation"
    stages = (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    )
    lead_status = ("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT")
    return (
        PropertyDef("email", "Email", group=group),
        PropertyDef("firstname", "First Name", group=group),
        PropertyDef("lastname", "Last Name", group=group),
        PropertyDef("phone", "Phone Number", "string", "phonenumber", group),
        PropertyDef("mobilephone", "Mobile Phone Number", "string", "phonenumber", group),
        PropertyDef("company", "Company Name", group=group),
        PropertyDef("jobtitle", "Job Title", group=group),
        PropertyDef("website", "Website URL", group=group),
        PropertyDef("address", "Street Address", group=group),
        PropertyDef("city", "City", group=group),
        PropertyDef("state", "State/Region", group=group),
        PropertyDef("zip", "Postal Code", group=group),
        PropertyDef("country", "Country/Region", group=group),
        PropertyDef("hs_additional_emails", "Additional email addresses", "enumeration", "checkbox", group),
        PropertyDef("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", group, stages),
        PropertyDef("hs_lead_status", "Lead Status", "enumeration", "radio", group, lead_status),
        PropertyDef("createdate", "Create Date", "datetime", "date", group, read_only=True),
        PropertyDef("lastmodifieddate", "Last Modified Date", "datetime", "date", group, read_only=True),
        PropertyDef("hs_object_id", "Record ID", "number", "number", group, read_only=True),
        PropertyDef(MERGED_IDS, "Merged Contact IDs", "enumeration", "checkbox", group, read_only=True),
    )


def _company_properties() -> tuple[PropertyDef, ...]:
    group = "companyinformation"
    return (
        PropertyDef("name", "Company name", group=group),
        PropertyDef("domain", "Company Domain Name", group=group),
        PropertyDef("website", "Website URL", group=group),
        PropertyDef("phone", "Phone Number", "string", "phonenumber", group),
        PropertyDef("industry", "Industry", group=group),
        PropertyDef("city", "City", group=group),
        PropertyDef("state", "State/Region", group=group),
        PropertyDef("country", "Country/Region", group=group),
        PropertyDef("numberofemployees", "Number of Employees", "number", "number", group),
        PropertyDef("createdate", "Create Date", "datetime", "date", group, read_only=True),
        PropertyDef("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group, read_only=True),
        PropertyDef("hs_object_id", "Record ID", "number", "number", group, read_only=True),
        PropertyDef(MERGED_IDS, "Merged Company IDs", "enumeration", "checkbox", group, read_only=True),
    )


CONTACTS = ObjectSpec(
    name="contacts",
    singular="contact",
    label="Contact",
    last_modified="lastmodifieddate",
    group="contactinformation",
    default_properties=("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    text_search=("email", "firstname", "lastname", "phone", "company"),
    builtin=_contact_properties(),
    email_unique=True,
    gdpr=True,
)
COMPANIES = ObjectSpec(
    name="companies",
    singular="company",
    label="Company",
    last_modified="hs_lastmodifieddate",
    group="companyinformation",
    default_properties=("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    text_search=("name", "domain", "website", "phone"),
    builtin=_company_properties(),
)
SPECS = {spec.name: spec for spec in (CONTACTS, COMPANIES)}


@dataclass
class IndexVersion:
    """What the search index holds for a record from ``visible_ms`` on."""

    visible_ms: int
    properties: dict[str, str]
    created_ms: int
    updated_ms: int


@dataclass
class Record:
    id: int
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None
    index: list[IndexVersion] = field(default_factory=list)

    @property
    def archived(self) -> bool:
        return self.archived_ms is not None


class Collection:
    """The records and property definitions of one object type."""

    def __init__(self, spec: ObjectSpec, created_ms: int) -> None:
        self.spec = spec
        self.records: dict[int, Record] = {}
        #: Ids merged away, each to the id of the record that now holds its data.
        self.merged_into: dict[int, int] = {}
        self.properties: dict[str, PropertyDef] = {}
        #: Values records have held, by (property, lowercased value), for the indexed properties.
        self._held: dict[tuple[str, str], set[int]] = {}
        self._indexed: set[str] = set()
        for prop in spec.builtin:
            self.properties[prop.name] = PropertyDef(**{**prop.__dict__, "created_ms": created_ms})

    def live(self) -> Iterator[Record]:
        return (r for r in self.records.values() if not r.archived)

    def by_unique(self, prop: str, value: str, *, archived: bool = False) -> Record | None:
        """The first record (oldest id) whose ``prop`` equals ``value``, case aside.

        Served from an index of the values each record has held (built on first use per
        property, kept by ``noted``), each candidate checked against the record as it is now,
        so that a bulk write does not scan every record per input.
        """
        wanted = value.strip().lower()
        if prop not in self._indexed:
            for rec in self.records.values():
                held = rec.properties.get(prop)
                if held:
                    self._held.setdefault((prop, held.lower()), set()).add(rec.id)
            self._indexed.add(prop)
        for rec_id in sorted(self._held.get((prop, wanted), ())):
            found = self.records.get(rec_id)
            if (
                found is not None
                and found.archived == archived
                and found.properties.get(prop, "").lower() == wanted
            ):
                return found
        return None

    def noted(self, rec: Record) -> None:
        """Index the values ``rec`` holds now (call after any change of its properties)."""
        for prop in self._indexed:
            held = rec.properties.get(prop)
            if held:
                self._held.setdefault((prop, held.lower()), set()).add(rec.id)

    def unique_properties(self) -> set[str]:
        names = {p.name for p in self.properties.values() if p.unique}
        if self.spec.email_unique:
            names.add("email")
        return names
