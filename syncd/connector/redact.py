"""Secret redaction for logs and error messages.

``redact_secrets`` is a structlog processor: it masks the values of keys that name credentials
(``authorization``, ``api_key``, ``token``, ``password``...) and every occurrence of a value
registered with ``register_secret`` anywhere in the event, however deeply nested. Text is also
masked where it *looks* like a credential, registered or not: the value of a ``secret=``,
``token=``, ``api_key=``, ``password=`` or ``signature=`` parameter, and what follows
``Bearer``/``Basic`` — a library quoting a request line or its headers (a guessed secret, a
wrong admin token) leaks nothing either. Add it to the
processor chain after ``format_exc_info`` and before the renderer; the HTTP client registers the credentials it is given, so a
token that slips into a log line or an app's error text is masked all the same.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

MASK = "***"

#: Secrets shorter than this are only masked when a whole value equals them: masking every
#: occurrence of a two-letter string would garble ordinary text.
_MIN_SUBSTRING_LEN = 6

_SENSITIVE_KEY = re.compile(
    r"(?:^|_)(?:authorization|proxy_authorization|token|api_?key|apikey|secret|password|passwd|"
    r"cookie|set_cookie|signature|credentials?|private_key)$"
)

#: ``name=value`` parameters (query strings, forms) whose value is a credential.
_INLINE_PARAM = re.compile(
    r"(?i)(?<![a-z0-9_])((?:client_|webhook_|access_|refresh_)?(?:secret|token|api_?key|apikey|password|"
    r"passwd|signature)=)[^&;\s'\"<>]+"
)
#: HTTP authorization values: ``Bearer <token>``, ``Basic <base64>`` (long enough to be one).
_AUTH_VALUE = re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/-]{12,}=*")

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log event or an error message from now on."""
    global _secrets
    if not value:
        return
    with _lock:
        _secrets = _secrets | {value}


def forget_secret(value: str) -> None:
    """Stop masking ``value`` (e.g. after a credential was rotated out)."""
    global _secrets
    with _lock:
        _secrets = _secrets - {value}


def is_sensitive_key(key: str) -> bool:
    """True if a mapping key names a credential (``Authorization``, ``x-api-key``, ``client_secret``...)."""
    normalised = key.strip().lower().replace("-", "_").replace(" ", "_")
    return bool(_SENSITIVE_KEY.search(normalised))


def redact_text(text: str) -> str:
    """``text`` with every registered secret, and every credential-looking value, replaced by ``***``."""
    secrets = _secrets
    if text in secrets:
        return MASK
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SUBSTRING_LEN and secret in text:
            text = text.replace(secret, MASK)
    if "=" in text:
        text = _INLINE_PARAM.sub(lambda m: m.group(1) + MASK, text)
    return _AUTH_VALUE.sub(lambda m: m.group(1) + MASK, text)


def redact_value(value: Any) -> Any:
    """A copy of ``value`` (nested dicts, lists, tuples, strings) with secrets masked."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {k: _redact_item(k, v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, list | set | frozenset):
        return [redact_value(v) for v in value]
    return value


def _redact_item(key: object, value: Any) -> Any:
    if isinstance(key, str) and is_sensitive_key(key) and value not in (None, ""):
        return MASK
    if isinstance(value, BaseException) and key != "exc_info":
        # Rendered as text anyway; an exception's message may quote a credential.
        return redact_text(f"{type(value).__name__}: {value}")
    return redact_value(value)


def redact_secrets(
    logger: object, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask credential-named keys and registered secret values."""
    for key in list(event_dict):
        event_dict[key] = _redact_item(key, event_dict[key])
    return event_dict


__all__ = [
    "MASK",
    "forget_secret",
    "is_sensitive_key",
    "redact_secrets",
    "redact_text",
    "redact_value",
    "register_secret",
]
