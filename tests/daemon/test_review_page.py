"""The review web page over HTTP, on an in-process daemon: login and its cookie, sessions, CSRF,
the read-only role, masking, conflicts (one, bulk, edited value, kept parked, "always prefer"),
dead letters, customers and the activity stream."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from syncd.daemon import Daemon
from syncd.daemon.web import COOKIE

from .conftest import make_settings, started
from .harness import ADMIN_TOKEN, PEOPLE_MAPPING, SqlTable, sql_app, wait_for

READONLY_TOKEN = "readonly-token-4d1e8a6c2b"
#: Names parked for review when first matched, so each test starts with known conflicts.
REVIEW_MAPPING = "# People in alpha and beta, matched by email.\n" + PEOPLE_MAPPING.replace(
    'key = "email"', 'key = "email"\ninitial_conflict = "review"'
)

#: Every POST route of the page, with a body that would be valid for it.
POSTS = [
    "/conflicts/preview",
    "/conflicts/resolve",
    "/conflicts/prefer",
    "/deadletters/preview",
    "/deadletters/apply",
    "/deletes/preview",
    "/deletes/apply",
]
GETS = [
    "/",
    "/conflicts",
    "/deadletters",
    "/deletes",
    "/customers",
    "/activity",
    "/activity.json",
    "/conflicts/prefer",
]


class Page:
    """A browser on the page, over httpx: keeps the session cookie by hand (httpx's cookie jar,
    like a browser off loopback, will not send a ``Secure`` cookie over plain http)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.session: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.session}"} if self.session else {}

    async def login(self, token: str, name: str = "") -> httpx.Response:
        form = await self.http.get("/login")
        nonce = form.cookies.get("syncd_login") or _cookie(form, "syncd_login")[0]
        assert f'value="{nonce}"' in form.text
        response = await self.http.post(
            "/login",
            data={"csrf": nonce, "token": token, "name": name, "next": ""},
            headers={"Cookie": f"syncd_login={nonce}"},
        )
        if response.status_code == 303:
            self.session = _cookie(response, COOKIE)[0]
        return response

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self._headers())

    async def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', (await self.get("/")).text)
        assert found is not None
        return found.group(1)

    async def post(self, path: str, data: dict[str, Any], *, csrf: str | None = "auto") -> httpx.Response:
        body = dict(data)
        if csrf == "auto":
            body["csrf"] = await self.csrf()
        elif csrf is not None:
            body["csrf"] = csrf
        return await self.http.post(path, data=body, headers=self._headers())


