"""``syncd run`` as a subprocess against hostile clients: what it logs, and what it will not wait for.

The clients here speak raw bytes over loopback sockets (half-sent requests, malformed headers,
bodies that never come, connections dropped mid-body) — what an HTTP library refuses to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.testing.fakes.hubspot import sign_v3
from syncd.testing.fakes.mailchimp import MailchimpFake

from ..integration.apps import PROPERTIES, hubspot_fake
from .harness import (
    ADMIN_TOKEN,
    PEOPLE_MAPPING,
    DaemonProcess,
    SqlTable,
    base_env,
    sql_app,
    wait_for,
    write_config,
)

ROOT = Path(__file__).resolve().parents[2]
HS_TOKEN = "pat-na1-hardening-4471-token"
HS_SECRET = "hubspot-client-secret-hardening-2209"
MC_KEY = "0123456789abcdef0123456789abcdef-us1"
MC_SECRET = "mailchimp-url-secret-hardening-8812"
LIST_ID = "a1b2c3d4e5"
#: Values a client sends that must never reach the log, though none of them is right.
GUESSES = ("guessed-url-secret-5550", "wrong-admin-token-guess-7781")
#: A bounded wait for something the daemon should do at once (not a timed assertion).
PATIENCE = 15.0


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    """HubSpot and Mailchimp fakes synced by a daemon with 1-second header and body timeouts."""
    async with AsyncExitStack() as stack:
        # The example mapping's HubSpot side, as the pre-flight checks it: its custom checkbox
        # exists and every mapped property is read.
        hubspot = hubspot_fake(HS_TOKEN, HS_SECRET)
        mailchimp = MailchimpFake(api_key=MC_KEY, list_ids=(LIST_ID,))
        for fake in (hubspot, mailchimp):
            await fake.start()
            stack.push_async_callback(fake.stop)
        crm = {
            "connector": "hubspot",
            "poll_interval": 3600.0,
            "settings": {"base_url": hubspot.url, "properties": PROPERTIES},
        }
        email = {
            "connector": "mailchimp",
            "poll_interval": 3600.0,
            "settings": {"base_url": mailchimp.url, "list_id": LIST_ID},
        }
        config = write_config(
            tmp_path,
            apps={"crm": crm, "email": email},
            mapping=(ROOT / "mappings" / "contacts.toml").read_text(),
            daemon={"header_timeout": 1.0, "body_timeout": 1.0, "webhook_max_bytes": 1_000_000},
        )
        env = base_env(
            SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN,
            SYNCD_APPS__CRM__SETTINGS__TOKEN=HS_TOKEN,
            SYNCD_APPS__CRM__SETTINGS__CLIENT_SECRET=HS_SECRET,
            SYNCD_APPS__EMAIL__SETTINGS__API_KEY=MC_KEY,
            SYNCD_APPS__EMAIL__SETTINGS__WEBHOOK_SECRET=MC_SECRET,
        )
        process = DaemonProcess(config, env)
        stack.callback(process.kill)
        await process.start()
        yield process


def _address(daemon: DaemonProcess) -> tuple[str, int]:
    return "127.0.0.1", int(daemon.info["port"])


async def _exchange(daemon: DaemonProcess, data: bytes, *, close: bool = False) -> bytes:
    """Send ``data`` on a fresh connection (half-closing it if ``close``), return all it answers."""
    reader, writer = await asyncio.open_connection(*_address(daemon))
    try:
        writer.write(data)
        await writer.drain()
        if close:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), PATIENCE)
    finally:
        writer.close()


async def _abort_mid_body(daemon: DaemonProcess, head: bytes, part: bytes) -> None:
    """Send a request's head and part of its body, wait until the server reads it, then vanish."""
    reader, writer = await asyncio.open_connection(*_address(daemon))
    writer.write(head + part)
    await writer.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.3)  # nothing comes: the server waits for the rest
    writer.transport.abort()


