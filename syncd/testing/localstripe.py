"""localstripe (a stateful fake Stripe server from PyPI) in a child process on a loopback port.

Used by ``syncd demo --apps all`` and the four-app tests. ``python -m localstripe`` listens on
every interface and saves its state to ``/tmp/localstripe.pickle`` after each write (shared by
every run on the machine); neither is wanted here, so the child process started by
``LocalStripe.start`` runs ``main`` below: the same aiohttp app on ``127.0.0.1``, on a port the
OS picks (printed as the first line of stdout), with its state in memory only.

localstripe is optional (the ``dev`` extra): ``unavailable()`` says why it cannot be used, and
``start`` raises ``LocalStripeUnavailable`` with the reason when the server does not come up.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

import httpx

#: The secret key the demo and tests use (localstripe accepts any ``sk_test_`` key).
SECRET_KEY = "sk_test_syncd_localstripe_0123456789"


class LocalStripeUnavailable(RuntimeError):
    """localstripe is not installed or did not start; the message says which."""


def unavailable() -> str | None:
    """Why localstripe cannot be used here, or None when it is importable."""
    if importlib.util.find_spec("localstripe") is None:
        return "localstripe is not installed (pip install localstripe, or the dev extra)"
    return None


def _form(fields: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Stripe's form encoding: ``{"a": {"b": 1}, "c": [2]}`` → ``{"a[b]": "1", "c[0]": "2"}``."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_form(value, name))
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                out.update(_form({str(i): item}, name))
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = "" if value is None else str(value)
    return out


class LocalStripe:
    """One localstripe child process; ``call`` is the Stripe API as a script or person would use it."""

    def __init__(self, secret_key: str = SECRET_KEY) -> None:
        self.secret_key = secret_key
        self.url = ""
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, within: float = 20.0) -> None:
        """Start the server and wait until it answers; raises ``LocalStripeUnavailable``."""
        reason = unavailable()
        if reason is not None:
            raise LocalStripeUnavailable(reason)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syncd.testing.localstripe",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        self._process = process
        assert process.stdout is not None
        try:
            port = (await asyncio.wait_for(process.stdout.readline(), within)).decode().strip()
        except TimeoutError:
            port = ""
        if not port.isdigit():
            await self.stop()
            raise LocalStripeUnavailable(f"localstripe did not start (exit code {process.returncode})")
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(auth=(self.secret_key, ""), timeout=2.0) as client:
            while True:
                try:
                    if (await client.get(f"{self.url}/v1/customers")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if process.returncode is not None or time.monotonic() > deadline:
                    await self.stop()
                    raise LocalStripeUnavailable(
                        f"localstripe did not answer on {self.url} within {within:.0f} s"
                    )
                await asyncio.sleep(0.05)  # a starting process, polled against the deadline above

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def call(self, method: str, path: str, fields: Mapping[str, Any] | None = None) -> Any:
        """One API request (form-encoded like Stripe's); fails on any error answer."""
        async with httpx.AsyncClient(base_url=self.url, auth=(self.secret_key, ""), timeout=10.0) as client:
            response = await client.request(method, path, data=_form(fields) if fields else None)
        if response.status_code >= 300:
            raise RuntimeError(f"localstripe {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    async def customers(self) -> list[dict[str, Any]]:
        """Every live customer (localstripe lists them all in one page)."""
        body = await self.call("GET", "/v1/customers?limit=100")
        return list(body["data"])

    async def create_customer(self, *, card: bool = False, **fields: Any) -> dict[str, Any]:
        """A new customer with these fields; ``card`` gives it a test card to pay subscriptions with."""
        if card:
            fields = {
                **fields,
                "payment_method": "pm_card_visa",
                "invoice_settings": {"default_payment_method": "pm_card_visa"},
            }
        customer: dict[str, Any] = await self.call("POST", "/v1/customers", fields)
        return customer

    async def subscribe(
        self, customer_id: str, *, amount: int, interval: str, nickname: str, quantity: int = 1
    ) -> dict[str, Any]:
        """Subscribe a customer (created with ``card=True``) to a new plan, billed at once."""
        plan = await self.call(
            "POST",
            "/v1/plans",
            {
                "amount": amount,
                "currency": "usd",
                "interval": interval,
                "nickname": nickname,
                "product": {"name": nickname},
            },
        )
        subscription: dict[str, Any] = await self.call(
            "POST",
            "/v1/subscriptions",
            {"customer": customer_id, "items": [{"plan": plan["id"], "quantity": quantity}]},
        )
        return subscription

    async def send_webhooks(self, url: str, secret: str, events: list[str]) -> None:
        """Have localstripe deliver signed events of these types to ``url``."""
        await self.call("POST", "/_config/webhooks/syncd", {"url": url, "secret": secret, "events": events})


def main() -> None:
    """The server of the child process (see the module docstring)."""
    from aiohttp import web
    from localstripe import resources, server

    def keep_in_memory(self: object) -> None:
        """No save to disk: each server starts empty and leaves nothing behind."""

    resources.Store.dump_to_disk = keep_in_memory
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
