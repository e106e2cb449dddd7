"""The admin API of an in-process daemon: auth, OpenAPI coverage, conflicts, change log, entities."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import structlog
from openapi_spec_validator import validate

from syncd.daemon import Daemon
from syncd.daemon.admin import openapi_document
from syncd.daemon.web import is_page
from syncd.engine.model import Candidate, Conflict
from syncd.store import StateStore

from .conftest import Client, make_settings, started
from .harness import ADMIN_TOKEN, PEOPLE_MAPPING, SqlTable, sql_app, wait_for


def _served_routes(daemon: Daemon, *, pages: bool = False) -> set[tuple[str, str]]:
    """The API's routes (or, with ``pages``, the review web page's: docs/admin-api.md lists them)."""
    assert daemon.web_app is not None
    out = set()
    for route in daemon.web_app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource is not None else ""
        if is_page(path) == pages:
            out.add((route.method.lower(), path))
    return out


async def _ids_paged_back(http: httpx.AsyncClient, *, limit: int) -> list[int]:
    """Every change-log entry id, read ``limit`` at a time through ``before=`` paging."""
    seen: list[int] = []
    params: dict[str, int] = {"limit": limit}
    while True:
        page = (await http.get("/api/changelog", params=params)).json()
        seen += [e["id"] for e in page["entries"]]
        if page["next_before"] is None:
            return seen
        params = {"limit": limit, "before": page["next_before"]}


async def test_openapi_document_is_valid_and_lists_every_served_route(daemon: Daemon, client: Client) -> None:
    doc = openapi_document()
    validate(doc)
    documented = {
        (method, path) for path, item in doc["paths"].items() for method in item if method != "parameters"
    }
    served = _served_routes(daemon)
    assert served == documented
    async with client(daemon) as http:
        assert (await http.get("/api/openapi.json")).json() == doc


async def test_every_route_but_healthz_and_webhooks_needs_the_bearer_token(
    daemon: Daemon, client: Client
) -> None:
    async with client(daemon, token=None) as anonymous, client(daemon, token=ADMIN_TOKEN + "x") as wrong:
        for method, path in sorted(_served_routes(daemon)):
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            if path == "/healthz" or path.startswith("/webhooks/"):
                continue
            for http in (anonymous, wrong):
                response = await http.request(method.upper(), concrete)
                assert response.status_code == 401, (method, path)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await anonymous.get("/healthz")).status_code == 200


async def test_without_an_admin_token_the_api_refuses_everything_but_healthz_and_says_why(
    tmp_path: Path, tables: tuple[SqlTable, SqlTable], client: Client
) -> None:
    alpha, beta = tables
    settings = make_settings(
        tmp_path,
        {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)},
        {"people": PEOPLE_MAPPING},
        token=None,
    )
    with structlog.testing.capture_logs() as events:
        daemon = await started(settings)
    try:
        assert any("admin API disabled" in e["event"] and e["log_level"] == "warning" for e in events)
        async with client(daemon, token=None) as anonymous, client(daemon, token="anything") as guessing:
            assert (await anonymous.get("/healthz")).status_code == 200
            for http in (anonymous, guessing):
                refused = await http.get("/api/status")
                assert refused.status_code == 401
                assert "no admin token is configured" in refused.json()["error"]
    finally:
        await daemon.stop()


REVIEW_MAPPING = PEOPLE_MAPPING.replace('key = "email"', 'key = "email"\ninitial_conflict = "review"')


async def test_conflict_resolved_through_the_api_is_written_to_both_apps(
    tmp_path: Path, client: Client
) -> None:
    alpha = SqlTable.create(tmp_path / "alpha.db")
    beta = SqlTable.create(tmp_path / "beta.db")
    alpha.insert("ada@example.com", "Ada Lovelace")
    beta.insert("ada@example.com", "Augusta King")
    settings = make_settings(
        tmp_path, {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}, {"people": REVIEW_MAPPING}
    )
    daemon = await started(settings)
    try:
        async with client(daemon) as http:
            conflicts = (await http.get("/api/conflicts")).json()["conflicts"]
            assert [(c["field"], c["entity_key"]) for c in conflicts] == [("name", "ada@example.com")]
            cid = conflicts[0]["id"]
            url = f"/api/conflicts/{cid}/resolve"
            assert (await http.post(url, content=b"{nope")).status_code == 400
            assert (await http.post(url, json={"take": "beta", "value": 1})).status_code == 400
            assert (await http.post(url, json={"take": "gamma"})).status_code == 400
            assert (await http.post("/api/conflicts/99999/resolve", json={"take": "beta"})).status_code == 404
            assert (await http.post("/api/conflicts/x/resolve", json={"take": "beta"})).status_code == 400

            # A value set by hand goes through the field's transforms, and an empty one is refused.
            empty = await http.post(url, json={"value": "  "})
            assert empty.status_code == 400
            assert "empty value" in empty.json()["error"]
            assert (await http.post(url, json={"take": "beta", "allow_empty": True})).status_code == 400
            assert (await http.get("/api/conflicts")).json()["conflicts"][0]["status"] == "open"

            done = await http.post(url, json={"take": "beta"})
            assert done.status_code == 200
            assert done.json()["field"] == "name"
            await wait_for(
                lambda: alpha.name_of("ada@example.com") == "Augusta King", 5, what="the chosen value"
            )
            assert beta.name_of("ada@example.com") == "Augusta King"
            assert (await http.post(url, json={"take": "alpha"})).status_code == 409
            assert (await http.get("/api/conflicts")).json()["conflicts"] == []
            everything = (await http.get("/api/conflicts", params={"status": "all"})).json()["conflicts"]
            assert [c["status"] for c in everything] == ["resolved"]
    finally:
        await daemon.stop()


async def test_changelog_pages_backwards_without_gaps_or_repeats(daemon: Daemon, client: Client) -> None:
    async with client(daemon) as http:
        everything = (await http.get("/api/changelog", params={"limit": 1000})).json()
        assert everything["next_before"] is None
        ids = [e["id"] for e in everything["entries"]]
        assert ids == sorted(ids, reverse=True)
        assert len(ids) >= 5

        assert await _ids_paged_back(http, limit=2) == ids
        assert (await http.get("/api/changelog", params={"limit": 0})).status_code == 400
        assert (await http.get("/api/changelog", params={"before": "abc"})).status_code == 400


async def test_entity_view_shows_one_customer_across_apps(daemon: Daemon, client: Client) -> None:
    async with client(daemon) as http:
        view = (await http.get("/api/entities/B1@Example.com")).json()
        assert view["key"] == "b1@example.com"
        assert view["values"]["name"] == "User 1"
        assert {link["app"] for link in view["links"]} == {"alpha", "beta"}
        assert view["changes"]
        assert all(c["entity_id"] == view["id"] for c in view["changes"])
        missing = await http.get("/api/entities/nobody@example.com")
        assert missing.status_code == 404


async def test_status_and_readiness_follow_the_lifecycle(daemon: Daemon, client: Client) -> None:
    async with client(daemon) as http:
        status = (await http.get("/api/status")).json()
        assert status["ready"] is True
        assert status["accepting_webhooks"] is True
        assert status["apps"]["alpha"]["last_poll_at"] is not None
        assert status["mappings"][0]["name"] == "people"
        assert (await http.get("/readyz")).status_code == 200
        daemon.request_stop("test")
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["reason"] == "shutting down"


async def test_every_metric_the_daemon_exposes_is_documented_and_every_documented_one_exists(
    daemon: Daemon, client: Client
) -> None:
    async with client(daemon) as http:
        text = (await http.get("/metrics")).text
    exposed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE syncd_"):
            _, _, name, kind = line.split()
            exposed.add(name if kind != "counter" or name.endswith("_total") else f"{name}_total")
    doc = (Path(__file__).parents[2] / "docs" / "admin-api.md").read_text()
    metrics = doc.split("### Metrics", 1)[1].split("\n## ", 1)[0]  # not the cookies named syncd_*
    documented = set(re.findall(r"`(syncd_[a-z_]+)`", metrics))
    assert exposed == documented


async def test_every_review_page_route_is_documented_and_every_documented_one_is_served(
    daemon: Daemon,
) -> None:
    served = {(method.upper(), path) for method, path in _served_routes(daemon, pages=True)}
    assert ("GET", "/conflicts") in served
    doc = (Path(__file__).parents[2] / "docs" / "admin-api.md").read_text()
    section = doc.split("## Review web page", 1)[1].split("\n## ", 1)[0]
    documented = {
        (method, path.split("?", 1)[0])
        for method, path in re.findall(r"^\| `(GET|POST) ([^`]+)`", section, re.M)
    }
    assert documented == served


async def test_status_carries_the_health_report_keys_and_what_needs_a_person(
    daemon: Daemon, client: Client
) -> None:
    async with client(daemon) as http:
        calm = (await http.get("/api/status")).json()
        for key in ("attention", "needs_attention", "open_conflicts", "pending_deletes", "daemons"):
            assert key in calm, key
        assert calm["needs_attention"] is False
        assert calm["attention"] == []
        assert calm["open_conflicts"] == 0
        assert calm["pending_deletes"] == 0
        assert calm["daemons"]  # this one
        for name in ("alpha", "beta"):
            app = calm["apps"][name]
            assert app["state"] == "ok"
            assert app["state_reason"] is None
            assert isinstance(app["lag_seconds"], float)
            assert app["webhook_age_seconds"] is None  # no webhook came
            assert app["outbox_depth"] == 0
            assert app["dead_letters"] == 0
            assert "budget_used" in app
            assert app["read"] >= 0  # the keys it had before stay
        assert calm["apps"]["alpha"]["paused"] is False

        def park(store: StateStore) -> None:
            entity = store.find_entity("people", "b1@example.com")
            assert entity is not None
            candidates = [Candidate("alpha", "A"), Candidate("beta", "B")]
            store.add_conflicts("people", [Conflict(entity.id, "name", candidates, "review")])

        await daemon.store.call(park)
        parked = (await http.get("/api/status")).json()
        assert parked["needs_attention"] is True
        assert parked["open_conflicts"] == 1
        [item] = parked["attention"]
        assert set(item) == {"what", "why", "command"}
        assert item["command"].startswith("syncd conflicts resolve")


async def test_following_the_changelog_by_position_gives_each_entry_once(
    daemon: Daemon, client: Client
) -> None:
    async with client(daemon) as http:
        history = (await http.get("/api/changelog", params={"limit": 1000})).json()["entries"]
        followed: list[dict[str, object]] = []
        after = 0
        while True:
            page = (await http.get("/api/changelog", params={"after": after, "limit": 2})).json()
            followed += page["entries"]
            if page["next_after"] == after:
                break
            after = page["next_after"]
        key = ("id", "seq", "code", "app", "field")
        assert sorted(tuple(str(e[k]) for k in key) for e in followed) == sorted(
            tuple(str(e[k]) for k in key) for e in history
        )
        assert [e["seq"] for e in followed] == sorted(e["seq"] for e in followed)  # type: ignore[type-var]
        again = (await http.get("/api/changelog", params={"after": after})).json()
        assert again["entries"] == []
        assert again["next_after"] == after
        assert (await http.get("/api/changelog", params={"after": -1})).status_code == 400


async def test_changelog_pages_backwards_past_rows_holding_folded_entries(
    daemon: Daemon, client: Client
) -> None:
    from syncd.engine.model import Change, ReasonCode

    def fold(store: StateStore) -> None:
        run = store.begin_run("admin-test")
        for n in range(3):
            entity = store.new_entity("people", f"folded-{n}@example.com")
            new = Change(
                entity.id, "*", None, {"n": n}, "alpha", "new record in alpha", code=ReasonCode.NEW_RECORD
            )
            store.log_changes("people", [new], run)
            made = Change(entity.id, "*", None, f"b-{n}", "beta", "created in beta", code=ReasonCode.CREATED)
            store.log_changes("people", [made], run)

    await daemon.store.call(fold)
    async with client(daemon) as http:
        everything = (await http.get("/api/changelog", params={"limit": 1000})).json()["entries"]
        ids = [e["id"] for e in everything]
        assert len(set(ids)) < len(ids)  # folded entries share their row's id
        assert await _ids_paged_back(http, limit=2) == ids