def _hubspot_headers(path: str, port: int, length: int) -> bytes:
    ms = int(time.time() * 1000)
    signature = sign_v3("not-the-secret", "POST", f"http://127.0.0.1:{port}{path}", b"", ms)
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-HubSpot-Signature-v3: {signature}\r\nX-HubSpot-Request-Timestamp: {ms}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def test_every_log_line_is_json_and_no_secret_or_guess_reaches_the_log(daemon: DaemonProcess) -> None:
    port = _address(daemon)[1]
    good_hook = f"/webhooks/email?secret={MC_SECRET}"
    async with httpx.AsyncClient(base_url=daemon.url, timeout=PATIENCE) as http:
        assert (await http.get(good_hook)).status_code == 200
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert (await http.post(good_hook, content=b"type=%%%", headers=form)).status_code == 400
        guessed = await http.post(f"/webhooks/email?secret={GUESSES[0]}", content=b"type=x", headers=form)
        assert guessed.status_code == 401
        for token in (ADMIN_TOKEN, GUESSES[1]):
            await http.get("/api/status", headers={"Authorization": f"Bearer {token}"})
    auth = f"Authorization: Bearer {ADMIN_TOKEN}\r\n"
    malformed = [
        # A header line without a colon, then one with a control character.
        f"GET {good_hook} HTTP/1.1\r\nHost: x\r\n{auth}this is not a header\r\n\r\n",
        f"GET /api/status?token={GUESSES[1]} HTTP/1.1\r\nHost: x\r\n{auth}X-A: \x01\x02\r\n\r\n",
        # A second request on the connection with a broken method (the first is a good one).
        f"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nG(T {good_hook} HTTP/1.1\r\n{auth}\r\n",
        f"POST {good_hook} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: lots\r\n\r\n",
        f"POST {good_hook} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n",
        f"GET {good_hook} HTTP/9.9\r\nHost: x\r\n{auth}\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
    ]
    for request in malformed:
        await _exchange(daemon, request.encode("latin-1"), close=True)
    # Senders that go away in the middle of their body.
    await _abort_mid_body(
        daemon,
        f"POST {good_hook} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 5000\r\n\r\n".encode(),
        b"type=subscribe&data",
    )
    await _abort_mid_body(daemon, _hubspot_headers("/webhooks/crm", port, 5000), b'[{"eventId": 1')
    async with httpx.AsyncClient(base_url=daemon.url, timeout=PATIENCE) as http:
        assert (await http.get("/healthz")).status_code == 200
    assert await daemon.stop() == 0

    text = daemon.log_text()
    lines = [line for line in text.splitlines() if line.strip()]
    not_json = []
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            not_json.append(line)
    assert not not_json, "\n".join(not_json[:20])
    assert all(isinstance(e, dict) and "event" in e and "level" in e for e in events)
    for secret in (MC_SECRET, ADMIN_TOKEN, HS_SECRET, HS_TOKEN, MC_KEY, *GUESSES):
        assert secret not in text, secret
    assert not [e for e in events if e["level"] in ("error", "critical", "exception")], text
    assert any(e.get("logger", "").startswith("aiohttp") for e in events), "aiohttp's lines are missing"
    assert any("disconnected before its body was complete" in e["event"] for e in events)


async def test_an_idle_half_request_is_closed_after_the_header_timeout(daemon: DaemonProcess) -> None:
    reader, writer = await asyncio.open_connection(*_address(daemon))
    try:
        writer.write(b"POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Typ")
        await writer.drain()
        # The server closes the connection (header_timeout = 1 s); without a timeout it never would.
        assert await asyncio.wait_for(reader.read(), PATIENCE) == b""
    finally:
        writer.close()


async def test_a_wrong_url_secret_gets_401_without_the_body_being_read(daemon: DaemonProcess) -> None:
    reader, writer = await asyncio.open_connection(*_address(daemon))
    try:
        # A 900 kB upload announced, 100 bytes sent: the answer cannot wait for the rest.
        writer.write(
            b"POST /webhooks/email?secret=" + GUESSES[0].encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 900000\r\n\r\n" + b"x" * 100
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), PATIENCE)
        assert status.startswith(b"HTTP/1.1 401"), status
    finally:
        writer.close()


async def test_a_body_that_does_not_arrive_within_the_body_timeout_gets_408(daemon: DaemonProcess) -> None:
    port = _address(daemon)[1]
    reader, writer = await asyncio.open_connection(*_address(daemon))
    try:
        writer.write(_hubspot_headers("/webhooks/crm", port, 5000) + b'[{"eventId": 1')
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), PATIENCE)
        assert status.startswith(b"HTTP/1.1 408"), status
    finally:
        writer.close()


def _few_file_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))


async def test_healthz_answers_while_more_slow_connections_are_held_than_there_are_descriptors(
    tmp_path: Path,
) -> None:
    alpha = SqlTable.create(tmp_path / "alpha.db", 2, prefix="a")
    beta = SqlTable.create(tmp_path / "beta.db", 1, prefix="b")
    config = write_config(
        tmp_path,
        apps={"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)},
        mapping=PEOPLE_MAPPING,
        # Header timeout long: only the connection cap can keep room for /healthz here.
        daemon={"header_timeout": 120.0, "max_connections": 64},
    )
    daemon = DaemonProcess(
        config, base_env(SYNCD_DAEMON__ADMIN_TOKEN=ADMIN_TOKEN), preexec=_few_file_descriptors
    )
    held: list[asyncio.StreamWriter] = []
    try:
        await daemon.start()
        for _ in range(220):  # more than the daemon's 160 descriptors
            # Past its cap the daemon closes what it accepts, so a held connection may be
            # reset under the client (at connect, write or drain): that is the cap at work.
            try:
                _, writer = await asyncio.open_connection(*_address(daemon))
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                await writer.drain()
            except (ConnectionResetError, BrokenPipeError):
                continue
            held.append(writer)
        async with httpx.AsyncClient(base_url=daemon.url, timeout=PATIENCE) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            async with daemon.client() as admin:
                assert (await admin.get("/readyz")).status_code == 200
        assert daemon.proc is not None
        assert daemon.proc.poll() is None
        await wait_for(lambda: any("connection limit reached" in e["event"] for e in daemon.events()), 10)
    finally:
        for writer in held:
            writer.close()
        daemon.kill()
