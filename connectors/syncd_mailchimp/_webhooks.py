"""Mailchimp audience webhooks: authenticated by a secret in the URL, decoded from PHP-style forms.

Mailchimp signs nothing: its advice is to put a secret in the webhook URL's query string and
check it on every request. The body is ``application/x-www-form-urlencoded`` with bracketed
keys (``data[merges][FNAME]``) and carries no event id and no record version, so each event
becomes a "re-read this member" hint whose ``event_id`` is the SHA-256 of the raw body (a
redelivery is byte-identical). An ``upemail`` names the member by its new address, and its hint
``replaces`` the id of the old address (ids are hashes of addresses), so links follow the member.
(``data[new_id]`` is not the subscriber hash, so the ids are computed from the addresses.) Mailchimp validates a new webhook URL with a GET; the daemon
answers that GET itself, the connector only sees POSTed events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qs, parse_qsl, urlsplit

from syncd.connector import WebhookHint, WebhookVerificationError
from syncd.connector.webhooks import matches_any

from ._members import subscriber_hash

OBJECT = "members"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
#: Event types about members; ``campaign`` events are acknowledged and ignored.
MEMBER_EVENTS = ("subscribe", "unsubscribe", "profile", "upemail", "cleaned")


def verify_secret(url: str, secrets: Sequence[str]) -> None:
    """Raise WebhookVerificationError unless the URL has exactly one ``secret`` query value, one of ``secrets``.

    Several ``secret`` values are refused outright: accepting any of them would let a caller try
    many guesses in one request.
    """
    secrets = [s for s in secrets if s]
    if not secrets:
        raise WebhookVerificationError(
            "mailchimp: no webhook_secret is configured, so webhooks cannot be authenticated", status=401
        )
    provided = parse_qs(urlsplit(url).query, keep_blank_values=True).get("secret", [])
    if len(provided) > 1:
        raise WebhookVerificationError(
            "mailchimp: the webhook URL carries several secret parameters", status=401
        )
    if not provided or not provided[0] or not matches_any(secrets, provided):
        raise WebhookVerificationError("mailchimp: the webhook URL's secret is missing or wrong", status=401)


def _content_type(headers: Mapping[str, str]) -> str | None:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return None


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"mailchimp webhook: body is not UTF-8 ({exc})") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise ValueError(f"mailchimp webhook: body is not a form ({exc})") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form and form[key] != value:
            raise ValueError(f"mailchimp webhook: field {key!r} appears twice with different values")
        form[key] = value
    return form


def _required(form: Mapping[str, str], key: str) -> str:
    value = form.get(key, "").strip()
    if not value:
        raise ValueError(f"mailchimp webhook: {key!r} is missing")
    return value


def parse_event(headers: Mapping[str, str], body: bytes, *, list_id: str) -> list[WebhookHint]:
    """The hints carried by one webhook POST; ValueError (with the reason) if it is malformed."""
    content_type = _content_type(headers)
    if content_type is not None and content_type != FORM_CONTENT_TYPE:
        raise ValueError(f"mailchimp webhook: expected {FORM_CONTENT_TYPE}, got {content_type}")
    form = _form(body)
    kind = _required(form, "type")
    fired_at = _required(form, "fired_at")
    try:
        occurred_at = datetime.strptime(fired_at, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"mailchimp webhook: fired_at {fired_at!r} is not 'YYYY-MM-DD HH:MM:SS'") from None
    if kind == "campaign":
        return []
    if kind not in MEMBER_EVENTS:
        raise ValueError(f"mailchimp webhook: unknown event type {kind!r}")
    audience = _required(form, "data[list_id]")
    if audience != list_id:
        raise ValueError(
            f"mailchimp webhook: event for audience {audience!r}, this connector syncs {list_id!r}"
        )
    deleted = False
    replaces: tuple[str, ...] = ()
    # After an upemail the member's id follows its new address; the old id is gone without a tombstone.
    email = _required(form, "data[new_email]" if kind == "upemail" else "data[email]")
    if kind == "upemail":
        old_email = _required(form, "data[old_email]")
        if "@" not in old_email:
            raise ValueError(f"mailchimp webhook: {old_email!r} is not an email address")
        old_id = subscriber_hash(old_email)
        replaces = (old_id,) if old_id != subscriber_hash(email) else ()
    if kind == "unsubscribe":
        action = _required(form, "data[action]")
        if action not in ("unsub", "delete"):
            raise ValueError(f"mailchimp webhook: unknown unsubscribe action {action!r}")
        deleted = action == "delete"
    if "@" not in email:
        raise ValueError(f"mailchimp webhook: {email!r} is not an email address")
    return [
        WebhookHint(
            event_id=hashlib.sha256(body).hexdigest(),
            object=OBJECT,
            record_id=subscriber_hash(email),
            deleted=deleted,
            occurred_at=occurred_at,
            replaces=replaces,
        )
    ]
