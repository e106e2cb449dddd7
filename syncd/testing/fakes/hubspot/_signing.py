"""HubSpot's v3 webhook signature, as the fake signs its deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

#: Percent-escapes HubSpot decodes in the URI it signs (v3 signature).
SIGNATURE_URI_ESCAPES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def signature_uri(url: str) -> str:
    """The URI as HubSpot signs it: the full URL with the listed percent-escapes decoded."""

    def decode(match: re.Match[str]) -> str:
        return SIGNATURE_URI_ESCAPES.get(match.group(0).upper(), match.group(0))

    return re.sub(r"%[0-9A-Fa-f]{2}", decode, url)


def sign_v3(secret: str, method: str, url: str, body: bytes, timestamp_ms: int) -> str:
    """``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 over method + URI + body + timestamp."""
    message = method.upper().encode() + signature_uri(url).encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
