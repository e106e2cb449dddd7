"""Writing: bulk jobs with per-item errors, TooManyJobs, the primary-email fix, erasure, read-only fields."""

from __future__ import annotations

import pytest

from syncd.connector import NotFound, PermanentError, WriteItem
from syncd.testing.fakes.zendesk import ZendeskFake
from syncd_zendesk import TooManyJobs, ZendeskConnector

from .conftest import ConnectorFactory, VirtualTime


def _item(key: str, **fields: object) -> WriteItem:
    return WriteItem(key=key, fields=fields)


async def test_bulk_create_with_one_bad_item_fails_that_item_alone(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    items = [
        _item("a", name="Ada", email="ada@lovelace.io", user_fields={"plan": "gold"}),
        _item("bad", name="Broken", email="not-an-email"),
        _item("c", name="Charles", email="charles@lovelace.io"),
    ]
    results = await connector.create("users", items)
    assert [r.key for r in results] == ["a", "bad", "c"]
    assert isinstance(results[1].error, PermanentError)
    assert "not-an-email" not in str(results[1].error), "error messages must not carry field values"
    for result in (results[0], results[2]):
        assert result.ok, result.error
        assert result.record is not None
        assert fake.user(result.record.id) is not None
    assert results[0].record is not None
    assert results[0].record.fields["user_fields"]["plan"] == "gold"
    (job,) = fake.jobs.values()
    assert job.status == "completed"
    polls = [h for h in fake.hits if h.path.startswith("/api/v2/job_statuses/")]
    assert len(polls) >= 2, "the job completes only after it was polled through queued and working"


async def test_bulk_update_reports_a_missing_user_and_updates_the_others(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    first = fake.seed_user(name="Ada", email="ada@lovelace.io")
    second = fake.seed_user(name="Grace", email="grace@lovelace.io")
    items = [
        WriteItem(key="1", fields={"notes": "one"}, id=first),
        WriteItem(key="ghost", fields={"notes": "two"}, id="999999"),
        WriteItem(key="2", fields={"user_fields": {"seats": 3}}, id=second),
    ]
    results = await connector.update("users", items)
    assert isinstance(results[1].error, NotFound)
    assert results[0].ok
    assert results[2].ok
    assert fake.user(first)["notes"] == "one"  # type: ignore[index]
    assert fake.user(second)["user_fields"]["seats"] == 3  # type: ignore[index]


async def test_too_many_jobs_backs_off_and_retries_until_a_slot_frees(
    fake: ZendeskFake, connector: ZendeskConnector, vtime: VirtualTime
) -> None:
    fake.hold_jobs(fake.max_jobs)

    def other_jobs_finish(_: float) -> None:
        if fake.refused_jobs >= 3:
            fake.release_jobs()

    vtime.on_sleep = other_jobs_finish
    items = [_item(str(i), name=f"P{i}", email=f"p{i}@lovelace.io") for i in range(3)]
    results = await connector.create("users", items)
    assert all(r.ok for r in results), [r.error for r in results]
    assert fake.refused_jobs >= 3
    assert len([u for u in fake.users.values() if u.role == "end-user"]) == 3


async def test_too_many_jobs_past_the_job_timeout_fails_the_batch_as_transient(
    fake: ZendeskFake, make_connector: ConnectorFactory
) -> None:
    fake.hold_jobs(fake.max_jobs)
    connector = make_connector(job_timeout_seconds=30)
    items = [_item(str(i), name=f"P{i}", email=f"p{i}@lovelace.io") for i in range(2)]
    with pytest.raises(TooManyJobs):
        await connector.create("users", items)
    assert not [u for u in fake.users.values() if u.role == "end-user"]


async def test_create_adopts_an_existing_user_with_the_same_email_instead_of_duplicating(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    existing = fake.seed_user(name="Ada", email="ada@lovelace.io")
    (result,) = await connector.create("users", [_item("k", name="Ada Lovelace", email="ADA@lovelace.io")])
    assert result.record is not None
    assert result.record.id == existing
    assert len([u for u in fake.users.values() if u.role == "end-user"]) == 1


async def test_the_fake_adds_a_secondary_identity_when_an_update_sends_a_new_email(fake: ZendeskFake) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    fake.edit_user(uid, email="ada@newmail.io")
    assert fake.user(uid)["email"] == "ada@lovelace.io"  # type: ignore[index]
    assert [(i["value"], i["primary"]) for i in fake.identities(uid)] == [
        ("ada@lovelace.io", True),
        ("ada@newmail.io", False),
    ]


async def test_an_email_change_replaces_the_primary_email_and_leaves_no_secondary_behind(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    (result,) = await connector.update(
        "users", [WriteItem(key="k", fields={"email": "ada@newmail.io"}, id=uid)]
    )
    assert result.ok, result.error
    assert result.record is not None
    assert result.record.fields["email"] == "ada@newmail.io"
    assert [(i["value"], i["primary"]) for i in fake.identities(uid)] == [("ada@newmail.io", True)]
    assert await connector.find("users", "email", ["ada@lovelace.io"]) == []


async def test_an_email_change_in_a_bulk_update_also_changes_the_primary(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    a = fake.seed_user(name="Ada", email="ada@lovelace.io")
    b = fake.seed_user(name="Grace", email="grace@lovelace.io")
    items = [
        WriteItem(key="a", fields={"email": "ada@newmail.io", "notes": "moved"}, id=a),
        WriteItem(key="b", fields={"notes": "stayed"}, id=b),
    ]
    results = await connector.update("users", items)
    assert all(r.ok for r in results)
    assert [i["value"] for i in fake.identities(a)] == ["ada@newmail.io"]
    assert fake.user(a)["notes"] == "moved"  # type: ignore[index]


async def test_an_email_already_used_by_someone_else_is_a_per_item_error(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    a = fake.seed_user(name="Ada", email="ada@lovelace.io")
    fake.seed_user(name="Grace", email="grace@lovelace.io")
    (result,) = await connector.update(
        "users", [WriteItem(key="k", fields={"email": "grace@lovelace.io"}, id=a)]
    )
    assert isinstance(result.error, PermanentError)
    assert fake.user(a)["email"] == "ada@lovelace.io"  # type: ignore[index]


async def test_writing_the_derived_organization_name_is_refused_for_that_item_only(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    a = fake.seed_user(name="Ada", email="ada@lovelace.io")
    b = fake.seed_user(name="Grace", email="grace@lovelace.io")
    results = await connector.update(
        "users",
        [
            WriteItem(key="a", fields={"organization": {"name": "Acme"}}, id=a),
            WriteItem(key="b", fields={"notes": "fine"}, id=b),
        ],
    )
    assert isinstance(results[0].error, PermanentError)
    assert "read-only" in str(results[0].error)
    assert results[1].ok


async def test_soft_delete_keeps_the_user_among_deleted_users(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    (result,) = await connector.delete("users", [WriteItem(key="k", fields={}, id=uid)])
    assert result.record is not None
    assert result.record.deleted
    user = fake.users[int(uid)]
    assert not user.active
    assert not user.erased
    assert user.email == "ada@lovelace.io"


async def test_erase_deletes_a_user_permanently(fake: ZendeskFake, connector: ZendeskConnector) -> None:
    uid = fake.seed_user(
        name="Ada", email="ada@lovelace.io", phone="+442079460000", user_fields={"plan": "gold"}
    )
    results = await connector.erase(
        "users", [WriteItem(key=f"erase:{i}", id=i, fields={}) for i in (uid, "424242")]
    )
    assert results[0].ok, results[0].error
    assert results[0].record is not None
    assert results[0].record.deleted
    assert isinstance(results[1].error, NotFound)
    husk = fake.users[int(uid)]
    assert husk.erased
    gone = fake.user_json(husk)
    assert (gone["name"], gone["email"], gone["phone"]) == ("Permanently Deleted User", None, None)
    assert gone["user_fields"]["plan"] is None
    assert await connector.find("users", "email", ["ada@lovelace.io"]) == []
    paths = [h.path for h in fake.hits if h.method == "DELETE"]
    assert paths.index(f"/api/v2/users/{uid}") < paths.index(f"/api/v2/deleted_users/{uid}")


async def test_erase_of_an_already_soft_deleted_user_completes_the_deletion(
    fake: ZendeskFake, connector: ZendeskConnector
) -> None:
    uid = fake.seed_user(name="Ada", email="ada@lovelace.io")
    fake.delete_user(uid)
    (result,) = await connector.erase("users", [WriteItem(key="erase", id=uid, fields={})])
    assert result.ok, result.error
    assert fake.users[int(uid)].erased
