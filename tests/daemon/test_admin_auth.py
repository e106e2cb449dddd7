"""The admin API's bearer check: an empty token, configured or presented, never opens it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from syncd.daemon.admin import auth_middleware, bearer_matches

SECRET = b"0123456789abcdef-admin"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "bearer",
        "Basic " + SECRET.decode(),
        "Bearer wrong",
        SECRET.decode(),
    ],
)
def test_missing_empty_or_wrong_bearer_tokens_do_not_match(header: str) -> None:
    assert not bearer_matches(header, SECRET)


def test_the_configured_token_matches_whatever_the_scheme_case() -> None:
    assert bearer_matches("Bearer " + SECRET.decode(), SECRET)
    assert bearer_matches("bearer " + SECRET.decode(), SECRET)


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer  ", ""])
def test_an_empty_configured_secret_matches_nothing(header: str) -> None:
    assert not bearer_matches(header, b"")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[SecretStr | None], object]]:
    runners: list[web.AppRunner] = []

    async def start(token: SecretStr | None) -> str:
        async def data(request: web.Request) -> web.Response:
            return web.json_response({"customer": "ada@example.com"})

        app = web.Application(middlewares=[auth_middleware(token)])
        app.add_routes([web.get("/api/status", data)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("configured", ["", "   "])
async def test_a_blank_configured_token_refuses_an_empty_bearer_header(
    serve: Callable[[SecretStr | None], object], configured: str
) -> None:
    """Settings refuse a blank token; the check itself refuses it too, should one slip through."""
    url = await serve(SecretStr(configured))  # type: ignore[misc]
    async with httpx.AsyncClient(base_url=url) as http:
        # (A trailing space is not sent: HTTP clients and aiohttp strip it from header values.)
        for header in ("Bearer", "bearer"):
            response = await http.get("/api/status", headers={"Authorization": header})
            assert response.status_code == 401, header
            assert "ada@example.com" not in response.text
