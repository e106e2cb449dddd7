"""Typed errors raised by connectors.

The tree::

    ConnectorError                 any failure reported by a connector
    ├── ConfigError                the connector's settings are wrong (not retryable)
    ├── AuthError                  credentials rejected or scope missing (pause the app, no retry storm)
    ├── TransientError             network failure, timeout, 5xx: retry with backoff
    │   ├── RateLimited            429 or the app's equivalent; ``retry_after`` seconds if the app said so
    │   └── OutcomeUnknown         a write whose answer was lost: it may have taken effect
    ├── PermanentError             the app rejected this record (validation 4xx): dead-letter it
    │   ├── NotFound               the record does not exist (any more)
    │   └── PreconditionFailed     conditional write refused: the record changed since we read it
    └── WebhookVerificationError   signature, timestamp or secret check failed (HTTP 401)
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error a connector raises.

    ``app`` is the app name when known; ``status`` the HTTP status (or None); ``detail`` the app's
    own error body, already free of secrets.
    """

    def __init__(self, message: str, *, status: int | None = None, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail


class ConfigError(ConnectorError):
    """The connector's configuration is invalid."""


class AuthError(ConnectorError):
    """Credentials were rejected (401) or lack a scope (403)."""


class TransientError(ConnectorError):
    """A failure worth retrying: connection error, timeout, 5xx, 408, 409 in flight."""


class OutcomeUnknown(TransientError):
    """A write that may or may not have taken effect: the answer was lost (a timeout after the
    request was sent, a dropped connection, a 500/502/504, a cut-off body). The client does not
    send such a write again by itself: a person may have edited the record since it took effect,
    and a blind resend would overwrite that. The engine retries it the safe way (a create looks
    its key up first, an update re-reads the record first)."""


class RateLimited(TransientError):
    """The app asked us to slow down. ``retry_after`` is in seconds, when the app said."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        detail: object = None,
    ) -> None:
        super().__init__(message, status=status, detail=detail)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """The app rejected the request for this record; retrying the same request cannot succeed."""


class NotFound(PermanentError):
    """The record does not exist in the app."""


class PreconditionFailed(PermanentError):
    """A conditional write was refused because the record changed after we read it."""


class WebhookVerificationError(ConnectorError):
    """A webhook request failed signature, secret or timestamp verification."""
