"""Run the ``curl`` lines the demo prints, exactly as printed, without needing a curl binary.

Only the options the demo emits are understood (``-sS``, ``-X``, ``-H``, ``-d``, ``-u``); any
other option fails the test, so the guide cannot start printing something this does not check.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import httpx


@dataclass
class CurlRequest:
    method: str = "GET"
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    data: str | None = None
    auth: tuple[str, str] | None = None


def parse_curl(line: str) -> CurlRequest:
    words = shlex.split(line)
    assert words[0] == "curl", line
    request = CurlRequest()
    rest = iter(words[1:])
    for word in rest:
        if word == "-sS":
            continue
        if word == "-X":
            request.method = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(": ")
            request.headers[name] = value
        elif word == "-d":
            request.data = next(rest)
        elif word == "-u":
            user, _, password = next(rest).partition(":")
            request.auth = (user, password)
        elif word.startswith("http://"):
            request.url = word
        else:
            raise AssertionError(f"curl option the tests do not know: {word!r} in {line!r}")
    assert request.url, line
    return request


async def run_curl(line: str) -> httpx.Response:
    """Send the request a printed ``curl`` line describes."""
    request = parse_curl(line)
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.data,
            auth=request.auth,
        )
