"""Webhook signature helpers: HMAC digests, constant-time comparison and freshness checks.

Connectors verify a webhook over the raw request bytes, against every secret currently valid
(several during a rotation), and reject deliveries whose signed timestamp is too old to rule out
a replay. The helpers raise or return plainly; the connector decides which header holds what.

``WebhookSecret`` is the settings type of a webhook secret: an empty or blank one is a
configuration error (it would accept a request carrying an empty signature or ``?secret=``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, SecretStr

from ._errors import WebhookVerificationError


def _non_blank(secret: SecretStr) -> SecretStr:
    value = secret.get_secret_value()
    if not value.strip():
        raise ValueError("a webhook secret cannot be empty: set the app's secret, or leave the key out")
    if value != value.strip():
        raise ValueError("a webhook secret cannot start or end with whitespace")
    return secret


#: A webhook secret in a connector's settings model: ``SecretStr``, never empty or blank.
WebhookSecret = Annotated[SecretStr, AfterValidator(_non_blank)]


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def hmac_sha256_hex(secret: str | bytes, message: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def hmac_sha256_b64(secret: str | bytes, message: bytes) -> str:
    """Standard base64 HMAC-SHA256 of ``message`` under ``secret``."""
    return base64.b64encode(hmac.new(_key(secret), message, hashlib.sha256).digest()).decode("ascii")


def matches_any(expected: Iterable[str], provided: Iterable[str]) -> bool:
    """True if any provided signature equals any expected one.

    Every pair is compared with ``hmac.compare_digest`` and the loop never stops early, so the
    time taken does not reveal which secret matched or how much of a signature was right.
    """
    wanted = [e.encode("utf-8") for e in expected]
    matched = False
    for candidate in provided:
        given = candidate.encode("utf-8")
        for signature in wanted:
            matched |= hmac.compare_digest(signature, given)
    return matched


def check_timestamp(ts_seconds: float, *, tolerance: float = 300.0, now: float | None = None) -> None:
    """Raise WebhookVerificationError unless ``ts_seconds`` (Unix time) is within ``tolerance`` of now.

    Both directions count: a timestamp far in the future is as suspicious as an old one.
    """
    if not math.isfinite(ts_seconds):
        raise WebhookVerificationError("webhook timestamp is not a number", status=401)
    current = time.time() if now is None else now
    skew = abs(current - ts_seconds)
    if skew > tolerance:
        raise WebhookVerificationError(
            f"webhook timestamp is {skew:.0f}s away from now (tolerance {tolerance:.0f}s): stale or replayed",
            status=401,
        )


__all__ = ["WebhookSecret", "check_timestamp", "hmac_sha256_b64", "hmac_sha256_hex", "matches_any"]
