"""Writing members: create with adoption, partial updates, tag diffs, archive vs permanent delete."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from syncd.connector import AuthError, NotFound, PermanentError, PreconditionFailed, WriteItem
from syncd.connector.http import RetryPolicy
from syncd.testing.fakes import FakeClock
from syncd.testing.fakes.mailchimp import MailchimpFake, subscriber_hash
from syncd_mailchimp import MailchimpConnector

from .conftest import API_KEY, LIST_ID, ConnectorFactory


def _item(key: str, id: str | None = None, **fields: Any) -> WriteItem:
    return WriteItem(key=key, fields=fields, id=id)


def _calls(fake: MailchimpFake, method: str, fragment: str = "") -> int:
    return sum(1 for m, path in fake.requests if m == method and fragment in path)


def _batch_calls(fake: MailchimpFake) -> int:
    """Batch subscribe calls (``POST /lists/{list_id}``)."""
    return sum(1 for m, path in fake.requests if m == "POST" and path == f"/3.0/lists/{LIST_ID}")


def _writes(fake: MailchimpFake) -> int:
    return sum(1 for m, _ in fake.requests if m in ("POST", "PUT", "PATCH", "DELETE"))


async def test_create_without_a_status_adds_a_pending_member_and_sends_one_confirmation(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    (result,) = await connector.create(
        "members", [_item("k1", email_address="Ada@Lovelace.io", merge_fields={"FNAME": "Ada"}, tags=["vip"])]
    )
    assert result.ok
    assert result.record is not None
    assert result.record.id == subscriber_hash("ada@lovelace.io")
    assert result.record.fields["status"] == "pending"
    assert result.record.fields["tags"] == ["vip"]
    assert result.record.version == result.record.fields["last_changed"]
    assert fake.confirmations == ["Ada@Lovelace.io"]


async def test_retried_create_adopts_the_member_and_sends_no_second_confirmation(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    item = _item("k1", email_address="ada@lovelace.io", merge_fields={"FNAME": "Ada"})
    (first,) = await connector.create("members", [item])
    (again,) = await connector.create("members", [item])
    assert again.ok
    assert again.record is not None
    assert first.record is not None
    assert again.record.id == first.record.id
    assert len(fake.audience().members) == 1
    assert fake.confirmations == ["ada@lovelace.io"]
    assert _calls(fake, "PATCH") == 0, "adopting a member that already holds the values writes nothing"


async def test_create_of_an_existing_member_adopts_it_and_writes_the_given_fields(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    existing = fake.seed("ada@lovelace.io", merge_fields={"FNAME": "Old", "LNAME": "Byron"}, tags=["old"])
    clock.advance(5)
    (result,) = await connector.create(
        "members",
        [_item("k1", email_address="ADA@lovelace.io", merge_fields={"FNAME": "Ada"}, tags=["new"])],
    )
    assert result.ok
    assert result.record is not None
    assert result.record.id == existing
    assert result.record.fields["merge_fields"]["FNAME"] == "Ada"
    assert result.record.fields["merge_fields"]["LNAME"] == "Byron"
    assert result.record.fields["tags"] == ["new"]
    stored = fake.member(existing)
    assert stored is not None
    assert stored["email_address"] == "ada@lovelace.io", "adoption keeps the existing address's spelling"
    assert [t["name"] for t in stored["tags"]] == ["new"]
    assert stored["last_changed"] == result.record.version


async def test_create_of_a_permanently_deleted_address_fails_with_forgotten_email(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    fake.seed("ada@lovelace.io")
    fake.remove("ada@lovelace.io", permanent=True)
    (result,) = await connector.create("members", [_item("k1", email_address="ada@lovelace.io")])
    assert isinstance(result.error, PermanentError)
    assert "was permanently deleted and cannot be re-imported" in str(result.error)


async def test_an_invalid_merge_field_fails_only_its_own_item(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    results = await connector.create(
        "members",
        [
            _item("good", email_address="good@lovelace.io"),
            _item("bad", email_address="bad@lovelace.io", merge_fields={"NO_SUCH": "x"}),
            _item("fake", email_address="someone@example.com"),
            _item("also-good", email_address="fine@lovelace.io"),
        ],
    )
    assert [r.key for r in results] == ["good", "bad", "fake", "also-good"]
    assert [r.ok for r in results] == [True, False, False, True]
    assert isinstance(results[1].error, PermanentError)
    assert "NO_SUCH" in str(results[1].error)
    assert "looks fake" in str(results[2].error)
    assert set(fake.audience().members) == {
        subscriber_hash("good@lovelace.io"),
        subscriber_hash("fine@lovelace.io"),
    }


async def test_update_writes_only_the_given_fields_and_skips_values_already_held(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io", merge_fields={"FNAME": "Ada", "LNAME": "Byron"})
    clock.advance(5)
    (result,) = await connector.update(
        "members", [_item("k1", member_id, merge_fields={"LNAME": "Lovelace"})]
    )
    assert result.record is not None
    assert result.record.fields["merge_fields"] == {
        "FNAME": "Ada",
        "LNAME": "Lovelace",
        "ADDRESS": "",
        "PHONE": "",
        "BIRTHDAY": "",
    }
    assert result.record.version == "2026-01-01T09:00:05+00:00"
    clock.advance(5)
    (noop,) = await connector.update("members", [_item("k2", member_id, merge_fields={"LNAME": "Lovelace"})])
    assert noop.record is not None
    assert noop.record.version == result.record.version, "an update that changes nothing must not write"
    assert (_batch_calls(fake), _writes(fake)) == (1, 1)


async def test_clearing_a_merge_field_with_null_sends_an_empty_string(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io", merge_fields={"FNAME": "Ada", "LNAME": "Byron"})
    (result,) = await connector.update("members", [_item("k1", member_id, merge_fields={"LNAME": None})])
    assert result.record is not None
    assert result.record.fields["merge_fields"]["LNAME"] == ""


async def test_tags_are_replaced_as_a_set_and_unchanged_tags_are_not_written_again(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io", tags=["keep", "drop"])
    (result,) = await connector.update("members", [_item("k1", member_id, tags=["keep", "add"])])
    assert result.record is not None
    assert result.record.fields["tags"] == ["add", "keep"]
    stored = fake.member(member_id)
    assert stored is not None
    assert sorted(t["name"] for t in stored["tags"]) == ["add", "keep"]
    assert (_batch_calls(fake), _writes(fake)) == (1, 1), "one batch call, no PATCH, no tags call"
    await connector.update("members", [_item("k2", member_id, tags=["add", "keep"])])
    assert _writes(fake) == 1, "unchanged tags are not written again"


async def test_changing_the_email_moves_the_member_to_the_hash_of_the_new_address(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    old_id = fake.seed("ada@lovelace.io", tags=["a"])
    (result,) = await connector.update(
        "members", [_item("k1", old_id, email_address="ada@byron.io", tags=["a", "b"])]
    )
    assert result.record is not None
    assert result.record.id == subscriber_hash("ada@byron.io")
    assert result.record.replaces == (old_id,), "the result names the id the member had before"
    assert fake.member(old_id) is None
    moved = fake.member("ada@byron.io")
    assert moved is not None
    assert [t["name"] for t in moved["tags"]] == ["a", "b"]


async def test_update_of_a_missing_or_archived_member_reports_not_found(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    archived = fake.seed("gone@lovelace.io")
    fake.remove(archived)
    results = await connector.update(
        "members",
        [
            _item("missing", subscriber_hash("nobody@lovelace.io"), merge_fields={"FNAME": "X"}),
            _item("archived", archived, merge_fields={"FNAME": "X"}),
        ],
    )
    assert [type(r.error) for r in results] == [NotFound, NotFound]
    assert _calls(fake, "PATCH") == 0


async def test_update_based_on_a_stale_version_is_refused(
    fake: MailchimpFake, clock: FakeClock, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io")
    (read,) = await connector.get("members", [member_id])
    clock.advance(5)
    fake.edit(member_id, merge_fields={"FNAME": "Human"})
    item = WriteItem(
        key="k1", fields={"merge_fields": {"FNAME": "Sync"}}, id=member_id, expected_version=read.version
    )
    (result,) = await connector.update("members", [item])
    assert isinstance(result.error, PreconditionFailed)
    stored = fake.member(member_id)
    assert stored is not None
    assert stored["merge_fields"]["FNAME"] == "Human"


async def test_delete_archives_by_default_and_the_member_reads_back_as_a_tombstone(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io")
    (result,) = await connector.delete("members", [_item("k1", member_id)])
    assert result.ok
    assert result.record is not None
    assert result.record.deleted
    stored = fake.member(member_id)
    assert stored is not None
    assert stored["status"] == "archived"
    (again,) = await connector.create(
        "members", [_item("k2", email_address="ada@lovelace.io", status="subscribed")]
    )
    assert again.ok, "an archived member can be added back"


async def test_permanent_delete_mode_erases_the_member_for_good(
    fake: MailchimpFake, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(delete_mode="permanent")
    member_id = fake.seed("ada@lovelace.io")
    (result,) = await connector.delete("members", [_item("k1", member_id)])
    assert result.ok
    assert fake.member(member_id) is None
    assert member_id in fake.audience().forgotten
    assert await connector.get("members", [member_id]) == []


async def test_deleting_a_member_that_is_already_gone_succeeds(connector: MailchimpConnector) -> None:
    (result,) = await connector.delete("members", [_item("k1", subscriber_hash("nobody@lovelace.io"))])
    assert result.ok


async def test_a_write_over_the_concurrency_limit_is_retried_until_it_succeeds(
    fake: MailchimpFake, make_connector: ConnectorFactory
) -> None:
    connector = make_connector(retry=RetryPolicy(attempts=20, base_delay=0.02, max_delay=0.1, jitter=0.0))
    member_id = fake.seed("ada@lovelace.io")
    fake.pause()
    async with httpx.AsyncClient(base_url=fake.url + "/3.0", auth=("other-integration", API_KEY)) as other:
        held = [asyncio.create_task(other.get("/ping")) for _ in range(10)]
        await fake.wait_until(lambda: fake.in_flight == 10)
        write = asyncio.create_task(
            connector.update("members", [_item("k1", member_id, merge_fields={"FNAME": "X"})])
        )
        await fake.wait_until(lambda: fake.throttled >= 1)
        fake.resume()
        (result,) = await write
        await asyncio.gather(*held)
    assert result.ok
    stored = fake.member(member_id)
    assert stored is not None
    assert stored["merge_fields"]["FNAME"] == "X"


@pytest.mark.parametrize("style", ["empty", "403-empty"])
async def test_bodiless_429_or_403_throttling_is_retried(
    fake: MailchimpFake, connector: MailchimpConnector, style: str
) -> None:
    fake.throttle_styles = [style]  # type: ignore[list-item]
    fake.inject("429", times=2)
    (result,) = await connector.create("members", [_item("k1", email_address="ada@lovelace.io")])
    assert result.ok
    assert fake.member("ada@lovelace.io") is not None


async def test_a_rejected_api_key_fails_the_whole_batch(make_connector: ConnectorFactory) -> None:
    connector = make_connector(api_key="wrong-key-us1")
    with pytest.raises(AuthError) as raised:
        await connector.create("members", [_item("k1", email_address="ada@lovelace.io")])
    assert "wrong-key-us1" not in str(raised.value)


async def test_email_change_moves_member_id_and_the_result_replaces_the_old_one(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    old_id = fake.seed("ada@lovelace.io")
    other = fake.seed("grace@hopper.io")
    results = await connector.update(
        "members",
        [
            _item("moved", old_id, email_address="ada@byron.io"),
            _item("stays", other, merge_fields={"FNAME": "Grace"}),
        ],
    )
    assert [(r.record.id, r.record.replaces) for r in results if r.record is not None] == [
        (subscriber_hash("ada@byron.io"), (old_id,)),
        (other, ()),
    ]
    (read,) = await connector.get("members", [subscriber_hash("ada@byron.io")])
    assert read.fields["email_address"] == "ada@byron.io"
    assert await connector.get("members", [old_id]) == []


async def test_a_change_of_case_only_keeps_the_member_id(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io")
    (result,) = await connector.update("members", [_item("k", member_id, email_address="Ada@Lovelace.io")])
    assert result.record is not None
    assert (result.record.id, result.record.replaces) == (member_id, ())
    assert result.record.fields["email_address"] == "Ada@Lovelace.io"


def test_delete_archives_unless_deletes_are_permanent(make_connector: ConnectorFactory) -> None:
    assert make_connector().capabilities.archives
    assert not make_connector(delete_mode="permanent").capabilities.archives
    assert MailchimpConnector.capabilities.archives


async def test_creates_and_updates_go_in_batches_of_500_and_updates_after_a_read_get_nothing(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    n = 1100
    items = [_item(f"c{i}", email_address=f"p{i}@lovelace.io", merge_fields={"FNAME": "A"}) for i in range(n)]
    created = await connector.create("members", items)
    assert all(r.ok for r in created)
    assert len(fake.audience().members) == n
    assert (_batch_calls(fake), _writes(fake), _calls(fake, "GET")) == (3, 3, 0)
    ids = [r.record.id for r in created if r.record is not None]
    await connector.get("members", ids)  # what the engine does right before it updates
    reads = _calls(fake, "GET")
    updates = [_item(f"u{i}", member_id, merge_fields={"FNAME": "B"}) for i, member_id in enumerate(ids)]
    updated = await connector.update("members", updates)
    assert all(
        r.ok and r.record is not None and r.record.fields["merge_fields"]["FNAME"] == "B" for r in updated
    )
    assert (_batch_calls(fake), _writes(fake)) == (6, 6)
    assert _calls(fake, "GET") == reads, "members just read are not read again"


async def test_a_member_without_tags_keeps_its_tags_when_batched_with_members_that_set_theirs(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    fake.seed("ada@lovelace.io", tags=["vip"])
    fake.seed("bob@lovelace.io", tags=["old"])
    results = await connector.create(
        "members",
        [
            _item("a", email_address="ada@lovelace.io", merge_fields={"FNAME": "Ada"}),
            _item("b", email_address="bob@lovelace.io", tags=["new"]),
        ],
    )
    assert [r.ok for r in results] == [True, True]
    ada, bob = fake.member("ada@lovelace.io"), fake.member("bob@lovelace.io")
    assert ada is not None
    assert bob is not None
    assert [t["name"] for t in ada["tags"]] == ["vip"]
    assert [t["name"] for t in bob["tags"]] == ["new"]


async def test_the_same_address_twice_in_one_create_makes_one_member_and_two_results(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    results = await connector.create(
        "members",
        [
            _item("a", email_address="ada@lovelace.io", merge_fields={"FNAME": "Ada"}),
            _item("b", email_address="ADA@lovelace.io", merge_fields={"LNAME": "Lovelace"}),
        ],
    )
    assert [r.ok for r in results] == [True, True]
    assert results[0].record is not None
    assert results[1].record is not None
    assert results[0].record.id == results[1].record.id
    assert len(fake.audience().members) == 1
    assert fake.confirmations == ["ada@lovelace.io"]


async def test_an_update_of_a_member_archived_since_the_read_is_not_found_and_writes_nothing(
    fake: MailchimpFake, connector: MailchimpConnector
) -> None:
    member_id = fake.seed("ada@lovelace.io")
    fake.remove(member_id)
    (result,) = await connector.update("members", [_item("k1", member_id, merge_fields={"FNAME": "X"})])
    assert isinstance(result.error, NotFound)
    assert _writes(fake) == 0


@pytest.mark.parametrize(
    ("fields", "how"),
    [
        # A status in the entry: the upsert adds the member back; it is archived again.
        ({"status": "unsubscribed", "merge_fields": {"FNAME": "Ade"}}, "re-added"),
        # No status: Mailchimp refuses to add a member without one; not a bad value.
        ({"merge_fields": {"FNAME": "Ade"}}, "left the audience"),
    ],
)
async def test_a_member_archived_after_the_read_is_not_found_and_stays_archived_after_a_batched_update(
    fake: MailchimpFake, connector: MailchimpConnector, fields: dict[str, Any], how: str
) -> None:
    # The update goes in a batch subscribe call (an upsert) built from the copy read moments
    # before; a person archives the member in between. The item must come back not found (the
    # engine re-reads and sees the delete), and the member must stay archived.
    member_id = fake.seed("ada@lovelace.io", merge_fields={"FNAME": "Ada"})
    (read,) = await connector.get("members", [member_id])
    assert read.fields["merge_fields"]["FNAME"] == "Ada"
    fake.remove(member_id)
    (result,) = await connector.update("members", [_item("k1", member_id, **fields)])
    assert isinstance(result.error, NotFound), result.error
    assert how in str(result.error)
    member = fake.member(member_id)
    assert member is not None
    assert member["status"] == "archived"
    assert _batch_calls(fake) == 1
    # The next update reads the member afresh (no stale copy kept) and sends nothing.
    (again,) = await connector.update("members", [_item("k1", member_id, **fields)])
    assert isinstance(again.error, NotFound)
    assert _batch_calls(fake) == 1
