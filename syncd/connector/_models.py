"""Data passed between connectors and the engine.

Remote records carry the app's own field shape (``fields`` is the nested JSON-like dict the app
returns, e.g. ``{"properties": {"email": ...}}``); the mapping translates paths in it to canonical
fields. Everything here is immutable and JSON-serialisable so it can be stored and replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._errors import ConnectorError

#: A cursor is a small JSON object owned by the connector; the engine stores it verbatim.
Cursor = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RemoteRecord:
    """One record as an app holds it.

    ``version`` is whatever the app offers to detect change (etag, version counter, updated_at
    string); ``updated_at`` is the app's own last-modified time when it has one (timezone aware).
    ``deleted`` marks a tombstone: positive evidence that the record was deleted.
    ``replaces`` names records this one took the place of: records the app merged into it, or the
    id it had before its natural key changed (apps whose ids derive from the key). The engine moves
    links from those ids to this one instead of seeing a delete and a new record.
    """

    id: str
    fields: Mapping[str, Any]
    version: str | None = None
    updated_at: datetime | None = None
    deleted: bool = False
    replaces: tuple[str, ...] = ()
    #: Why the record could not be read (undecodable data), without its values; ``fields`` is
    #: then empty. The engine quarantines such a record and goes on with the rest of the page.
    error: str | None = None
    #: A second id the app keeps for the record when ``id`` can change (Mailchimp's member id is
    #: the hash of the email; its ``contact_id`` stays): a record whose id changed without a
    #: webhook saying so is still recognised, and its link moves.
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of changes from ``read_changes``.

    ``cursor`` resumes *after* this page (save it only once the page's effects are committed).
    ``complete`` is true on the last page of a full listing (``cursor=None`` read) that finished
    without error: only a complete listing may be used to infer deletes. ``total`` is an optional
    hint of the read's size, for progress displays.
    """

    records: list[RemoteRecord]
    cursor: Cursor | None
    complete: bool = False
    #: How many records this read delivers in all, when the app says (Mailchimp's
    #: ``total_items``, HubSpot's search ``total``): a hint for progress displays, never used to
    #: decide anything. None when the app does not tell.
    total: int | None = None


@dataclass(frozen=True, slots=True)
class WriteItem:
    """One record to create or update.

    ``fields`` has the app's nested shape and holds only the leaves to write (for an update, only
    changed fields). ``key`` is the idempotency key of the intent (stable across retries);
    ``expected_version`` asks for a conditional write when the connector supports it.
    """

    key: str
    fields: Mapping[str, Any]
    id: str | None = None
    expected_version: str | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one ``WriteItem`` (or one delete id): the record as written, or an error."""

    key: str
    record: RemoteRecord | None = None
    error: ConnectorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class WebhookHint:
    """What a verified webhook told us: re-read this record (or use ``record`` if it is complete).

    ``event_id`` de-duplicates deliveries; ``record`` is set only when the payload carries the whole
    record with a trustworthy version, otherwise the engine re-reads ``record_id``. ``replaces``
    names ids ``record_id`` took over (a merge, an id that followed an email change): their links
    move to ``record_id``.
    """

    event_id: str
    object: str
    record_id: str
    deleted: bool = False
    record: RemoteRecord | None = None
    occurred_at: datetime | None = None
    replaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector can do; the engine and the daemon adapt to it."""

    incremental: bool = True
    full_listing: bool = True
    webhooks: bool = False
    create: bool = True
    update: bool = True
    delete: bool = True
    conditional_writes: bool = False
    tombstones: bool = False
    #: ``delete`` archives (the record can be restored): the ``archive`` delete policy reaches it.
    archives: bool = False
    #: ``list_ids`` is cheap (ids only): polls use it to find hard deletes between full listings.
    id_listing: bool = False
    batch_size: int = 1
    requests_per_second: float | None = None
    #: ``create`` is an idempotent upsert by the object's natural key: sent twice, or for a key
    #: that some record already has, it updates that record instead of adding a second one. The
    #: engine still looks the key up before a first create unless the cycle listed the app
    #: completely: an upsert would otherwise write over a record made since the last read.
    upsert_by_key: bool = False
    #: ``updated_at`` is stamped by the app itself on every change and never goes back (a server
    #: clock, not a field a client sets). A record read with a stamp older than one syncd already
    #: recorded for it was read before that (a re-read or a page that crossed a write of ours or
    #: another daemon's): it is not merged, so a value the app no longer holds is never taken.
    stamped_by_app: bool = False


@dataclass(frozen=True, slots=True)
class ObjectType:
    """An object type the connector serves (``contacts``, ``members``...)."""

    name: str
    primary_key: str = "id"
    fields: tuple[str, ...] = field(default_factory=tuple)
    natural_keys: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class PathProblem:
    """What ``Connector.preflight`` found wrong before anything is read or written.

    ``path`` is the mapped path concerned (a column, ``properties.email``...), or None when the
    object type itself is the problem (a table or audience that does not exist). ``message`` says
    what is wrong in the app's own terms, with a suggestion when there is a near miss.
    """

    path: str | None
    message: str