def _cookie(response: httpx.Response, name: str) -> tuple[str, str]:
    """The value and the full ``Set-Cookie`` header setting ``name``."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header.split(";", 1)[0].split("=", 1)[1], header
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


@asynccontextmanager
async def page(daemon: Daemon, token: str | None = ADMIN_TOKEN, name: str = "") -> AsyncIterator[Page]:
    async with httpx.AsyncClient(base_url=daemon.url, timeout=10.0) as http:
        browser = Page(http)
        if token is not None:
            assert (await browser.login(token, name)).status_code == 303
        yield browser


@pytest.fixture
def people(tmp_path: Path) -> tuple[SqlTable, SqlTable]:
    """Three people both apps hold under different names: three name conflicts left for review."""
    alpha = SqlTable.create(tmp_path / "alpha.db")
    beta = SqlTable.create(tmp_path / "beta.db")
    for person, (a, b) in {
        "ada": ("Ada Lovelace", "Augusta King"),
        "bob": ("Bob Stone", "Robert Stone"),
        "cy": ("Cy Young", "Cyrus Young"),
    }.items():
        alpha.insert(f"{person}@example.com", a)
        beta.insert(f"{person}@example.com", b)
    return alpha, beta


@pytest.fixture
async def review(tmp_path: Path, people: tuple[SqlTable, SqlTable]) -> AsyncIterator[Daemon]:
    alpha, beta = people
    settings = make_settings(
        tmp_path,
        {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)},
        {"people": REVIEW_MAPPING},
        readonly_token=READONLY_TOKEN,
    )
    daemon = await started(settings)
    await wait_for(lambda: _is(_open(daemon), 3), 10, what="three open conflicts")
    yield daemon
    await daemon.stop()


async def _open(daemon: Daemon) -> int:
    return int(await daemon.store.call(lambda s: s.count_conflicts("open")))


async def _is(count: Any, expected: int) -> bool:
    return bool(await count == expected)


async def _conflicts(daemon: Daemon) -> list[dict[str, Any]]:
    rows = await daemon.store.call(lambda s: s.conflicts(status="open"))
    return [dict(r) for r in rows]


async def _by_key(daemon: Daemon) -> dict[str, int]:
    rows = await daemon.store.call(lambda s: s.conflicts(status="open"))
    return {str(r.get("entity_key")): r["id"] for r in rows}


# -- login, cookie, sessions ------------------------------------------------------------------------


async def test_login_with_the_admin_token_sets_a_secure_httponly_strict_expiring_session_cookie(
    review: Daemon,
) -> None:
    async with page(review, token=None) as browser:
        response = await browser.login(ADMIN_TOKEN, "Grace")
        assert response.status_code == 303
        assert response.headers["Location"] == "/"
        value, header = _cookie(response, COOKIE)
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")[1:]}
        assert {"secure", "httponly", "samesite", "max-age", "path"} <= set(flags)
        assert flags["samesite"].lower() == "samesite=strict"
        assert flags["max-age"] == f"Max-Age={int(review.settings.daemon.web_session_ttl)}"
        assert flags["path"] == "Path=/"
        # The cookie is a random id, not the token nor anything derived from it by a fixed rule.
        assert len(value) >= 32
        assert ADMIN_TOKEN not in value
        home = await browser.get("/")
        assert home.status_code == 200
        assert "Grace (admin)" in home.text
        for app in ("alpha", "beta"):
            assert f"<strong>{app}</strong>" in home.text
        assert home.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]


async def test_a_wrong_token_or_a_login_without_its_csrf_cookie_opens_no_session(review: Daemon) -> None:
    async with page(review, token=None) as browser:
        wrong = await browser.login(ADMIN_TOKEN + "x")
        assert wrong.status_code == 401
        assert COOKIE not in wrong.headers.get("set-cookie", "")
        assert "opens nothing" in wrong.text
        empty = await browser.login("")
        assert empty.status_code == 401
        form = await browser.http.get("/login")
        nonce = _cookie(form, "syncd_login")[0]
        no_cookie = await browser.http.post("/login", data={"csrf": nonce, "token": ADMIN_TOKEN})
        assert no_cookie.status_code == 403
        other = await browser.http.post(
            "/login",
            data={"csrf": "forged", "token": ADMIN_TOKEN},
            headers={"Cookie": f"syncd_login={nonce}"},
        )
        assert other.status_code == 403
        assert COOKIE not in other.headers.get("set-cookie", "")


async def test_pages_need_a_session_and_the_session_does_not_open_the_admin_api(review: Daemon) -> None:
    async with page(review, token=None) as anonymous, page(review) as admin:
        for path in GETS:
            response = await anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["Location"].startswith("/login"), path
        for path in [*POSTS, "/logout"]:
            assert (await anonymous.post(path, {}, csrf="x")).status_code == 401, path
        forged = Page(anonymous.http)
        forged.session = "not-a-session-id"
        assert (await forged.get("/conflicts")).status_code == 303
        # A logged-in browser still cannot use the bearer-token API, and a bearer cannot open pages.
        assert (await admin.get("/api/status")).status_code == 401
        assert (await admin.post("/api/forget", {"key": "ada@example.com"})).status_code == 401
        bearer = await anonymous.http.get("/conflicts", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert bearer.status_code == 303
        assert (await anonymous.http.get("/nope")).status_code == 401


async def test_logout_ends_the_session_on_the_server(review: Daemon) -> None:
    async with page(review) as browser:
        stolen = browser.session
        out = await browser.post("/logout", {})
        assert out.status_code == 303
        assert out.headers["Location"] == "/login"
        assert 'syncd_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
        # The old cookie value is useless now, even if someone kept it.
        browser.session = stolen
        assert (await browser.get("/conflicts")).status_code == 303


async def test_a_session_expires_after_its_ttl(review: Daemon) -> None:
    pages = review.review_page
    assert pages is not None
    now = [1000.0]
    pages.sessions.clock = lambda: now[0]
    async with page(review) as browser:
        assert (await browser.get("/conflicts")).status_code == 200
        now[0] += review.settings.daemon.web_session_ttl + 1
        assert (await browser.get("/conflicts")).status_code == 303


# -- CSRF and the read-only role ---------------------------------------------------------------------


async def test_every_post_without_or_with_a_wrong_csrf_token_is_refused_with_403(review: Daemon) -> None:
    (cid, *_) = (await _by_key(review)).values()
    body = {
        "ids": str(cid),
        "choice": "take:beta",
        "why": "test",
        "sync": "people",
        "field": "name",
        "app": "beta",
    }
    async with page(review) as browser, page(review) as other:
        foreign = await other.csrf()
        for path in [*POSTS, "/logout"]:
            assert (await browser.post(path, body, csrf=None)).status_code == 403, path
            assert (await browser.post(path, body, csrf="wrong")).status_code == 403, path
            # Another session's token is no good either.
            assert (await browser.post(path, body, csrf=foreign)).status_code == 403, path
        assert await _open(review) == 3
        assert (await browser.get("/conflicts")).status_code == 200


async def test_the_read_only_role_sees_every_page_and_every_post_is_refused_with_a_reason(
    review: Daemon,
) -> None:
    (cid, *_) = (await _by_key(review)).values()
    body = {
        "ids": str(cid),
        "choice": "take:beta",
        "why": "test",
        "sync": "people",
        "field": "name",
        "app": "beta",
    }
    async with page(review, READONLY_TOKEN) as reader:
        for path in GETS:
            params = {"sync": "people", "field": "name", "app": "beta"} if path == "/conflicts/prefer" else {}
            assert (await reader.get(path, **params)).status_code == 200, path
        for path in POSTS:
            refused = await reader.post(path, body)
            assert refused.status_code == 403, path
            assert "read-only session" in refused.text
        assert await _open(review) == 3
        assert (await reader.post("/logout", {})).status_code == 303


async def test_the_read_only_role_sees_personal_data_masked_and_the_admin_sees_it_plain(
    review: Daemon,
) -> None:
    async with page(review, READONLY_TOKEN) as reader, page(review) as admin:
        masked = (await reader.get("/conflicts")).text
        plain = (await admin.get("/conflicts")).text
        for secret in ("ada@example.com", "Augusta King", "Ada Lovelace"):
            assert secret in plain
            assert secret not in masked
        assert "a•••@e•••.com" in masked
        assert "A•••" in masked
        customer = (await reader.get("/customers", email="ada@example.com")).text.split("</form>", 2)[2]
        assert "a•••@e•••.com" in customer
        assert "Augusta" not in customer
        assert "Lovelace" not in customer
        assert "ada@example.com" not in customer
        activity = (await reader.get("/activity.json")).json()["entries"]
        assert activity
        assert not any("@example.com" in e["line"] for e in activity)
        assert any("@example.com" in e["line"] for e in (await admin.get("/activity.json")).json()["entries"])


async def test_a_setting_lets_the_read_only_role_see_personal_data(
    tmp_path: Path, people: tuple[SqlTable, SqlTable]
) -> None:
    alpha, beta = people
    settings = make_settings(
        tmp_path,
        {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)},
        {"people": REVIEW_MAPPING},
        readonly_token=READONLY_TOKEN,
        readonly_sees_personal_data=True,
    )
    daemon = await started(settings)
    try:
        await wait_for(lambda: _is(_open(daemon), 3), 10, what="the conflicts")
        async with page(daemon, READONLY_TOKEN) as reader:
            text = (await reader.get("/conflicts")).text
            assert "ada@example.com" in text
            assert "Augusta King" in text
            assert (
                await reader.post("/conflicts/preview", {"ids": "1", "choice": "park"})
            ).status_code == 403
    finally:
        await daemon.stop()


# -- conflicts --------------------------------------------------------------------------------------


async def test_taking_one_side_shows_the_writes_first_then_writes_them_and_logs_who_and_why(
    review: Daemon, people: tuple[SqlTable, SqlTable]
) -> None:
    alpha, beta = people
    cid = (await _by_key(review))["ada@example.com"]
    async with page(review, name="Grace") as browser:
        queue = (await browser.get("/conflicts")).text
        assert f'id="conflict-{cid}"' in queue
        assert "Rule: newest: would take" in queue
        preview = await browser.post("/conflicts/preview", {"ids": str(cid), "choice": "take:beta"})
        assert preview.status_code == 200
        assert re.search(r"alpha: <code>name</code> ← Augusta King", preview.text)
        assert "beta: <code>name</code>" not in preview.text  # beta holds it already
        # Nothing happened yet: previewing is not doing.
        assert alpha.name_of("ada@example.com") == "Ada Lovelace"
        assert await _open(review) == 3
        no_why = await browser.post(
            "/conflicts/resolve", {"ids": str(cid), "choice": "take:beta", "why": " "}
        )
        assert no_why.status_code == 400
        done = await browser.post(
            "/conflicts/resolve", {"ids": str(cid), "choice": "take:beta", "why": "married name"}
        )
        assert done.status_code == 200
        assert "1 settled with beta" in done.text
        await wait_for(lambda: alpha.name_of("ada@example.com") == "Augusta King", 10, what="the write")
        assert beta.name_of("ada@example.com") == "Augusta King"
        again = await browser.post(
            "/conflicts/resolve", {"ids": str(cid), "choice": "take:alpha", "why": "x"}
        )
        assert "already resolved" in again.text
    log = await review.store.call(lambda s: s.changelog(limit=50))
    reasons = [e["reason"] for e in log if e["code"] == "resolved"]
    assert reasons == [f"conflict {cid} resolved by Grace (admin): married name"]


async def test_an_edited_value_goes_through_the_fields_transforms_and_an_empty_one_is_refused(
    review: Daemon, people: tuple[SqlTable, SqlTable]
) -> None:
    alpha, beta = people
    cid = (await _by_key(review))["bob@example.com"]
    async with page(review) as browser:
        empty = await browser.post("/conflicts/preview", {"ids": str(cid), "choice": "edit", "value": "   "})
        assert "an empty value would clear" in empty.text
        assert 'action="/conflicts/resolve"' not in empty.text
        preview = await browser.post(
            "/conflicts/preview", {"ids": str(cid), "choice": "edit", "value": "  Bobby Stone  "}
        )
        assert "alpha: <code>name</code> ← Bobby Stone" in preview.text
        assert "beta: <code>name</code> ← Bobby Stone" in preview.text
        await browser.post(
            "/conflicts/resolve",
            {"ids": str(cid), "choice": "edit", "value": "  Bobby Stone  ", "why": "asked"},
        )
    await wait_for(
        lambda: alpha.name_of("bob@example.com") == beta.name_of("bob@example.com") == "Bobby Stone",
        10,
        what="the trimmed value in both apps",
    )


async def test_keep_parked_changes_nothing_and_notes_who_looked(review: Daemon) -> None:
    cid = (await _by_key(review))["cy@example.com"]
    async with page(review, name="Lin") as browser:
        preview = await browser.post("/conflicts/preview", {"ids": str(cid), "choice": "park"})
        assert "Nothing is written" in preview.text
        await browser.post(
            "/conflicts/resolve", {"ids": str(cid), "choice": "park", "why": "ask the customer"}
        )
    assert await _open(review) == 3
    log = await review.store.call(lambda s: s.changelog(limit=20))
    assert [e["reason"] for e in log if e["code"] == "admin"] == [
        f"conflict {cid} kept parked by Lin (admin): ask the customer"
    ]


async def test_bulk_resolution_over_a_filter_settles_every_match_and_only_them(
    review: Daemon, people: tuple[SqlTable, SqlTable]
) -> None:
    alpha, _ = people
    ids = await _by_key(review)
    async with page(review) as browser:
        filtered = await browser.get("/conflicts", field="name", app="beta")
        assert "all 3 matching the filter" in filtered.text
        # A filter that matches nothing settles nothing.
        none = await browser.post(
            "/conflicts/preview", {"scope": "filter", "field": "email", "choice": "take:beta"}
        )
        assert "0 of 0" in none.text
        preview = await browser.post(
            "/conflicts/preview", {"scope": "filter", "field": "name", "app": "beta", "choice": "take:beta"}
        )
        assert "3 of 3 conflicts" in preview.text
        chosen = re.findall(r'name="ids" value="(\d+)"', preview.text)
        assert sorted(map(int, chosen)) == sorted(ids.values())
        # One of them is settled meanwhile by someone else: it becomes a per-item failure.
        first = ids["ada@example.com"]
        await review.resolve_conflict(first, "alpha", None)
        done = await browser.post(
            "/conflicts/resolve", {"ids": chosen, "choice": "take:beta", "why": "beta is the CRM of record"}
        )
        assert "2 settled with beta" in done.text
        assert f"#{first}: conflict {first} is already resolved" in done.text
    assert await _open(review) == 0
    await wait_for(
        lambda: (
            alpha.names()
            == {
                "ada@example.com": "Ada Lovelace",
                "bob@example.com": "Robert Stone",
                "cy@example.com": "Cyrus Young",
            }
        ),
        10,
        what="beta's names in alpha",
    )


async def test_bulk_resolution_of_this_page_only_takes_the_ids_listed(review: Daemon) -> None:
    ids = await _by_key(review)
    async with page(review) as browser:
        preview = await browser.post(
            "/conflicts/preview",
            {
                "scope": "ids",
                "ids": [str(ids["bob@example.com"]), str(ids["cy@example.com"])],
                "choice": "take:alpha",
            },
        )
        assert "2 of 2" in preview.text
        await browser.post(
            "/conflicts/resolve",
            {
                "ids": [str(ids["bob@example.com"]), str(ids["cy@example.com"])],
                "choice": "take:alpha",
                "why": "x",
            },
        )
    assert list(await _by_key(review)) == ["ada@example.com"]


async def test_always_prefer_shows_the_mapping_diff_and_writes_it_only_on_confirmation(
    review: Daemon, people: tuple[SqlTable, SqlTable]
) -> None:
    alpha, _ = people
    (source,) = [Path(m.source) for m in review.runner.mappings]
    before = source.read_text()
    async with page(review, name="Grace") as browser:
        shown = await browser.get("/conflicts/prefer", sync="people", field="name", app="beta")
        assert shown.status_code == 200
        assert '<span class="add">+policy = &#34;owner&#34;</span>' in shown.text
        assert '<span class="add">+owner = &#34;beta&#34;</span>' in shown.text
        assert "also settle the 3 open conflicts" in shown.text
        assert source.read_text() == before  # showing the diff writes nothing
        digest = re.search(r'name="digest" value="([0-9a-f]+)"', shown.text)
        assert digest is not None
        body = {"sync": "people", "field": "name", "app": "beta", "why": "beta is the CRM of record"}
        stale = await browser.post("/conflicts/prefer", {**body, "digest": "0" * 64})
        assert stale.status_code == 409
        assert "changed since the diff was shown" in stale.text
        assert source.read_text() == before
        done = await browser.post(
            "/conflicts/prefer", {**body, "digest": digest.group(1), "also_resolve": "on"}
        )
        assert done.status_code == 200, done.text
        assert "3 settled with beta" in done.text
    after = source.read_text()
    assert after.startswith("# People in alpha and beta, matched by email.\n")  # comments kept
    assert after.startswith(before.rstrip("\n").rsplit("[fields.name]", 1)[0])  # the rest untouched
    assert (
        '[fields.name.conflict]\n# beta wins every conflict on name (set on the review page by Grace (admin))\npolicy = "owner"\nowner = "beta"'
        in after
    )
    assert not list(source.parent.glob(".*.tmp"))
    policy = review.runner.by_name["people"].conflict_policy("name")
    assert (policy.policy, policy.owner) == ("owner", "beta")
    assert await _open(review) == 0
    await wait_for(
        lambda: alpha.name_of("ada@example.com") == "Augusta King", 10, what="the preferred values"
    )


async def test_always_prefer_refuses_an_unknown_field_or_app_without_touching_the_file(
    review: Daemon,
) -> None:
    (source,) = [Path(m.source) for m in review.runner.mappings]
    before = source.read_text()
    async with page(review) as browser:
        assert (
            await browser.get("/conflicts/prefer", sync="people", field="nope", app="beta")
        ).status_code == 400
        assert (
            await browser.get("/conflicts/prefer", sync="people", field="name", app="gamma")
        ).status_code == 400
        assert (
            await browser.get("/conflicts/prefer", sync="other", field="name", app="beta")
        ).status_code == 400
    assert source.read_text() == before


# -- dead letters -----------------------------------------------------------------------------------


async def test_a_dead_letter_is_shown_by_error_kind_and_replayed_once_its_cause_is_fixed(
    tmp_path: Path, client: Any
) -> None:
    alpha = SqlTable.create(tmp_path / "alpha.db")
    beta = SqlTable.create(tmp_path / "beta.db")
    alpha.insert("dee@example.com", "Dee")
    beta.insert("dee@example.com", "Dee")
    with closing(sqlite3.connect(beta.path)) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON users WHEN NEW.name = 'Dee Refused' "
            "BEGIN SELECT RAISE(ABORT, 'names like that are refused'); END"
        )
        db.commit()
    settings = make_settings(
        tmp_path, {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}, {"people": PEOPLE_MAPPING}
    )
    daemon = await started(settings)
    try:
        alpha.rename("dee@example.com", "Dee Refused")
        await daemon.poll("alpha")
        letters: list[Any] = []

        async def dead() -> bool:
            letters[:] = await daemon.store.call(lambda s: s.dead_letters())
            return bool(letters)

        await wait_for(dead, 10, what="the dead letter")
        (letter,) = letters
        async with page(daemon, name="Ops") as browser:
            listing = await browser.get("/deadletters")
            assert f'id="group-{letter.error_kind}-beta"' in listing.text
            assert "names like that are refused" in listing.text
            assert "not retried on its own" in listing.text
            preview = await browser.post("/deadletters/preview", {"ids": str(letter.id), "choice": "replay"})
            assert "planned again now: beta gets the record" in preview.text
            assert beta.name_of("dee@example.com") == "Dee"
            with closing(sqlite3.connect(beta.path)) as db:
                db.execute("DROP TRIGGER refuse")
                db.commit()
            done = await browser.post(
                "/deadletters/apply", {"ids": str(letter.id), "choice": "replay", "why": "trigger removed"}
            )
            assert "1 replayed" in done.text
            await wait_for(
                lambda: beta.name_of("dee@example.com") == "Dee Refused", 10, what="the replayed write"
            )
            again = await browser.post(
                "/deadletters/apply", {"ids": str(letter.id), "choice": "replay", "why": "again"}
            )
            assert "0 replayed" in again.text
            assert "not a dead letter" in again.text
        log = await daemon.store.call(lambda s: s.changelog(limit=50))
        assert [e["reason"] for e in log if e["code"] == "admin"] == [
            f"dead letter #{letter.id} (update to beta) replayed by Ops (admin): trigger removed"
        ]
    finally:
        await daemon.stop()


async def test_dropping_a_dead_letter_gives_it_up_and_says_who(tmp_path: Path) -> None:
    alpha = SqlTable.create(tmp_path / "alpha.db")
    beta = SqlTable.create(tmp_path / "beta.db")
    alpha.insert("eve@example.com", "Eve")
    beta.insert("eve@example.com", "Eve")
    with closing(sqlite3.connect(beta.path)) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON users BEGIN SELECT RAISE(ABORT, 'read-only table'); END"
        )
        db.commit()
    settings = make_settings(
        tmp_path, {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}, {"people": PEOPLE_MAPPING}
    )
    daemon = await started(settings)
    try:
        alpha.rename("eve@example.com", "Eve Adams")
        await daemon.poll("alpha")

        await wait_for(lambda: _is(_dead(daemon), 1), 10, what="the dead letter")
        (letter,) = await daemon.store.call(lambda s: s.dead_letters())
        async with page(daemon) as browser:
            preview = await browser.post("/deadletters/preview", {"ids": str(letter.id), "choice": "drop"})
            assert "given up for good" in preview.text
            await browser.post(
                "/deadletters/apply", {"ids": str(letter.id), "choice": "drop", "why": "table frozen"}
            )
        assert await _dead(daemon) == 0
        assert (await daemon.store.call(lambda s: s.intent(letter.id))).status == "dropped"
    finally:
        await daemon.stop()


async def _dead(daemon: Daemon) -> int:
    return int(await daemon.store.call(lambda s: s.count_dead_letters()))


# -- customers and activity ---------------------------------------------------------------------------


async def test_the_customer_page_shows_each_apps_value_provenance_history_and_open_conflicts(
    review: Daemon,
) -> None:
    cid = (await _by_key(review))["ada@example.com"]
    async with page(review) as browser:
        found = await browser.get("/customers", email="ADA@example.com")
        assert found.status_code == 200
        grid = found.text.split('id="grid"', 1)[1].split("</table>", 1)[0]
        assert "<th>alpha</th>" in grid
        assert "<th>beta</th>" in grid
        assert "Ada Lovelace" in grid
        assert "Augusta King" in grid
        assert f"#{cid} name</a>" in found.text
        assert "alpha: <code>" in found.text
        assert "beta: <code>" in found.text
        assert "name: " in found.text.split("<h2>History</h2>", 1)[1]
        missing = await browser.get("/customers", email="nobody@example.com")
        assert "No customer with the key" in missing.text


async def test_the_activity_stream_returns_new_lines_filtered_and_the_daemon_logs_them(
    review: Daemon, people: tuple[SqlTable, SqlTable]
) -> None:
    alpha, _ = people
    async with page(review) as browser:
        first = (await browser.get("/activity.json")).json()
        after = first["after"]
        assert first["entries"]
        assert (await browser.get("/activity.json", after=after)).json()["entries"] == []
        with structlog.testing.capture_logs() as events:
            alpha.insert("new@example.com", "New Person")
            await review.poll("alpha")
            found: list[dict[str, Any]] = []

            async def arrived() -> bool:
                found[:] = (await browser.get("/activity.json", after=after, app="alpha")).json()["entries"]
                return any("new@example.com" in e["line"] for e in found)

            await wait_for(arrived, 10, what="the new person's lines")
            assert all(e["app"] == "alpha" for e in found)
            texted = (await browser.get("/activity.json", after=after, q="NEW PERSON")).json()["entries"]
            assert texted
            assert all("new person" in e["line"].lower() for e in texted)
            await wait_for(
                lambda: any(e["event"] == "change" and "new@example.com" in e["line"] for e in events),
                10,
                what="the change in the daemon's log",
            )
        logged = [e for e in events if e["event"] == "change"]
        assert all(e["log_level"] == "info" for e in logged)
        assert (await browser.get("/activity")).status_code == 200
        assert (await browser.get("/static/activity.js")).status_code == 200
        assert (await browser.get("/static/nope.js")).status_code == 404


async def test_the_status_page_shows_the_health_report_keys_when_the_status_has_them(
    review: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = review.status

    async def health() -> dict[str, Any]:
        report = await plain()
        report["apps"]["beta"].update(state="failing", state_reason="credentials rejected", budget_used=0.5)
        report.update(
            attention=[{"what": "beta is failing", "why": "credentials rejected", "command": "syncd status"}],
            needs_attention=True,
            open_conflicts=3,
            pending_deletes=7,
        )
        return report

    async with page(review) as browser:
        before = (await browser.get("/")).text
        assert "beta is failing" not in before
        monkeypatch.setattr(review, "status", health)
        after = (await browser.get("/")).text
        assert "<strong>beta is failing</strong> — credentials rejected <code>syncd status</code>" in after
        assert 'class="chip state-failing"' in after
        assert "API budget 50%" in after
        assert "7 held deletes" in after
