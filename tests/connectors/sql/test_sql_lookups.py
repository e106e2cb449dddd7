"""get and find: current rows by id, and natural-key lookups that must not miss a spelling variant."""

from __future__ import annotations

from sql_helpers import AppDb, ConnectorFactory, stamp, version_stamp

from syncd_sql import SqlConnector


async def test_get_returns_rows_in_the_order_asked_and_leaves_missing_ones_out(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(5)
    records = await tracked.get("users", ["4", "404", "2", "4", "not-a-number"])
    assert [record.id for record in records] == ["4", "2"]
    assert records[0].fields["email"] == "user4@example.com"
    assert version_stamp(records[0].version) == stamp(4)


async def test_get_reports_a_soft_deleted_row_as_a_tombstone(tracked: SqlConnector, app_db: AppDb) -> None:
    app_db.add_users(2)
    app_db.execute("UPDATE users SET deleted_at = ? WHERE id = 2", [stamp(30)])
    records = await tracked.get("users", ["1", "2"])
    assert [(record.id, record.deleted) for record in records] == [("1", False), ("2", True)]


async def test_get_of_more_ids_than_one_statement_binds(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.add_users(1500)
    records = await connect().get("users", [str(i) for i in range(1500, 0, -1)])
    assert [record.id for record in records] == [str(i) for i in range(1500, 0, -1)]


async def test_get_with_no_ids_is_empty(tracked: SqlConnector) -> None:
    assert await tracked.get("users", []) == []


async def test_get_by_text_key_matches_exactly(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.script("CREATE TABLE members (uid TEXT PRIMARY KEY, email TEXT)")
    app_db.execute("INSERT INTO members VALUES ('abc', 'a@example.com'), ('007', 'b@example.com')")
    records = await connect(table="members", primary_key="uid").get("members", ["007", "7", "ABC", "abc"])
    assert [record.id for record in records] == ["007", "abc"]


async def test_find_ignores_case_and_surrounding_spaces_on_both_sides(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.execute("INSERT INTO users (id, email) VALUES (1, '  Ann.Lee@Example.COM ')")
    app_db.execute("INSERT INTO users (id, email) VALUES (2, 'bob@example.com')")
    found = await connect().find("users", "email", ["ann.lee@example.com\t", "nobody@example.com"])
    assert [record.id for record in found] == ["1"]
    assert found[0].fields["email"] == "  Ann.Lee@Example.COM "


async def test_find_folds_non_ascii_letters_that_sqlite_lower_does_not(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.execute("INSERT INTO users (id, email) VALUES (1, 'ÉLODIE@ÉCOLE.FR')")
    app_db.execute("INSERT INTO users (id, email) VALUES (2, 'STRASSE@example.de')")
    connector = connect()
    assert [r.id for r in await connector.find("users", "email", ["élodie@école.fr"])] == ["1"]
    assert [r.id for r in await connector.find("users", "email", ["straße@example.de"])] == ["2"]


async def test_find_matches_composed_and_decomposed_accents(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.execute("INSERT INTO users (id, email) VALUES (1, ?)", ["jose\u0301@example.com"])
    found = await connect().find("users", "email", ["JOS\u00c9@example.com"])
    assert [record.id for record in found] == ["1"]


async def test_find_never_links_to_a_soft_deleted_row(tracked: SqlConnector, app_db: AppDb) -> None:
    app_db.add_users(2)
    app_db.execute("UPDATE users SET deleted_at = ? WHERE id = 1", [stamp(50)])
    found = await tracked.find("users", "email", ["user1@example.com", "user2@example.com"])
    assert [record.id for record in found] == ["2"]


async def test_find_with_blank_values_matches_nothing(connect: ConnectorFactory, app_db: AppDb) -> None:
    app_db.execute("INSERT INTO users (id, email, name) VALUES (1, 'a@example.com', '')")
    app_db.execute("INSERT INTO users (id, email, name) VALUES (2, 'b@example.com', '   ')")
    assert await connect().find("users", "name", ["", "  "]) == []


async def test_find_returns_every_row_sharing_a_key_so_duplicates_can_be_reported(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.executemany(
        "INSERT INTO users (id, email, name) VALUES (?, ?, ?)",
        [(1, "a@example.com", "Sam"), (2, "b@example.com", "sam "), (3, "c@example.com", "Max")],
    )
    found = await connect().find("users", "name", ["SAM"])
    assert [record.id for record in found] == ["1", "2"]


async def test_find_with_many_values_is_chunked_and_returns_each_row_once(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.add_users(1200)
    values = [f"USER{i}@EXAMPLE.COM" for i in range(1, 1201)] + ["user5@example.com"]
    found = await connect().find("users", "email", values)
    assert sorted(int(record.id) for record in found) == list(range(1, 1201))


async def test_find_on_a_numeric_column_compares_its_text_form(
    connect: ConnectorFactory, app_db: AppDb
) -> None:
    app_db.script("CREATE TABLE staff (id INTEGER PRIMARY KEY, badge INTEGER)")
    app_db.execute("INSERT INTO staff (badge) VALUES (4711), (42)")
    found = await connect(table="staff").find("staff", "badge", [" 4711 "])
    assert [record.fields["badge"] for record in found] == [4711]


async def test_find_of_more_values_than_one_statement_binds_misses_none_and_skips_soft_deleted(
    tracked: SqlConnector, app_db: AppDb
) -> None:
    app_db.add_users(1200)
    app_db.execute("UPDATE users SET deleted_at = ? WHERE id = 700", [stamp(30)])
    wanted = [f" USER{i}@example.com" for i in range(1200, 0, -1)]
    found = await tracked.find("users", "email", [*wanted, "nobody@example.com"])
    ids = [record.id for record in found]
    assert len(ids) == len(set(ids)) == 1199
    assert set(ids) == {str(i) for i in range(1, 1201)} - {"700"}
