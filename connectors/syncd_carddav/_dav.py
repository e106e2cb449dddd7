"""WebDAV/CardDAV XML: request bodies built with ElementTree, multistatus answers parsed safely.

Answers come from a server we do not control, so they are parsed with defusedxml (no entity
expansion, no external entities). Hrefs are kept as the server sent them (percent-encoded path,
without scheme and host) so they can be sent back verbatim.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

DAV = "DAV:"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
CALSERVER = "http://calendarserver.org/ns/"

ET.register_namespace("d", DAV)
ET.register_namespace("card", CARDDAV)
ET.register_namespace("cs", CALSERVER)


def tag(ns: str, name: str) -> str:
    """Clark notation ``{ns}name`` as ElementTree spells qualified names."""
    return f"{{{ns}}}{name}"


GETETAG = tag(DAV, "getetag")
RESOURCETYPE = tag(DAV, "resourcetype")
DISPLAYNAME = tag(DAV, "displayname")
SYNC_TOKEN = tag(DAV, "sync-token")
SUPPORTED_REPORT_SET = tag(DAV, "supported-report-set")
CURRENT_USER_PRINCIPAL = tag(DAV, "current-user-principal")
ADDRESSBOOK_HOME_SET = tag(CARDDAV, "addressbook-home-set")
ADDRESS_DATA = tag(CARDDAV, "address-data")
ADDRESSBOOK = tag(CARDDAV, "addressbook")
COLLECTION = tag(DAV, "collection")


class DavXmlError(ValueError):
    """A server answer that is not the XML we asked for (or is hostile XML)."""


@dataclass(frozen=True, slots=True)
class DavResponse:
    """One ``<response>`` of a multistatus: its href, status and the properties found (200)."""

    href: str
    status: int | None
    props: dict[str, ET.Element] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        element = self.props.get(name)
        if element is None:
            return None
        return "".join(element.itertext())

    def hrefs(self, name: str) -> list[str]:
        """The ``<href>`` values inside property ``name`` (principal, home set...)."""
        element = self.props.get(name)
        if element is None:
            return []
        return [href_path(h.text or "") for h in element.iter(tag(DAV, "href")) if h.text]

    def has_type(self, name: str) -> bool:
        element = self.props.get(RESOURCETYPE)
        return element is not None and element.find(name) is not None

    def reports(self) -> set[str]:
        element = self.props.get(SUPPORTED_REPORT_SET)
        if element is None:
            return set()
        found: set[str] = set()
        for report in element.iter(tag(DAV, "report")):
            found.update(child.tag for child in report)
        return found

    @property
    def missing(self) -> bool:
        """The whole response says 404: the member is gone (sync-collection) or unknown (multiget)."""
        return self.status == 404


@dataclass(frozen=True, slots=True)
class Multistatus:
    responses: list[DavResponse]
    sync_token: str | None = None


def href_path(href: str) -> str:
    """The path of an href (servers may send absolute URLs), still percent-encoded."""
    return urlsplit(href.strip()).path


def same_path(a: str, b: str) -> bool:
    """Whether two hrefs name the same resource (encodings and a trailing slash aside)."""
    return unquote(a).rstrip("/") == unquote(b).rstrip("/")


def _status(text: str | None) -> int | None:
    parts = (text or "").split()
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def parse_multistatus(body: bytes) -> Multistatus:
    """Parse a 207 body into responses; raise DavXmlError for anything else."""
    try:
        root = SafeET.fromstring(body)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise DavXmlError(f"unreadable multistatus XML: {exc}") from None
    if root.tag != tag(DAV, "multistatus"):
        raise DavXmlError(f"expected a DAV:multistatus, got {root.tag}")
    responses: list[DavResponse] = []
    for node in root.findall(tag(DAV, "response")):
        href_node = node.find(tag(DAV, "href"))
        if href_node is None or not href_node.text:
            continue
        props: dict[str, ET.Element] = {}
        for propstat in node.findall(tag(DAV, "propstat")):
            status = _status(propstat.findtext(tag(DAV, "status")))
            prop = propstat.find(tag(DAV, "prop"))
            if prop is None or (status is not None and not 200 <= status < 300):
                continue
            for element in prop:
                props[element.tag] = element
        responses.append(
            DavResponse(href_path(href_node.text), _status(node.findtext(tag(DAV, "status"))), props)
        )
    token = root.findtext(SYNC_TOKEN)
    return Multistatus(responses, token.strip() if token else None)


def error_conditions(body: bytes) -> set[str]:
    """The precondition names of a ``<DAV:error>`` body (e.g. ``{DAV:}valid-sync-token``)."""
    try:
        root = SafeET.fromstring(body)
    except (ET.ParseError, DefusedXmlException):
        return set()
    if root.tag != tag(DAV, "error"):
        return set()
    return {child.tag for child in root}


def _serialise(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _prop(parent: ET.Element, names: Iterable[str]) -> None:
    prop = ET.SubElement(parent, tag(DAV, "prop"))
    for name in names:
        ET.SubElement(prop, name)


def propfind(names: Sequence[str]) -> bytes:
    root = ET.Element(tag(DAV, "propfind"))
    _prop(root, names)
    return _serialise(root)


def sync_collection(token: str | None, names: Sequence[str]) -> bytes:
    """RFC 6578 sync-collection REPORT from ``token`` (None: the initial sync)."""
    root = ET.Element(tag(DAV, "sync-collection"))
    ET.SubElement(root, SYNC_TOKEN).text = token or ""
    ET.SubElement(root, tag(DAV, "sync-level")).text = "1"
    _prop(root, names)
    return _serialise(root)


def addressbook_multiget(hrefs: Sequence[str]) -> bytes:
    """RFC 6352 addressbook-multiget: ETag and vCard of each href."""
    root = ET.Element(tag(CARDDAV, "addressbook-multiget"))
    _prop(root, [GETETAG, ADDRESS_DATA])
    for href in hrefs:
        ET.SubElement(root, tag(DAV, "href")).text = href
    return _serialise(root)


def addressbook_query(prop_name: str, values: Sequence[str]) -> bytes:
    """RFC 6352 addressbook-query: cards whose ``prop_name`` equals any of ``values`` (caseless)."""
    root = ET.Element(tag(CARDDAV, "addressbook-query"))
    _prop(root, [GETETAG, ADDRESS_DATA])
    filter_ = ET.SubElement(root, tag(CARDDAV, "filter"), {"test": "anyof"})
    for value in values:
        prop_filter = ET.SubElement(filter_, tag(CARDDAV, "prop-filter"), {"name": prop_name})
        match = ET.SubElement(
            prop_filter,
            tag(CARDDAV, "text-match"),
            {"collation": "i;unicode-casemap", "match-type": "equals"},
        )
        match.text = value
    return _serialise(root)


def mkcol_addressbook(display_name: str) -> bytes:
    """RFC 5689 extended MKCOL body creating an address book collection."""
    root = ET.Element(tag(DAV, "mkcol"))
    prop = ET.SubElement(ET.SubElement(root, tag(DAV, "set")), tag(DAV, "prop"))
    resourcetype = ET.SubElement(prop, RESOURCETYPE)
    ET.SubElement(resourcetype, COLLECTION)
    ET.SubElement(resourcetype, ADDRESSBOOK)
    ET.SubElement(prop, DISPLAYNAME).text = display_name
    return _serialise(root)


__all__ = [
    "ADDRESSBOOK",
    "ADDRESSBOOK_HOME_SET",
    "ADDRESS_DATA",
    "COLLECTION",
    "CURRENT_USER_PRINCIPAL",
    "DISPLAYNAME",
    "GETETAG",
    "RESOURCETYPE",
    "SUPPORTED_REPORT_SET",
    "SYNC_TOKEN",
    "DavResponse",
    "DavXmlError",
    "Multistatus",
    "addressbook_multiget",
    "addressbook_query",
    "error_conditions",
    "href_path",
    "mkcol_addressbook",
    "parse_multistatus",
    "propfind",
    "same_path",
    "sync_collection",
    "tag",
]
