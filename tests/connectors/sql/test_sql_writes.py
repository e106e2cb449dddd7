"""Writes: per-item results in one transaction, conditional updates, versions, soft and hard deletes."""

from __future__ import annotations

import re

import pytest
from sql_helpers import AppDb, ConnectorFactory, read_pages, record_ids, stamp, version_stamp

from syncd.connector import NotFound, PermanentError, PreconditionFailed, WriteItem
from syncd_sql import SqlConnector

ISO_MICRO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def item(key: str, record_id: str | None = None, expected: str | None = None, **fields: object) -> WriteItem:
    return WriteItem(key=key, fields=fields, id=record_id, expected_version=expected)


async def test_create_returns_the_row_as_stored_with_generated_key_and_version(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    [result] = await tracked.create("users", [item("k1", email="new@example.com", name="New")])
    assert result.ok
    assert result.key == "k1"
    record = result.record
    assert record is not None
    assert record.fields["email"] == "new@example.com"
    assert record.fields["deleted_at"] is None
    assert version_stamp(record.version) == record.fields["updated_at"]
    # the empty column gets ISO-8601 with microseconds and Z
    assert ISO_MICRO_Z.fullmatch(record.fields["updated_at"])
    assert await tracked.get("users", [record.id]) == [record]
    assert app_db.query("SELECT id, email FROM users") == [{"id": int(record.id), "email": "new@example.com"}]


async def test_one_not_null_violation_fails_only_its_own_item(tracked: SqlConnector, app_db: AppDb) -> None:
    results = await tracked.create(
        "users",
        [item("a", email="a@example.com"), item("b", name="No Email"), item("c", email="c@example.com")],
    )
    assert [result.key for result in results] == ["a", "b", "c"]
    assert [result.ok for result in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, PermanentError)
    assert "NOT NULL constraint failed: users.email" in str(error)
    committed = {row["email"] for row in app_db.query("SELECT email FROM users")}
    assert committed == {"a@example.com", "c@example.com"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"email": "taken@example.com"}, "UNIQUE constraint failed: users.email"),
        ({"email": "x@example.com", "plan": "gold"}, "CHECK constraint failed"),
        ({"email": "x@example.com", "favourite_colour": "red"}, "no column 'favourite_colour'"),
        ({"email": "x@example.com", "name": ["a", "list"]}, "cannot store a list"),
        ({"email": "x@example.com", "name": 2**70}, "does not fit in 64 bits"),
    ],
)
async def test_rejected_item_gets_the_database_message_and_the_others_commit(
    tracked: SqlConnector, app_db: AppDb, bad: dict[str, object], message: str
) -> None:
    app_db.execute("INSERT INTO users (email) VALUES ('taken@example.com')")
    results = await tracked.create(
        "users",
        [item("ok1", email="one@example.com"), WriteItem("bad", bad), item("ok2", email="two@example.com")],
    )
    assert [result.ok for result in results] == [True, False, True]
    assert isinstance(results[1].error, PermanentError)
    assert message in str(results[1].error)
    assert len(app_db.query("SELECT id FROM users")) == 3


