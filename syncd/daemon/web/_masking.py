"""Masking of personal data for the review web page's read-only role.

Every value a mapping carries (emails, names, phones, addresses, anything an app holds about a
person) is personal data as far as this page knows, so a read-only session sees each one masked:
enough shape to tell values apart ("a•••@e•••.com", "•••67"), not enough to read them. Booleans
and empty values stay as they are: they say nothing about who someone is. Free text that may quote
a value (an app's error message) has its email addresses and long digit runs masked.
"""

from __future__ import annotations

import re
from typing import Any

DOT = "•••"
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\+?\d[\d ().-]{5,}\d")


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    host, dot, tld = domain.rpartition(".")
    if not dot:
        host, tld = domain, ""
    return f"{local[:1]}{DOT}@{host[:1]}{DOT}{'.' + tld if tld else ''}"


def mask_text(text: str) -> str:
    """A short value masked: emails by shape, digit strings to their last two digits, other text
    to its first letter."""
    text = text.strip()
    if not text:
        return text
    if _EMAIL.fullmatch(text):
        return mask_email(text)
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 6 and len(digits) >= len(text) // 2:
        return f"{DOT}{digits[-2:]}"
    return f"{text[:1]}{DOT}"


def mask_value(value: Any) -> Any:
    """``value`` with every personal part masked (see the module docstring)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, int | float):
        return DOT
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(v) for v in value]
    return DOT


def mask_prose(text: str | None) -> str | None:
    """Free text with the emails and phone-like digit runs in it masked."""
    if text is None:
        return None
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _DIGITS.sub(lambda m: f"{DOT}{re.sub(r'[^0-9]', '', m.group(0))[-2:]}", text)
