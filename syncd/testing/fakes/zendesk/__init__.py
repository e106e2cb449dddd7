"""A faithful fake of Zendesk's Support API v2 (users, identities, organizations, jobs) with signed webhooks.

What it reproduces, because sync code must cope with it (see api-reference.md sections 3 and 5):

* the real paths under ``/api/v2`` (with or without ``.json``), envelopes (``{"user": {...}}``,
  ``{"users": [...], "meta": {...}, "links": {...}}``), integer ids, ISO-8601 timestamps to the
  second with ``Z``, and Zendesk's error body (``error``, ``description``, ``details`` on 422);
* authentication by ``{email}/token:{api_token}`` (Basic) or an OAuth bearer token, with 401
  ``Couldn't authenticate you`` otherwise;
* cursor pagination (``page[size]`` <= 100, ``meta.has_more``, ``links.next``) and offset pagination
  failing past 10,000 records with ``InvalidPaginationDepth``;
* the incremental user export (``/incremental/users/cursor``): ``start_time`` or ``cursor``,
  ``after_cursor``/``after_url``, ``end_of_stream``, deleted users included (``active: false``) and
  everything changed within the last minute left out; the time-based organization export with
  ``end_time`` and its duplicates across pages;
* rate limits on the fake's clock: the plan's requests per rolling minute for the account
  (``X-Rate-Limit``, ``X-Rate-Limit-Remaining``, ``ratelimit-*`` on every answer) and 10 per
  minute for exports, answered with 429 and ``Retry-After`` seconds;
* bulk endpoints answering with a ``job_status`` that moves queued -> working -> completed as it
  is polled, with one result per item (errors included), and ``TooManyJobs`` beyond 30 open jobs;
* ``create_or_update`` matching on email or case-insensitive ``external_id`` (201 vs 200), and the
  identity quirk: an ``email`` sent on update adds a *secondary* identity; the primary changes only
  through the identities API (``make_primary``);
* soft delete (``DELETE /users/{id}``, then ``/deleted_users``) and permanent deletion
  (``DELETE /deleted_users/{id}``, 700 per 10 minutes) leaving a "Permanently Deleted User";
* custom user fields (``user_fields`` keyed by field key, typed), organizations;
* one signed JSON event per webhook POST (``zen:event-type:user.*``/``organization.*``, ids as
  strings in ``detail``), ``X-Zendesk-Webhook-Signature`` = base64 HMAC-SHA256 of the
  ``X-Zendesk-Webhook-Signature-Timestamp`` value followed by the raw body.

Choices where Zendesk's documentation is silent are marked *unverified* or "modelling choice" in
the code (the TooManyJobs status, job result shapes, the export bucket header's name).
Time comes from the fakes' shared ``FakeClock``; tests freeze it and ``advance``.
Tests play an agent through the backdoor: ``seed_user``, ``edit_user``, ``delete_user``,
``seed_organization``, ``add_user_field``, ``hold_jobs``/``release_jobs``.

Standalone: ``python -m syncd.testing.fakes.zendesk --port 8083 --webhook-url URL``.
"""

from .._clock import FakeClock  # re-exported for tests written before the shared clock
from ._app import Hit, ZendeskFake
from ._errors import ZendeskError
from ._model import decode_cursor, encode_cursor, iso_s, sign

__all__ = [
    "FakeClock",
    "Hit",
    "ZendeskError",
    "ZendeskFake",
    "decode_cursor",
    "encode_cursor",
    "iso_s",
    "sign",
]