async def test_failure_that_rolls_back_the_whole_transaction_still_commits_the_other_items(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.script(
        "CREATE TABLE strict_users (id INTEGER PRIMARY KEY, email TEXT UNIQUE ON CONFLICT ROLLBACK)"
    )
    app_db.execute("INSERT INTO strict_users (email) VALUES ('taken@example.com')")
    connector = connect(table="strict_users")
    results = await connector.create(
        "strict_users",
        [
            item("a", email="a@example.com"),
            item("b", email="taken@example.com"),
            item("c", email="c@example.com"),
        ],
    )
    assert [result.ok for result in results] == [True, False, True]
    assert "UNIQUE" in str(results[1].error)
    emails = sorted(row["email"] for row in app_db.query("SELECT email FROM strict_users"))
    assert emails == ["a@example.com", "c@example.com", "taken@example.com"]


async def test_create_uses_the_item_id_as_key(tracked: SqlConnector) -> None:
    [result] = await tracked.create("users", [item("k", "42", email="x@example.com")])
    assert result.record is not None
    assert result.record.id == "42"


async def test_create_generates_a_uuid_for_a_text_key(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.script("CREATE TABLE members (uid TEXT PRIMARY KEY, email TEXT)")
    [result] = await connect(table="members", primary_key="uid").create(
        "members", [item("k", email="a@x.io")]
    )
    assert result.record is not None
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", result.record.id)


async def test_create_without_key_in_a_table_that_does_not_generate_one_is_refused(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.script("CREATE TABLE legacy (id INT PRIMARY KEY, email TEXT)")  # INT, not INTEGER: no rowid alias
    results = await connect(table="legacy").create(
        "legacy", [item("k", email="a@x.io"), item("j", "9", email="b")]
    )
    assert "does not generate 'id' values" in str(results[0].error)
    assert results[1].record is not None
    assert results[1].record.id == "9"
    assert app_db.query("SELECT id FROM legacy") == [{"id": 9}]


async def test_unicode_values_round_trip_unchanged(tracked: SqlConnector) -> None:
    name = "Zoë 李小龍 🚀 Ñandú e\u0301"
    [result] = await tracked.create("users", [item("k", email="zoë@例え.jp", name=name)])
    assert result.record is not None
    [again] = await tracked.get("users", [result.record.id])
    assert again.fields["name"] == name
    assert again.fields["email"] == "zoë@例え.jp"
    assert [r.id for r in await tracked.find("users", "email", ["ZOË@例え.JP"])] == [result.record.id]


async def test_update_writes_only_the_given_columns_and_moves_the_version(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.execute(
        "INSERT INTO users (id, email, name, plan, updated_at) VALUES (1, 'a@example.com', 'Ann', 'free', ?)",
        [stamp(1)],
    )
    [before] = await tracked.get("users", ["1"])
    [result] = await tracked.update("users", [item("k", "1", name="Anna")])
    assert result.record is not None
    assert result.record.fields["name"] == "Anna"
    assert result.record.fields["plan"] == "free"
    assert result.record.fields["email"] == "a@example.com"
    assert result.record.version != before.version
    assert version_stamp(result.record.version) == result.record.fields["updated_at"]
    assert app_db.query("SELECT name, plan FROM users") == [{"name": "Anna", "plan": "free"}]


async def test_update_keeps_the_column_timestamp_style(tracked: SqlConnector, app_db: AppDb) -> None:
    app_db.execute(
        "INSERT INTO users (id, email, updated_at) VALUES (1, 'a@example.com', '2024-05-01T10:00:00.123+00:00')"
    )
    [result] = await tracked.update("users", [item("k", "1", name="B")])
    assert result.record is not None
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00", version_stamp(result.record.version)
    )


async def test_two_updates_in_the_same_second_give_different_versions(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    # A seconds-precision stamp at or after the clock: the next write must still move it forward.
    app_db.execute(
        "INSERT INTO users (id, email, updated_at) VALUES (1, 'a@example.com', '2999-01-01 00:00:00')"
    )
    [first] = await tracked.update("users", [item("k1", "1", name="One")])
    [second] = await tracked.update("users", [item("k2", "1", name="Two")])
    assert first.record is not None
    assert second.record is not None
    assert version_stamp(first.record.version) == "2999-01-01 00:00:01"
    assert version_stamp(second.record.version) == "2999-01-01 00:00:02"


async def test_epoch_column_is_stamped_in_epoch_seconds(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.script("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT, changed INTEGER)")
    app_db.execute("INSERT INTO events (what, changed) VALUES ('a', 4102444800)")  # 2100-01-01
    connector = connect(table="events", updated_at="changed")
    [result] = await connector.update("events", [item("k", "1", what="b")])
    assert result.record is not None
    assert result.record.fields["changed"] == 4102444801
    [created] = await connector.create("events", [item("c", what="c")])
    assert created.record is not None
    assert isinstance(created.record.fields["changed"], int)


async def test_updated_at_sent_by_the_caller_is_replaced_by_our_stamp(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.execute("INSERT INTO users (id, email, updated_at) VALUES (1, 'a@example.com', ?)", [stamp(1)])
    [result] = await tracked.update("users", [item("k", "1", name="X", updated_at="2000-01-01 00:00:00")])
    assert result.record is not None
    assert version_stamp(result.record.version) > stamp(1)


async def test_update_that_changes_nothing_keeps_the_version(tracked: SqlConnector, app_db: AppDb) -> None:
    app_db.execute(
        "INSERT INTO users (id, email, name, updated_at) VALUES (1, 'a@example.com', 'Ann', ?)", [stamp(1)]
    )
    [before] = await tracked.get("users", ["1"])
    [result] = await tracked.update("users", [item("k", "1", expected=before.version, name="Ann")])
    assert result.record is not None
    assert result.record.version == before.version
    assert version_stamp(result.record.version) == stamp(1)


async def test_conditional_update_is_refused_when_the_row_changed_since_it_was_read(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.execute(
        "INSERT INTO users (id, email, name, updated_at) VALUES (1, 'a@example.com', 'Ann', ?)", [stamp(1)]
    )
    [seen] = await tracked.get("users", ["1"])
    app_db.execute("UPDATE users SET name = 'Edited by a human', updated_at = ? WHERE id = 1", [stamp(2)])
    [result] = await tracked.update("users", [item("k", "1", expected=seen.version, name="Ours")])
    assert isinstance(result.error, PreconditionFailed)
    assert isinstance(result.error.detail, dict)
    [now] = await tracked.get("users", ["1"])
    assert result.error.detail["current_version"] == now.version
    assert version_stamp(now.version) == stamp(2)
    assert app_db.query("SELECT name FROM users") == [{"name": "Edited by a human"}]


async def test_conditional_update_is_refused_after_an_edit_in_the_same_second_as_our_read(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.execute(
        "INSERT INTO users (id, email, name, updated_at) VALUES (1, 'a@example.com', 'Ann', ?)", [stamp(1)]
    )
    [seen] = await tracked.get("users", ["1"])
    # The product's second-resolution clock has not moved: updated_at stays the same.
    app_db.execute("UPDATE users SET name = 'Edited by a human', updated_at = ? WHERE id = 1", [stamp(1)])
    [result] = await tracked.update("users", [item("k", "1", expected=seen.version, name="Ours")])
    assert isinstance(result.error, PreconditionFailed)
    assert app_db.query("SELECT name FROM users") == [{"name": "Edited by a human"}]


async def test_conditional_update_applies_when_the_version_matches(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.execute("INSERT INTO users (id, email, updated_at) VALUES (1, 'a@example.com', ?)", [stamp(1)])
    [seen] = await tracked.get("users", ["1"])
    [result] = await tracked.update("users", [item("k", "1", expected=seen.version, name="Ours")])
    assert result.ok
    assert app_db.query("SELECT name FROM users") == [{"name": "Ours"}]


async def test_conditional_update_uses_the_content_hash_without_updated_at(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.execute("INSERT INTO users (id, email, name) VALUES (1, 'a@example.com', 'Ann')")
    connector = connect()
    [seen] = await connector.get("users", ["1"])
    app_db.execute("UPDATE users SET plan = 'pro' WHERE id = 1")
    [refused] = await connector.update("users", [item("k", "1", expected=seen.version, name="Ours")])
    assert isinstance(refused.error, PreconditionFailed)
    [fresh] = await connector.get("users", ["1"])
    [applied] = await connector.update("users", [item("k", "1", expected=fresh.version, name="Ours")])
    assert applied.record is not None
    assert applied.record.version not in (seen.version, fresh.version)
    assert applied.record.fields["plan"] == "pro"


async def test_update_of_a_missing_or_soft_deleted_row_is_not_found(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(2)
    app_db.execute("UPDATE users SET deleted_at = ? WHERE id = 2", [stamp(40)])
    results = await tracked.update(
        "users",
        [
            item("a", "404", name="x"),
            item("b", "2", name="x"),
            item("c", "abc", name="x"),
            item("d", "1", name="y"),
        ],
    )
    assert [type(result.error) for result in results] == [NotFound, NotFound, NotFound, type(None)]


async def test_update_cannot_change_the_primary_key(tracked: SqlConnector, app_db: AppDb) -> None:
    app_db.add_users(1)
    [moved, same] = await tracked.update("users", [item("a", "1", id=2), item("b", "1", id="1", name="Same")])
    assert "cannot change the primary key" in str(moved.error)
    assert same.ok
    assert app_db.query("SELECT id, name FROM users") == [{"id": 1, "name": "Same"}]


async def test_update_without_an_id_is_a_permanent_error(tracked: SqlConnector) -> None:
    [result] = await tracked.update("users", [item("a", None, name="x")])
    assert isinstance(result.error, PermanentError)
    assert not isinstance(result.error, NotFound)


async def test_soft_delete_sets_deleted_at_and_reads_back_as_a_tombstone(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(3)
    cursor = (await read_pages(tracked, None))[-1].cursor
    [before] = await tracked.get("users", ["2"])
    [result] = await tracked.delete("users", [item("d", "2")])
    assert result.record is not None
    assert result.record.deleted
    assert result.record.fields["deleted_at"] is not None
    assert result.record.version != before.version
    assert version_stamp(result.record.version) > stamp(2)
    assert [row["id"] for row in app_db.query("SELECT id FROM users WHERE deleted_at IS NOT NULL")] == [2]
    assert record_ids(await read_pages(tracked, None)) == ["1", "3"]
    changes = [r for page in await read_pages(tracked, cursor) for r in page.records if r.id == "2"]
    assert [r.deleted for r in changes] == [True]
    [again] = await tracked.delete("users", [item("d", "2")])
    assert isinstance(again.error, NotFound)


async def test_hard_delete_without_deleted_at_removes_the_row(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(2)
    connector = connect(updated_at="updated_at")
    [gone, missing] = await connector.delete("users", [item("d", "1"), item("e", "99")])
    assert gone.record is not None
    assert gone.record.deleted
    assert gone.record.fields["email"] == "user1@example.com"
    assert isinstance(missing.error, NotFound)
    assert app_db.query("SELECT id FROM users") == [{"id": 2}]


async def test_conditional_delete_is_refused_when_the_row_changed(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(1)
    app_db.execute("UPDATE users SET name = 'Edited', updated_at = ? WHERE id = 1", [stamp(0, 5)])
    [result] = await tracked.delete("users", [item("d", "1", expected=stamp(1))])
    assert isinstance(result.error, PreconditionFailed)
    assert app_db.query("SELECT deleted_at FROM users") == [{"deleted_at": None}]


async def test_large_write_is_split_into_batches_with_results_in_order(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    connector = connect(batch_size=2)
    items = [item(f"k{i}", email=f"u{i}@example.com") for i in range(5)]
    items.insert(3, item("bad", name="missing email"))
    results = await connector.create("users", items)
    assert [result.key for result in results] == ["k0", "k1", "k2", "bad", "k3", "k4"]
    assert [result.ok for result in results] == [True, True, True, False, True, True]
    assert len(app_db.query("SELECT id FROM users")) == 5


async def test_column_added_by_the_app_after_startup_can_be_written(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    await tracked.check()
    app_db.execute("ALTER TABLE users ADD COLUMN phone TEXT")
    [result] = await tracked.create("users", [item("k", email="a@example.com", phone="+4930123")])
    assert result.record is not None
    assert result.record.fields["phone"] == "+4930123"


async def test_managed_table_gains_columns_for_new_fields(connect: ConnectorFactory, app_db: AppDb) -> None:
    connector = connect(table="contacts", create_table=True, updated_at="updated_at")
    [result] = await connector.create("contacts", [item("k", email="a@example.com", first_name="Ann")])
    assert result.record is not None
    assert result.record.fields["first_name"] == "Ann"
    columns = [row["name"] for row in app_db.query("SELECT name FROM pragma_table_info('contacts')")]
    assert columns == ["id", "updated_at", "email", "first_name"]


async def test_lookup_on_a_managed_table_before_its_first_write_finds_nothing(
    connect: ConnectorFactory,
) -> None:
    connector = connect(table="contacts", create_table=True, updated_at="updated_at")
    assert await connector.find("contacts", "email", ["a@example.com"]) == []
    [result] = await connector.create("contacts", [item("k", email="a@example.com")])
    assert result.ok
    assert [r.id for r in await connector.find("contacts", "email", [" A@example.com"])] == [result.record.id]  # type: ignore[union-attr]


async def test_unmanaged_table_never_gains_columns(tracked: SqlConnector, app_db: AppDb) -> None:
    [result] = await tracked.create("users", [item("k", email="a@example.com", first_name="Ann")])
    assert "no column 'first_name'" in str(result.error)
    columns = [row["name"] for row in app_db.query("SELECT name FROM pragma_table_info('users')")]
    assert "first_name" not in columns


async def test_values_that_look_like_sql_are_stored_verbatim(tracked: SqlConnector, app_db: AppDb) -> None:
    evil = "x'); DROP TABLE users; --"
    [result] = await tracked.create("users", [item("k", email="a@example.com", name=evil)])
    assert result.ok
    assert app_db.query("SELECT name FROM users") == [{"name": evil}]


async def test_foreign_key_violation_fails_only_its_item(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.script(
        "CREATE TABLE teams (id INTEGER PRIMARY KEY);"
        "CREATE TABLE players (id INTEGER PRIMARY KEY, team_id INTEGER REFERENCES teams (id));"
        "INSERT INTO teams VALUES (1);"
    )
    results = await connect(table="players").create("players", [item("a", team_id=1), item("b", team_id=99)])
    assert results[0].ok
    assert "FOREIGN KEY constraint failed" in str(results[1].error)
    assert app_db.query("SELECT team_id FROM players") == [{"team_id": 1}]
