"""A faithful fake of HubSpot's CRM v3 API (contacts, companies, properties) with signed webhooks.

What it reproduces, because sync code must cope with it (see api-reference.md sections 1 and 5):

* the real paths, envelopes and formats: numeric string ids, ``createdAt``/``updatedAt`` as
  ISO-8601 with milliseconds and ``Z``, ``hs_object_id``/``createdate``/last-modified properties,
  ``paging.next.after`` cursors, HubSpot's error body (``status``, ``message``,
  ``correlationId``, ``category``) and its 429 body (``errorType: RATE_LIMIT``, ``policyName``);
* search with filter groups, one sort, ``after`` as an integer string, a 200 page cap and a
  10,000-result window, and a **search index lag**: a write becomes visible to ``/search`` only
  ``index_lag_seconds`` (read when the write happens) after it, on the fake's clock, while
  ``GET``/batch reads see it at once; archived records never appear in search;
* writes: 409 ``Contact already exists. Existing ID: {id}`` on a duplicate email (compared
  case-insensitively; emails are stored lowercase), ``""`` clears a property, unknown or
  read-only properties are a 400 ``VALIDATION_ERROR``, batches hold at most 100 inputs, and
  per-input value errors come back as a 207 multi-status with ``errors[]``/``numErrors``
  (errors carry ``context.objectWriteTraceId`` or ``context.ids`` so clients can tell which input
  failed). As observed in HubSpot's issue tracker, a duplicate email fails a whole
  ``batch/create`` with 409 naming only the first existing contact;
* archive (soft; listed with ``archived=true`` with its ``archivedAt``; restorable through the
  backdoor) versus ``gdpr-delete`` (permanent; an unknown email is blocklisted);
* merge (``POST /merge``, or ``merge`` in the backdoor): the primary's values win, empty ones are
  filled from the merged record, the merged-away id leaves every listing and the survivor names
  it in ``hs_merged_object_ids``; a ``*.merge`` webhook carries ``primaryObjectId``,
  ``mergedObjectIds``, ``newObjectId`` and ``numberOfPropertiesMoved``. Knobs cover what the
  reference leaves open: ``resolve_merged_ids`` (reading a merged-away id returns the survivor
  instead of 404) and ``merge_mints_new_id`` (the survivor gets a new id);
* webhooks for every change, API writes included (that is how echoes reach syncd): JSON arrays
  of at most 100 events, signed with HubSpot's v3 signature (base64 HMAC-SHA256 of method +
  URI + body + millisecond timestamp) plus the legacy v1 header.

Modelling choices where HubSpot's behaviour is not documented are marked *unverified* in the code.
Modules: ``_model`` (properties, records), ``_search``, ``_errors``, ``_signing``, ``_app``
(the server, state changes, backdoor, webhooks) and ``__main__`` (standalone).
Tests drive time through ``clock`` (the fakes' shared ``FakeClock``) and play a human through the backdoor:
``seed``, ``edit``, ``archive``, ``restore``, ``merge``, ``record``.

Standalone: ``python -m syncd.testing.fakes.hubspot --port 8081 --token T --secret S --webhook-url U``.
"""

from .._clock import FakeClock  # re-exported for tests written before the shared clock
from ._app import CapturedRequest, HubSpotFake
from ._errors import HubSpotError
from ._model import COMPANIES, CONTACTS, ObjectSpec, PropertyDef, iso_ms
from ._signing import sign_v3, signature_uri

__all__ = [
    "COMPANIES",
    "CONTACTS",
    "CapturedRequest",
    "FakeClock",
    "HubSpotError",
    "HubSpotFake",
    "ObjectSpec",
    "PropertyDef",
    "iso_ms",
    "sign_v3",
    "signature_uri",
]
