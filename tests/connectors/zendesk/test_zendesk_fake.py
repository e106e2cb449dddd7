"""The Zendesk fake itself: the behaviours of the real API that sync code must cope with."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.zendesk import ZendeskFake, decode_cursor
from syncd.testing.fakes.zendesk.__main__ import main

from .conftest import AGENT, OAUTH, TOKEN

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
async def api(fake: ZendeskFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url + "/api/v2", auth=(f"{AGENT}/token", TOKEN)) as client:
        yield client


async def test_users_come_in_zendesks_envelopes_with_integer_ids_and_z_timestamps(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/users.json", json={"user": {"name": "Ada", "email": "ada@lovelace.io"}})
    assert created.status_code == 201
    user = created.json()["user"]
    assert isinstance(user["id"], int)
    assert ISO_Z.match(user["created_at"])
    assert ISO_Z.match(user["updated_at"])
    assert user["role"] == "end-user"
    assert user["user_fields"] == {"plan": None, "seats": None}
    again = await api.get(f"/users/{user['id']}")
    assert again.json() == {"user": user}


async def test_bad_credentials_get_401_couldnt_authenticate_you(fake: ZendeskFake) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        wrong = await client.get("/api/v2/users/me", auth=(AGENT, TOKEN))  # without the /token suffix
        bearer = await client.get("/api/v2/users/me", headers={"Authorization": f"Bearer {OAUTH}"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "Couldn't authenticate you"}
    assert bearer.status_code == 200


async def test_cursor_pagination_reports_has_more_and_next_links(
    fake: ZendeskFake, api: httpx.AsyncClient
) -> None:
    for i in range(5):
        fake.seed_user(name=f"P{i}", email=f"p{i}@lovelace.io")
    seen: list[int] = []
    params: dict[str, str] = {"page[size]": "2", "role[]": "end-user"}
    while True:
        body = (await api.get("/users", params=params)).json()
        seen += [u["id"] for u in body["users"]]
        assert set(body["meta"]) == {"has_more", "after_cursor", "before_cursor"}
        if not body["meta"]["has_more"]:
            break
        assert body["links"]["next"].startswith(fake.url)
        assert "role%5B%5D=end-user" in body["links"]["next"], "the next link keeps the request's filters"
        params["page[after]"] = body["meta"]["after_cursor"]
    assert len(seen) == len(set(seen)) == 5
    too_big = await api.get("/users", params={"page[size]": "101"})
    assert too_big.status_code == 400


async def test_offset_pagination_fails_past_ten_thousand_records(api: httpx.AsyncClient) -> None:
    deep = await api.get("/users", params={"page": "101", "per_page": "100"})
    assert deep.status_code == 400
    assert deep.json()["error"] == "InvalidPaginationDepth"


async def test_the_user_export_leaves_out_the_last_minute_and_resumes_by_cursor(
    fake: ZendeskFake, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    start = int(clock.now().timestamp()) - 120
    old = fake.seed_user(name="Old", email="old@lovelace.io")
    clock.advance(61)
    fresh = fake.seed_user(name="Fresh", email="fresh@lovelace.io")
    body = (await api.get("/incremental/users/cursor.json", params={"start_time": start})).json()
    assert [str(u["id"]) for u in body["users"] if u["role"] == "end-user"] == [old]
    assert body["end_of_stream"] is True
    assert body["after_url"].endswith(body["after_cursor"] + "&per_page=1000")
    clock.advance(61)
    later = (await api.get("/incremental/users/cursor", params={"cursor": body["after_cursor"]})).json()
    assert [str(u["id"]) for u in later["users"]] == [fresh]
    too_recent = await api.get(
        "/incremental/users/cursor", params={"start_time": int(clock.now().timestamp())}
    )
    assert too_recent.status_code == 400


async def test_the_export_is_limited_to_ten_requests_a_minute_with_retry_after(
    fake: ZendeskFake, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    start = int(clock.now().timestamp()) - 3600
    statuses = [
        (await api.get("/incremental/users/cursor", params={"start_time": start})).status_code
        for _ in range(11)
    ]
    assert statuses == [200] * 10 + [429]
    refused = await api.get("/incremental/users/cursor", params={"start_time": start})
    assert refused.headers["Retry-After"] == "60"
    assert (await api.get("/users/me")).status_code == 200, "other endpoints are not affected"
    clock.advance(60)
    assert (await api.get("/incremental/users/cursor", params={"start_time": start})).status_code == 200


async def test_every_answer_carries_the_accounts_rate_limit_headers(
    fake: ZendeskFake, api: httpx.AsyncClient
) -> None:
    fake.rate_limit = 3
    answers = [await api.get("/users/me") for _ in range(4)]
    assert [a.headers["X-Rate-Limit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["X-Rate-Limit"] == answers[0].headers["ratelimit-limit"] == "3"
    assert answers[3].status_code == 429
    assert int(answers[3].headers["Retry-After"]) >= 1


async def test_bulk_jobs_go_queued_working_completed_with_a_result_per_item(api: httpx.AsyncClient) -> None:
    users = [{"name": "Ada", "email": "ada@lovelace.io"}, {"name": "", "email": "x@lovelace.io"}]
    job = (await api.post("/users/create_many", json={"users": users})).json()["job_status"]
    assert job["status"] == "queued"
    assert job["results"] is None
    statuses = []
    while job["status"] != "completed":
        job = (await api.get(f"/job_statuses/{job['id']}.json")).json()["job_status"]
        statuses.append(job["status"])
    assert statuses == ["working", "completed"]
    ok, bad = job["results"]
    assert ok["success"] is True
    assert ok["status"] == "Created"
    assert (bad["index"], bad["success"], bad["error"]) == (1, False, "RecordInvalid")


async def test_too_many_open_jobs_are_refused(fake: ZendeskFake, api: httpx.AsyncClient) -> None:
    fake.hold_jobs(30)
    refused = await api.post("/users/create_many", json={"users": [{"name": "Ada"}]})
    assert refused.status_code == 429
    assert refused.json()["error"] == "TooManyJobs"
    fake.release_jobs()
    assert (await api.post("/users/create_many", json={"users": [{"name": "Ada"}]})).status_code == 200


async def test_create_or_update_matches_external_id_case_insensitively_and_keeps_the_case_sent(
    api: httpx.AsyncClient,
) -> None:
    first = await api.post("/users/create_or_update", json={"user": {"name": "Ada", "external_id": "ENT-1"}})
    second = await api.post(
        "/users/create_or_update", json={"user": {"name": "Ada L", "external_id": "ent-1"}}
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["user"]["id"] == first.json()["user"]["id"]
    assert second.json()["user"]["external_id"] == "ent-1"


async def test_an_email_on_update_adds_a_secondary_identity_and_make_primary_swaps(
    api: httpx.AsyncClient,
) -> None:
    user = (await api.post("/users", json={"user": {"name": "Ada", "email": "ada@lovelace.io"}})).json()[
        "user"
    ]
    updated = (await api.put(f"/users/{user['id']}", json={"user": {"email": "ada@new.io"}})).json()["user"]
    assert updated["email"] == "ada@lovelace.io"
    identities = (await api.get(f"/users/{user['id']}/identities")).json()["identities"]
    secondary = next(i for i in identities if not i["primary"])
    swapped = await api.put(f"/users/{user['id']}/identities/{secondary['id']}/make_primary")
    assert [i["primary"] for i in swapped.json()["identities"]] == [False, True]
    assert (await api.get(f"/users/{user['id']}")).json()["user"]["email"] == "ada@new.io"


async def test_permanent_deletion_needs_a_soft_delete_first(api: httpx.AsyncClient) -> None:
    user = (await api.post("/users", json={"user": {"name": "Ada", "email": "ada@lovelace.io"}})).json()[
        "user"
    ]
    assert (await api.delete(f"/deleted_users/{user['id']}")).status_code == 404
    soft = (await api.delete(f"/users/{user['id']}")).json()["user"]
    assert soft["active"] is False
    assert (await api.get(f"/users/{user['id']}")).status_code == 404
    assert (await api.get(f"/deleted_users/{user['id']}")).json()["deleted_user"][
        "email"
    ] == "ada@lovelace.io"
    erased = (await api.delete(f"/deleted_users/{user['id']}")).json()["deleted_user"]
    assert (erased["name"], erased["email"]) == ("Permanently Deleted User", None)


async def test_export_cursors_are_opaque_positions(
    fake: ZendeskFake, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    clock.advance(61)
    body = (await api.get("/incremental/users/cursor", params={"start_time": 0})).json()
    assert decode_cursor(body["after_cursor"]) == (int(clock.now().timestamp()) - 61, int(uid))
    assert (await api.get("/incremental/users/cursor", params={"cursor": "garbage!"})).status_code == 400


def test_the_standalone_entry_point_documents_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "--webhook-url" in capsys.readouterr().out
