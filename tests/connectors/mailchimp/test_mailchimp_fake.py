"""The Mailchimp fake reproduces the API behaviours the connector depends on (api-reference §2, §5)."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sys
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import httpx
import pytest

from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.mailchimp import MailchimpFake, subscriber_hash

from .conftest import API_KEY, LIST_ID, Receiver

MEMBERS = f"/lists/{LIST_ID}/members"


@pytest.fixture
async def api(fake: MailchimpFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url + "/3.0", auth=("anyone", API_KEY)) as client:
        yield client


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


async def test_wrong_api_key_gets_a_401_api_key_invalid_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/ping", auth=("anyone", "wrong-us1"))
    assert response.status_code == 401
    body = response.json()
    assert body["title"] == "API Key Invalid"
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert (await api.get("/ping")).json() == {"health_status": "Everything's Chimpy!"}


async def test_member_id_is_the_md5_of_the_lowercased_email_and_the_path_takes_the_raw_email(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post(MEMBERS, json={"email_address": "Ada@Lovelace.IO", "status": "subscribed"})
    member_id = hashlib.md5(b"ada@lovelace.io").hexdigest()
    assert created.json()["id"] == member_id
    assert created.json()["email_address"] == "Ada@Lovelace.IO"
    by_email = await api.get(f"{MEMBERS}/ada@lovelace.io")
    assert by_email.json()["id"] == member_id
    assert (await api.get(f"{MEMBERS}/{member_id}")).status_code == 200
    missing = await api.get(f"{MEMBERS}/{subscriber_hash('nobody@lovelace.io')}")
    assert missing.status_code == 404
    assert missing.json()["title"] == "Resource Not Found"


async def test_listing_defaults_to_ten_members_and_refuses_counts_over_1000(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    for i in range(12):
        fake.seed(f"m{i}@lovelace.io")
    first = (await api.get(MEMBERS)).json()
    assert len(first["members"]) == 10
    assert first["total_items"] == 12
    assert first["list_id"] == LIST_ID
    rest = (await api.get(MEMBERS, params={"offset": 10, "count": 1000})).json()
    assert len(rest["members"]) == 2
    too_many = await api.get(MEMBERS, params={"count": 1001})
    assert too_many.status_code == 400


async def test_since_last_changed_is_exclusive_and_sorting_by_last_changed_follows_edits(
    api: httpx.AsyncClient, fake: MailchimpFake, clock: FakeClock
) -> None:
    first = fake.seed("first@lovelace.io")
    clock.advance(10)
    second = fake.seed("second@lovelace.io")
    clock.advance(10)
    fake.edit(first, merge_fields={"FNAME": "Changed"})
    params = {"sort_field": "last_changed", "sort_dir": "ASC"}
    ordered = (await api.get(MEMBERS, params=params)).json()["members"]
    assert [m["id"] for m in ordered] == [second, first]
    assert ordered[1]["last_changed"] == "2026-01-01T09:00:20+00:00"
    since = {**params, "since_last_changed": "2026-01-01T09:00:10+00:00"}
    assert [m["id"] for m in (await api.get(MEMBERS, params=since)).json()["members"]] == [first]
    descending = (await api.get(MEMBERS, params={**params, "sort_dir": "DESC"})).json()["members"]
    assert [m["id"] for m in descending] == [first, second]


async def test_adding_an_existing_member_is_400_member_exists(api: httpx.AsyncClient) -> None:
    await api.post(MEMBERS, json={"email_address": "ada@lovelace.io", "status": "subscribed"})
    again = await api.post(MEMBERS, json={"email_address": "ADA@lovelace.io", "status": "subscribed"})
    assert again.status_code == 400
    assert again.json()["title"] == "Member Exists"
    assert "Use PUT to insert or update list members" in again.json()["detail"]


async def test_a_permanently_deleted_address_can_never_be_added_again(api: httpx.AsyncClient) -> None:
    created = await api.post(MEMBERS, json={"email_address": "ada@lovelace.io", "status": "subscribed"})
    member_id = created.json()["id"]
    gone = await api.post(f"{MEMBERS}/{member_id}/actions/delete-permanent")
    assert gone.status_code == 204
    assert (await api.get(f"{MEMBERS}/{member_id}")).status_code == 404
    for method, path, body in (
        ("POST", MEMBERS, {"email_address": "ada@lovelace.io", "status": "subscribed"}),
        ("PUT", f"{MEMBERS}/{member_id}", {"email_address": "ada@lovelace.io", "status_if_new": "pending"}),
    ):
        response = await api.request(method, path, json=body)
        assert response.status_code == 400
        assert response.json()["title"] == "Forgotten Email Not Subscribed"


async def test_unknown_badly_typed_and_missing_required_merge_fields_are_invalid_resource(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    fake.add_merge_field("PLAN", "Plan", required=True)
    response = await api.post(
        MEMBERS,
        json={
            "email_address": "ada@lovelace.io",
            "status": "subscribed",
            "merge_fields": {"NOPE": 1, "BIRTHDAY": "31/12"},
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["title"] == "Invalid Resource"
    assert {e["field"] for e in body["errors"]} == {"NOPE", "BIRTHDAY", "PLAN"}
    skipped = await api.post(
        MEMBERS,
        params={"skip_merge_validation": "true"},
        json={"email_address": "ada@lovelace.io", "status": "subscribed"},
    )
    assert skipped.status_code == 200


@pytest.mark.parametrize("email", ["someone@example.com", "test@lovelace.io", "not-an-email"])
async def test_fake_looking_or_malformed_emails_are_refused(api: httpx.AsyncClient, email: str) -> None:
    response = await api.post(MEMBERS, json={"email_address": email, "status": "subscribed"})
    assert response.status_code == 400
    assert response.json()["title"] == "Invalid Resource"


async def test_patching_the_email_changes_the_member_id(api: httpx.AsyncClient, fake: MailchimpFake) -> None:
    old_id = fake.seed("old@lovelace.io")
    taken = fake.seed("taken@lovelace.io")
    patched = await api.patch(f"{MEMBERS}/{old_id}", json={"email_address": "new@lovelace.io"})
    assert patched.json()["id"] == subscriber_hash("new@lovelace.io")
    assert (await api.get(f"{MEMBERS}/{old_id}")).status_code == 404
    clash = await api.patch(f"{MEMBERS}/{taken}", json={"email_address": "NEW@lovelace.io"})
    assert clash.json()["title"] == "Member Exists"


async def test_put_upserts_and_applies_status_if_new_only_to_new_members(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    existing = fake.seed("old@lovelace.io", status="unsubscribed")
    kept = await api.put(
        f"{MEMBERS}/{existing}",
        json={
            "email_address": "old@lovelace.io",
            "status_if_new": "subscribed",
            "merge_fields": {"FNAME": "Ada"},
        },
    )
    assert kept.json()["status"] == "unsubscribed"
    assert kept.json()["merge_fields"]["FNAME"] == "Ada"
    new_id = subscriber_hash("new@lovelace.io")
    created = await api.put(
        f"{MEMBERS}/{new_id}", json={"email_address": "new@lovelace.io", "status_if_new": "pending"}
    )
    assert created.json()["status"] == "pending"
    mismatch = await api.put(
        f"{MEMBERS}/{new_id[::-1]}", json={"email_address": "x@lovelace.io", "status_if_new": "pending"}
    )
    assert mismatch.status_code == 400


async def test_subscribing_an_unsubscribed_or_cleaned_member_is_a_compliance_error(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    unsubscribed = fake.seed("gone@lovelace.io", status="unsubscribed")
    cleaned = fake.seed("bounced@lovelace.io", status="cleaned")
    for member_id, status in ((unsubscribed, "subscribed"), (cleaned, "subscribed"), (cleaned, "pending")):
        response = await api.patch(f"{MEMBERS}/{member_id}", json={"status": status})
        assert response.status_code == 400
        assert "compliance state" in response.json()["detail"]
    await api.delete(f"{MEMBERS}/{unsubscribed}")
    readd = await api.post(MEMBERS, json={"email_address": "gone@lovelace.io", "status": "subscribed"})
    assert "compliance state" in readd.json()["detail"], "archiving must not launder an unsubscribe"


async def test_archived_members_are_listed_only_when_asked_for_by_status(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    member_id = fake.seed("ada@lovelace.io")
    assert (await api.delete(f"{MEMBERS}/{member_id}")).status_code == 204
    assert (await api.get(f"{MEMBERS}/{member_id}")).json()["status"] == "archived"
    assert (await api.get(MEMBERS)).json()["total_items"] == 0
    archived = (await api.get(MEMBERS, params={"status": "archived"})).json()
    assert [m["id"] for m in archived["members"]] == [member_id]
    readded = await api.post(MEMBERS, json={"email_address": "ada@lovelace.io", "status": "pending"})
    assert readded.json()["status"] == "pending"


async def test_tag_writes_answer_204_and_activate_or_deactivate_tags(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    member_id = fake.seed("ada@lovelace.io", tags=["old", "keep"])
    before = fake.member(member_id)
    assert before is not None
    response = await api.post(
        f"{MEMBERS}/{member_id}/tags",
        json={"tags": [{"name": "new", "status": "active"}, {"name": "old", "status": "inactive"}]},
    )
    assert response.status_code == 204
    tags = (await api.get(f"{MEMBERS}/{member_id}/tags")).json()
    assert [t["name"] for t in tags["tags"]] == ["keep", "new"]
    after = fake.member(member_id)
    assert after is not None
    assert after["last_changed"] == before["last_changed"], "tag changes do not bump last_changed by default"


async def test_merge_fields_can_be_listed_added_and_then_written(api: httpx.AsyncClient) -> None:
    tags = [f["tag"] for f in (await api.get(f"/lists/{LIST_ID}/merge-fields")).json()["merge_fields"]]
    assert tags == ["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY"]
    added = await api.post(
        f"/lists/{LIST_ID}/merge-fields", json={"tag": "PLAN", "name": "Plan", "type": "text"}
    )
    assert added.json()["tag"] == "PLAN"
    duplicate = await api.post(
        f"/lists/{LIST_ID}/merge-fields", json={"tag": "PLAN", "name": "Plan", "type": "text"}
    )
    assert duplicate.status_code == 400
    member = await api.post(
        MEMBERS,
        json={"email_address": "ada@lovelace.io", "status": "subscribed", "merge_fields": {"PLAN": "pro"}},
    )
    assert member.json()["merge_fields"]["PLAN"] == "pro"


async def test_batch_subscribe_reports_failures_per_member_and_accepts_at_most_500(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    fake.seed("exists@lovelace.io", merge_fields={"FNAME": "Old"})
    members = [
        {"email_address": "new@lovelace.io", "status": "subscribed"},
        {"email_address": "exists@lovelace.io", "status": "subscribed", "merge_fields": {"FNAME": "New"}},
        {"email_address": "x@example.com", "status": "subscribed"},
    ]
    strict = (await api.post(f"/lists/{LIST_ID}", json={"members": members})).json()
    assert strict["total_created"] == 1
    assert [e["error_code"] for e in strict["errors"]] == ["ERROR_CONTACT_EXISTS", "ERROR_GENERIC"]
    updating = (
        await api.post(f"/lists/{LIST_ID}", json={"members": members[1:], "update_existing": True})
    ).json()
    assert [m["merge_fields"]["FNAME"] for m in updating["updated_members"]] == ["New"]
    assert updating["error_count"] == 1
    too_many = [{"email_address": f"m{i}@lovelace.io", "status": "subscribed"} for i in range(501)]
    assert (await api.post(f"/lists/{LIST_ID}", json={"members": too_many})).status_code == 400


async def test_batch_updates_validate_like_single_writes_and_change_nothing_on_a_refusal(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    fake.seed("gone@lovelace.io", status="unsubscribed", merge_fields={"FNAME": "Gone"})
    fake.seed("ada@lovelace.io", merge_fields={"FNAME": "Ada"})
    members = [
        {"email_address": "gone@lovelace.io", "status": "subscribed", "merge_fields": {"FNAME": "Back"}},
        {"email_address": "ada@lovelace.io", "merge_fields": {"FNAME": "Ada", "NO_SUCH": "x"}},
        {"email_address": "new@lovelace.io"},
    ]
    body = (await api.post(f"/lists/{LIST_ID}", json={"members": members, "update_existing": True})).json()
    assert body["total_created"] == body["total_updated"] == 0
    assert body["error_count"] == 3
    compliance, merge, status = body["errors"]
    assert "compliance state" in compliance["error"]
    assert (merge["field"], merge["error_code"]) == ("NO_SUCH", "ERROR_GENERIC")
    assert status["field"] == "status"
    gone = fake.member("gone@lovelace.io")
    assert gone is not None
    assert (gone["status"], gone["merge_fields"]["FNAME"]) == ("unsubscribed", "Gone")
    assert fake.member("new@lovelace.io") is None, "a new member needs a status"


async def test_batch_sync_tags_replaces_existing_members_tags_and_new_members_get_theirs(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    fake.seed("ada@lovelace.io", tags=["old", "keep"])
    fake.seed("bob@lovelace.io", tags=["old"])
    members = [
        {"email_address": "ada@lovelace.io", "tags": ["keep", "new"]},
        {"email_address": "bob@lovelace.io"},
        {"email_address": "cy@lovelace.io", "status_if_new": "subscribed", "tags": ["fresh"]},
    ]
    unsynced = await api.post(f"/lists/{LIST_ID}", json={"members": members[:1], "update_existing": True})
    assert [t["name"] for t in unsynced.json()["updated_members"][0]["tags"]] == ["old", "keep"]
    body = (
        await api.post(
            f"/lists/{LIST_ID}", json={"members": members, "update_existing": True, "sync_tags": True}
        )
    ).json()
    assert (body["total_created"], body["total_updated"], body["error_count"]) == (1, 2, 0)
    tags = {m["email_address"]: [t["name"] for t in m["tags"]] for m in body["updated_members"]}
    assert tags == {"ada@lovelace.io": ["keep", "new"], "bob@lovelace.io": []}
    assert [t["name"] for t in body["new_members"][0]["tags"]] == ["fresh"]


async def test_a_batch_call_counts_against_the_ten_connection_limit(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    fake.pause()
    held = [asyncio.create_task(api.get("/ping")) for _ in range(10)]
    await fake.wait_until(lambda: fake.in_flight == 10)
    members = [{"email_address": "ada@lovelace.io", "status": "subscribed"}]
    refused = await api.post(f"/lists/{LIST_ID}", json={"members": members})
    assert refused.status_code == 429
    fake.resume()
    await asyncio.gather(*held)
    assert fake.member("ada@lovelace.io") is None


async def test_more_than_ten_simultaneous_requests_are_refused_with_429(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    fake.pause()
    held = [asyncio.create_task(api.get("/ping")) for _ in range(10)]
    await fake.wait_until(lambda: fake.in_flight == 10)
    refused = await api.get("/ping")
    assert refused.status_code == 429
    assert refused.json()["title"] == "Too Many Requests"
    fake.resume()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200] * 10


async def test_injected_throttling_sometimes_comes_without_a_body(
    api: httpx.AsyncClient, fake: MailchimpFake
) -> None:
    fake.throttle_styles = ["json", "empty", "403-empty"]
    fake.inject("429", times=3)
    responses = [await api.get("/ping") for _ in range(3)]
    assert [r.status_code for r in responses] == [429, 429, 403]
    assert responses[0].json()["status"] == 429
    assert responses[1].content == b""
    assert responses[2].content == b""


async def test_registering_a_webhook_validates_the_url_with_a_get_first(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.get_status = 404
    refused = await api.post(f"/lists/{LIST_ID}/webhooks", json={"url": receiver.url})
    assert refused.status_code == 400
    assert "HTTP Code: 404" in refused.json()["errors"][0]["message"]
    receiver.get_status = 200
    created = await api.post(
        f"/lists/{LIST_ID}/webhooks",
        json={"url": receiver.url + "?secret=s", "events": {"subscribe": True}, "sources": {"user": True}},
    )
    assert created.status_code == 200
    assert created.json()["events"]["profile"] is False
    assert [r.method for r in receiver.requests] == ["GET", "GET"]
    assert receiver.requests[-1].headers["User-Agent"] == "MailChimp.com WebHook Validator"
    assert (await api.get(f"/lists/{LIST_ID}/webhooks")).json()["total_items"] == 1


async def test_member_changes_are_posted_as_php_style_form_events(
    fake: MailchimpFake, clock: FakeClock, receiver: Receiver
) -> None:
    fake.add_webhook(receiver.url)
    member_id = fake.seed("ada@lovelace.io", status="pending", merge_fields={"FNAME": "Ada"})
    fake.edit(member_id, status="subscribed", source="user")
    clock.advance(5)
    fake.edit(member_id, merge_fields={"LNAME": "Lovelace"})
    fake.edit(member_id, email="ada@byron.io")
    fake.edit("ada@byron.io", status="unsubscribed", source="user")
    fake.remove("ada@byron.io")
    await fake.webhooks_idle()
    events = [_form(r.body) for r in receiver.posts]
    assert [e["type"] for e in events] == ["subscribe", "profile", "upemail", "unsubscribe", "unsubscribe"]
    assert all(r.headers["Content-Type"] == "application/x-www-form-urlencoded" for r in receiver.posts)
    subscribe = events[0]
    assert subscribe["fired_at"] == "2026-01-01 09:00:00"
    assert subscribe["data[email]"] == "ada@lovelace.io"
    assert subscribe["data[list_id]"] == LIST_ID
    assert subscribe["data[merges][FNAME]"] == "Ada"
    assert events[1]["data[merges][LNAME]"] == "Lovelace"
    assert events[1]["fired_at"] == "2026-01-01 09:00:05"
    assert (events[2]["data[old_email]"], events[2]["data[new_email]"]) == ("ada@lovelace.io", "ada@byron.io")
    assert [e.get("data[action]") for e in events[3:]] == ["unsub", "delete"]


async def test_a_hard_bounce_is_posted_as_a_cleaned_event(fake: MailchimpFake, receiver: Receiver) -> None:
    fake.add_webhook(receiver.url, events={"cleaned": True})
    member_id = fake.seed("ada@lovelace.io")
    fake.edit(member_id, merge_fields={"FNAME": "Ada"})
    fake.edit(member_id, status="cleaned")
    await fake.webhooks_idle()
    (event,) = [_form(r.body) for r in receiver.posts]
    assert (event["type"], event["data[email]"], event["data[reason]"]) == (
        "cleaned",
        "ada@lovelace.io",
        "hard",
    )


async def test_assigning_webhook_url_registers_a_hook_for_every_event_and_source(
    fake: MailchimpFake, receiver: Receiver
) -> None:
    fake.webhook_url = receiver.url
    (hook,) = fake.audience().webhooks.values()
    assert all(hook.events.values())
    assert all(hook.sources.values())
    fake.seed("ada@lovelace.io", status="pending")
    fake.edit("ada@lovelace.io", status="subscribed", source="user")
    await fake.webhooks_idle()
    assert len(receiver.posts) == 1
    fake.webhook_url = None
    assert fake.audience().webhooks == {}


async def test_webhook_sources_filter_drops_events_from_disabled_sources(
    api: httpx.AsyncClient, fake: MailchimpFake, receiver: Receiver
) -> None:
    fake.add_webhook(receiver.url, sources={"user": True, "admin": True, "api": False})
    created = await api.post(MEMBERS, json={"email_address": "ada@lovelace.io", "status": "subscribed"})
    await api.patch(f"{MEMBERS}/{created.json()['id']}", json={"merge_fields": {"FNAME": "Ada"}})
    await fake.webhooks_idle()
    assert receiver.posts == []
    fake.edit("ada@lovelace.io", merge_fields={"FNAME": "Augusta"}, source="admin")
    await fake.webhooks_idle()
    assert [_form(r.body)["type"] for r in receiver.posts] == ["profile"]


async def test_standalone_server_serves_the_api_until_terminated() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd.testing.fakes.mailchimp",
        "--api-key",
        "k-us9",
        "--list-id",
        "standalone1",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            banner = (await process.stdout.readline()).decode()
        root = banner.split()[2]
        assert root.startswith("http://127.0.0.1:")
        assert root.endswith("/3.0")
        async with httpx.AsyncClient(base_url=root, auth=("u", "k-us9")) as client:
            lists = (await client.get("/lists")).json()
        assert [a["id"] for a in lists["lists"]] == ["standalone1"]
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await process.wait()
    assert process.returncode == 0


async def test_email_change_through_the_api_sends_upemail_and_keeps_the_stable_ids(
    api: httpx.AsyncClient, fake: MailchimpFake, receiver: Receiver
) -> None:
    fake.add_webhook(receiver.url)
    old_id = fake.seed("ada@lovelace.io")
    before = (await api.get(f"{MEMBERS}/{old_id}")).json()
    after = (await api.patch(f"{MEMBERS}/{old_id}", json={"email_address": "Ada@Byron.io"})).json()
    assert after["id"] == subscriber_hash("ada@byron.io") != old_id
    # The subscriber hash follows the address; these ids do not.
    assert (after["unique_email_id"], after["contact_id"], after["web_id"]) == (
        before["unique_email_id"],
        before["contact_id"],
        before["web_id"],
    )
    await fake.webhooks_idle()
    (event,) = [_form(r.body) for r in receiver.posts]
    assert event["type"] == "upemail"
    assert (event["data[old_email]"], event["data[new_email]"]) == ("ada@lovelace.io", "Ada@Byron.io")
    assert event["data[new_id]"] == after["unique_email_id"]
