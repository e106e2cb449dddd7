"""Property: no request to ``/webhooks/{app}`` gets a 5xx, and no unauthenticated one is stored.

A daemon runs in this process (on its own event loop thread) with HubSpot and Mailchimp fakes
(the first-party connectors that take webhooks; SQL tables take none); hypothesis sends it requests over loopback: any body (bytes, JSON
event batches, forms, sizes past the limit), any headers (signature, timestamp, content type and
encoding), any query string, with or without a valid signature or URL secret. After each one the
inbox must have grown only if the request was authentic.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.daemon import Daemon
from syncd.store import StateStore
from syncd.testing.fakes.hubspot import HubSpotFake, sign_v3
from syncd.testing.fakes.mailchimp import MailchimpFake

from .conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
HS_TOKEN = "pat-na1-fuzz-token-3318"
HS_SECRET = "hubspot-client-secret-fuzz-7261"
MC_KEY = "0123456789abcdef0123456789abcdef-us1"
MC_SECRET = "mailchimp-url-secret-fuzz-5530"
LIST_ID = "a1b2c3d4e5"
MAX_BYTES = 4096

T = TypeVar("T")


@dataclass
class Running:
    """The daemon on its loop thread, and a way to run coroutines there."""

    loop: asyncio.AbstractEventLoop
    daemon: Daemon

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)  # type: ignore[arg-type]

    def inbox_rows(self) -> int:
        def count(store: StateStore) -> int:
            return int(store.conn.execute("SELECT count(*) FROM inbox").fetchone()[0])

        return self.run(self.daemon.store.call(count))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-daemon", daemon=True)
    thread.start()
    hubspot = HubSpotFake(token=HS_TOKEN, client_secret=HS_SECRET)
    mailchimp = MailchimpFake(api_key=MC_KEY, list_ids=(LIST_ID,))
    config = make_settings(
        tmp_path,
        {
            "crm": {
                "connector": "hubspot",
                "poll_interval": 3600.0,
                "settings": {
                    "base_url": "http://unused",
                    "token": HS_TOKEN,
                    "client_secret": HS_SECRET,
                    "properties": ["email", "firstname", "lastname"],
                },
            },
            "email": {
                "connector": "mailchimp",
                "poll_interval": 3600.0,
                "settings": {
                    "base_url": "http://unused",
                    "api_key": MC_KEY,
                    "list_id": LIST_ID,
                    "webhook_secret": MC_SECRET,
                },
            },
        },
        {"contacts": (ROOT / "mappings" / "contacts.toml").read_text()},
        webhook_max_bytes=MAX_BYTES,
        header_timeout=5.0,
        body_timeout=5.0,
    )

    async def start() -> Daemon:
        await hubspot.start()
        await mailchimp.start()
        config.apps["crm"].settings["base_url"] = hubspot.url
        config.apps["email"].settings["base_url"] = mailchimp.url
        daemon = Daemon(config)
        await daemon.start()
        return daemon

    daemon = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    try:
        yield Running(loop, daemon)
    finally:

        async def stop() -> None:
            await daemon.stop()
            await hubspot.stop()
            await mailchimp.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# -- strategies ------------------------------------------------------------------------------------

# HTTP clients refuse header values with surrounding spaces.
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(str.strip)
_PARAM = st.sampled_from(["secret", "Secret", "app", "x", "token", "secret[]", ""]) | st.text(max_size=10)
_QUERY = st.lists(st.tuples(_PARAM, st.text(max_size=40)), max_size=6)

_SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
_HUBSPOT_EVENT = st.fixed_dictionaries(
    {},
    optional={
        "eventId": _SCALAR,
        "subscriptionId": _SCALAR,
        "portalId": _SCALAR,
        "occurredAt": _SCALAR | st.just(int(time.time() * 1000)),
        "subscriptionType": st.sampled_from(
            ["contact.propertyChange", "contact.deletion", "contact.merge", "company.creation", "x"]
        )
        | _SCALAR,
        "objectId": _SCALAR | st.integers(1, 10**12),
        "mergedObjectIds": st.lists(_SCALAR, max_size=3) | _SCALAR,
        "primaryObjectId": _SCALAR,
        "propertyName": _SCALAR,
        "attemptNumber": _SCALAR,
    },
)
_HUBSPOT_BODY = st.lists(_HUBSPOT_EVENT | _SCALAR, max_size=5).map(lambda v: json.dumps(v).encode())
_MAILCHIMP_FORM = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "type",
                "fired_at",
                "data[list_id]",
                "data[email]",
                "data[new_email]",
                "data[action]",
                "data[id]",
            ]
        )
        | st.text(max_size=12),
        st.sampled_from(["subscribe", "unsubscribe", "profile", "upemail", "cleaned", "campaign", LIST_ID])
        | st.sampled_from(["2026-04-25 14:30:00", "ada@example.com", "unsub", "delete"])
        | st.text(max_size=30),
    ),
    max_size=8,
).map(lambda pairs: urlencode(pairs).encode())
_BODY = (
    st.binary(max_size=600)
    | _HUBSPOT_BODY
    | _MAILCHIMP_FORM
    | st.integers(MAX_BYTES - 2, MAX_BYTES + 2000).map(lambda n: b"[" + b" " * (n - 2) + b"]")
)


@dataclass(frozen=True)
class Attempt:
    app: str
    method: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    authentic: bool


@st.composite
def attempts(draw: st.DrawFn, apps: tuple[str, ...]) -> Attempt:
    app = draw(st.sampled_from(apps))
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
    query = draw(_QUERY)
    body = draw(_BODY)
    headers = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "Content-Type",
                    "X-HubSpot-Signature-v3",
                    "X-HubSpot-Request-Timestamp",
                    "X-HubSpot-Signature",
                    "Content-Encoding",
                    "X-Forwarded-For",
                ]
            ),
            _HEADER_TEXT | st.sampled_from(["application/json", "application/x-www-form-urlencoded", "gzip"]),
            max_size=4,
        )
    )
    authentic = method == "POST" and app in ("crm", "email") and draw(st.booleans())
    if app == "email":
        query = [(k, v) for k, v in query if k != "secret"]
        if authentic:
            query.insert(draw(st.integers(0, len(query))), ("secret", MC_SECRET))
    if app == "crm" and draw(st.booleans()):
        # A fresh timestamp, so that the signature check itself is reached.
        headers["X-HubSpot-Request-Timestamp"] = str(int(time.time() * 1000))
    return Attempt(app, method, query, headers, body, authentic)


def _send(running: Running, http: httpx.Client, attempt: Attempt) -> httpx.Response:
    url = f"{running.daemon.url}/webhooks/{attempt.app}"
    if attempt.query:
        url += "?" + urlencode(attempt.query)
    headers = dict(attempt.headers)
    if attempt.app == "crm" and attempt.authentic:
        ms = int(time.time() * 1000)
        headers["X-HubSpot-Request-Timestamp"] = str(ms)
        headers["X-HubSpot-Signature-v3"] = sign_v3(HS_SECRET, "POST", url, attempt.body, ms)
        headers.pop("Content-Encoding", None)
    if attempt.app == "email" and attempt.authentic:
        headers.pop("Content-Encoding", None)
    return http.request(attempt.method, url, content=attempt.body, headers=headers)


def _check(running: Running, http: httpx.Client, attempt: Attempt) -> None:
    before = running.inbox_rows()
    response = _send(running, http, attempt)
    assert response.status_code < 500, (response.status_code, response.text)
    after = running.inbox_rows()
    if not attempt.authentic:
        assert after == before, f"an unauthenticated request was stored: {attempt}"
        if attempt.method == "POST":
            assert response.status_code >= 400, response.text


def _fuzz(running: Running, apps: tuple[str, ...], examples: int) -> None:
    with httpx.Client(timeout=30) as http:

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(attempts(apps))
        def check(attempt: Attempt) -> None:
            _check(running, http, attempt)

        check()
        # The daemon is still well after all that.
        assert http.get(f"{running.daemon.url}/healthz").status_code == 200


@pytest.mark.parametrize("app", ["crm", "email"])
def test_webhook_endpoint_never_answers_5xx_nor_stores_an_unauthenticated_request(
    running: Running, app: str
) -> None:
    _fuzz(running, (app,), 200)


def test_unknown_apps_never_answer_5xx(running: Running) -> None:
    _fuzz(running, ("product", "nope"), 50)


@pytest.mark.slow
def test_webhook_endpoints_survive_a_long_fuzz_run(running: Running) -> None:
    _fuzz(running, ("crm", "email", "product", "nope"), 2000)
