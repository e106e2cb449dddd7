"""Black-box: trust defects of two-way sync between two SQLite apps, through the ``syncd`` command.

Each test drives ``syncd sync --once`` as a subprocess, edits the apps' databases the way the apps
(or their people, triggers and nightly jobs) would, and checks the outcome in the databases, in
``syncd show`` / ``syncd conflicts list`` and in the state store's change log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .sqlworld import SqlWorld, mapping, stamp

pytestmark = pytest.mark.slow

NEWEST_NAME = {"name": 'conflict = { policy = "newest" }'}


def _bystanders(world: SqlWorld, n: int = 4) -> None:
    """People in both apps that nobody touches (they keep delete shares small)."""
    for i in range(n):
        for app in ("a", "b"):
            world.insert(app, email=f"bystander{i}@example.com", name=f"By{i}")


def _writes_of(world: SqlWorld, run_id: int, field: str) -> list[dict[str, Any]]:
    """The change-log entries of writes syncd made to ``field`` in run ``run_id``."""
    return world.state(
        "SELECT * FROM changelog WHERE run_id = ? AND field = ? AND reason LIKE 'written to %'",
        (run_id, field),
    )


# -- 1. a decided conflict reaches the losing app ---------------------------------------------------


def test_conflict_decided_by_newest_is_written_to_the_losing_app(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping(field_options=NEWEST_NAME))
    world.insert("a", email="ada@example.com", name="Ada")
    world.insert("b", email="ada@example.com", name="Ada")
    world.sync()
    world.update("b", "ada@example.com", at=stamp(-2), name="B-older")
    world.update("a", "ada@example.com", at=stamp(-1), name="A-newer")

    for _ in range(2):
        world.sync()
        if world.row("b", "ada@example.com")["name"] == "A-newer":
            break
    assert (world.row("a", "ada@example.com")["name"], world.row("b", "ada@example.com")["name"]) == (
        "A-newer",
        "A-newer",
    )
    lost = [c for c in world.show("ada@example.com")["changes"] if c["reason"].startswith("conflict lost")]
    assert [(c["app"], c["new"]) for c in lost] == [("b", "B-older")]
    assert world.sync()["writes"] == 0


def test_full_sync_repairs_a_losing_app_that_still_holds_its_older_value(tmp_path: Path) -> None:
    """The state says b holds the decided value, but b still holds its older edit (a lost write)."""
    world = SqlWorld(tmp_path, mapping(field_options=NEWEST_NAME))
    world.insert("a", email="ada@example.com", name="Ada")
    world.insert("b", email="ada@example.com", name="Ada")
    world.sync()
    older, newer = stamp(-2), stamp(-1)
    world.update("b", "ada@example.com", at=older, name="B-older")
    world.update("a", "ada@example.com", at=newer, name="A-newer")
    world.sync()
    # The divergence: b's row is back at its own older edit, with its honest (older) stamp.
    world.update("b", "ada@example.com", at=older, name="B-older")

    world.sync("--full")
    world.sync()
    assert (world.row("a", "ada@example.com")["name"], world.row("b", "ada@example.com")["name"]) == (
        "A-newer",
        "A-newer",
    ), "a stale value older than the decided conflict overrode it"
    assert world.sync()["writes"] == 0


# -- 2. an app that rewrites what syncd wrote (automation inside the write) -------------------------

PROMOTE = """
CREATE TRIGGER promote_on_update AFTER UPDATE OF lifecycle ON b WHEN NEW.lifecycle = 'lead'
BEGIN UPDATE b SET lifecycle = 'mql' WHERE id = NEW.id; END;
CREATE TRIGGER promote_on_insert AFTER INSERT ON b WHEN NEW.lifecycle = 'lead'
BEGIN UPDATE b SET lifecycle = 'mql' WHERE id = NEW.id; END;
"""


def test_value_rewritten_by_the_app_inside_the_write_converges_without_a_loop(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping(fields=("email", "name", "lifecycle")))
    world.executescript("b", PROMOTE)
    world.insert("a", email="ada@example.com", name="Ada", lifecycle="subscriber")
    world.insert("b", email="ada@example.com", name="Ada", lifecycle="subscriber")
    world.insert("a", email="new@example.com", name="New", lifecycle="subscriber")
    world.sync()
    world.update("a", "ada@example.com", lifecycle="lead")
    world.update("a", "new@example.com", lifecycle="lead")
    world.insert("a", email="fresh@example.com", name="Fresh", lifecycle="lead")

    for _ in range(4):
        if world.sync()["writes"] == 0:
            break
    for email in ("ada@example.com", "new@example.com", "fresh@example.com"):
        held = (world.row("a", email)["lifecycle"], world.row("b", email)["lifecycle"])
        assert held == ("mql", "mql"), f"{email}: a and b hold {held} after quiescence"
        from_b = [c for c in world.show(email)["changes"] if c["app"] == "b" and c["new"] == "mql"]
        assert from_b, f"{email}: the change log does not show b's rewrite to 'mql'"
    assert world.sync()["writes"] == 0


# -- 3. two apps that normalise differently in a later job ------------------------------------------


def test_ping_pong_between_apps_normalising_differently_is_parked_with_a_transform_hint(
    tmp_path: Path,
) -> None:
    world = SqlWorld(tmp_path, mapping())
    world.insert("a", email="ada@example.com", name="Ada", city="Paris")
    world.insert("b", email="ada@example.com", name="Ada", city="Paris")
    world.sync()

    def jobs() -> None:
        # Each app's nightly job normalises the column its own way (and stamps the rows it changes).
        world.execute(
            "a", "UPDATE a SET city = upper(city), updated_at = ? WHERE city != upper(city)", (stamp(),)
        )
        world.execute(
            "b", "UPDATE b SET city = lower(city), updated_at = ? WHERE city != lower(city)", (stamp(),)
        )

    quiet_at = None
    for cycle in range(8):
        jobs()
        stats = world.sync()
        if not _writes_of(world, stats["run_id"], "city"):
            quiet_at = cycle
            break
    assert quiet_at is not None, "syncd still writes city back and forth after 8 cycles"
    jobs()
    stats = world.sync()
    assert _writes_of(world, stats["run_id"], "city") == [], "a further cycle wrote city again"
    parked = [c for c in world.conflicts() if c["field"] == "city"]
    assert len(parked) == 1, f"no open conflict explains the city ping-pong: {world.conflicts()}"
    conflict = parked[0]
    sides = {(c["app"], c["value"]) for c in conflict["candidates"]}
    assert {app for app, _ in sides} >= {"a", "b"}
    assert {value for _, value in sides} >= {"PARIS", "paris"}
    assert "transform" in json.dumps(conflict).lower(), (
        f"the conflict names no transform to declare: {conflict}"
    )


# -- 4. scope that flaps when the filter's field comes from the other app ---------------------------

SCOPED = mapping(
    fields=("email", "name"),
    b_options='[[apps.b.filter]]\nfield = "lifecycle"\nop = "not_in"\nvalue = ["other"]\n',
    extra='[fields.lifecycle.apps.a]\npath = "lifecycle"\ndirection = "in"\n',
)


def test_person_out_of_scope_in_one_app_does_not_flap_between_linked_and_unlinked(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, SCOPED)
    world.insert("a", email="vendor@example.com", name="Vendor", lifecycle="other")
    world.insert("b", email="vendor@example.com", name="Vendor")
    _bystanders(world)
    world.sync()
    after_first = world.last_change_id()
    conflicts_before = world.state("SELECT count(*) AS n FROM conflicts")[0]["n"]

    for _ in range(3):
        assert world.sync()["writes"] == 0
    churn = [
        (c["app"], c["reason"])
        for c in world.changelog(after_id=after_first)
        if c["reason"].startswith("linked existing") or "left the scope" in c["reason"]
    ]
    assert churn == [], f"link/unlink churn in quiet cycles: {churn}"
    assert world.state("SELECT count(*) AS n FROM conflicts")[0]["n"] == conflicts_before

    world.update("a", "vendor@example.com", lifecycle="lead")
    world.sync()
    assert len(world.rows("b", "lower(email) = 'vendor@example.com'")) == 1, "duplicated in b"
    links = {link["app"] for link in world.show("vendor@example.com")["links"]}
    assert links == {"a", "b"}
    assert world.sync()["writes"] == 0


# -- 5. never a record with an empty natural key ----------------------------------------------------


def _empty_keys(world: SqlWorld, app: str) -> list[dict[str, Any]]:
    return world.rows(app, "email IS NULL OR trim(email) = ''")


def test_mapping_with_a_misspelt_key_column_creates_no_record_with_an_empty_key(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping(key_column_a="emial_address"))
    for i in range(3):
        world.insert("a", email=f"p{i}@example.com", name=f"P{i}")
    proc = world.syncd("sync", "--once", "--json", check=False)
    if proc.returncode == 2:
        assert "emial_address" in proc.stderr + proc.stdout, proc.stderr
    assert _empty_keys(world, "b") == [], "syncd created rows with an empty email in b"


def test_rows_with_an_empty_key_are_refused_and_the_refusal_is_reported(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping())
    world.insert("a", email="ok@example.com", name="Ok")
    world.insert("a", email=None, name="No email")
    world.insert("a", email="   ", name="Blank email")
    stats = world.sync()
    assert _empty_keys(world, "b") == [], "syncd created rows with an empty email in b"
    assert [r["email"] for r in world.rows("b")] == ["ok@example.com"]
    refused = sum(app.get("refused", 0) for app in stats["apps"].values())
    assert refused == 2, f"the 2 refused creates are not reported in the per-app stats: {stats['apps']}"
    world.sync()
    assert _empty_keys(world, "b") == [], "a later cycle created the refused rows after all"


# -- 6. deleted and recreated with the same key --------------------------------------------------


def test_row_deleted_and_recreated_with_the_same_email_is_relinked(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping())
    _bystanders(world)
    world.insert("a", email="ada@example.com", name="Ada")
    world.sync()
    world.execute("a", "DELETE FROM a WHERE email = 'ada@example.com'")
    # A new primary key (SQLite would reuse the deleted rowid if left to choose).
    new_id = world.insert("a", at=stamp(), id=100, email="ada@example.com", name="Ada")

    world.sync()
    identity = [c for c in world.conflicts() if c["field"] == "@identity"]
    assert identity == [], f"recreated row left an identity conflict: {identity}"
    links = {link["app"]: link["remote_id"] for link in world.show("ada@example.com")["links"]}
    assert links.get("a") == str(new_id), f"not relinked to the new row {new_id}: {links}"
    assert len(world.rows("b", "email = 'ada@example.com'")) == 1
    world.update("a", "ada@example.com", name="Ada Lovelace")
    world.sync()
    assert world.row("b", "ada@example.com")["name"] == "Ada Lovelace"


def test_identity_conflict_whose_old_record_disappears_closes_at_the_next_full_sync(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping())
    _bystanders(world)
    old_id = world.insert("a", email="ada@example.com", name="Ada")
    world.sync()
    new_id = world.insert("a", at=stamp(), email="ADA@example.com", name="Ada")
    world.sync()
    assert [c["field"] for c in world.conflicts()] == ["@identity"], "setup: no identity conflict opened"
    world.execute("a", "DELETE FROM a WHERE id = ?", (old_id,))

    world.sync("--full")
    assert world.conflicts() == [], "the identity conflict stayed open after its old record disappeared"
    links = {link["app"]: link["remote_id"] for link in world.show("ada@example.com")["links"]}
    assert links.get("a") == str(new_id)
    assert len(world.rows("b", "email = 'ada@example.com'")) == 1


# -- 7. no resurrection of stale values -----------------------------------------------------------


def test_person_recreated_after_a_propagated_delete_gets_no_stale_values_back(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping(), deleted_at=True)
    _bystanders(world)
    world.insert("a", email="ada@example.com", name="Ada", phone="+14155550100", company="Acme")
    world.sync()
    assert world.row("b", "ada@example.com")["company"] == "Acme"
    world.execute(
        "a", "UPDATE a SET deleted_at = ?, updated_at = ? WHERE email = 'ada@example.com'", (stamp(), stamp())
    )
    world.sync()
    assert world.rows("b", "email = 'ada@example.com' AND deleted_at IS NULL") == [], "delete not propagated"

    world.insert("a", at=stamp(), email="ada@example.com", name="Ada")
    for _ in range(3):
        if world.sync()["writes"] == 0:
            break
    live_a = world.rows("a", "email = 'ada@example.com' AND deleted_at IS NULL")
    live_b = world.rows("b", "email = 'ada@example.com' AND deleted_at IS NULL")
    assert len(live_a) == 1
    assert len(live_b) == 1, f"the recreated person is not (only once) in b: {live_b}"
    for app, rows in (("a", live_a), ("b", live_b)):
        for row in rows:
            assert (row["phone"], row["company"]) == (None, None), (
                f"{app} got the deleted person's values back"
            )


# -- 9d. hard deletes seen by an ordinary sync --------------------------------------------------------


def test_hard_deleted_row_is_propagated_by_an_incremental_sync(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping())
    _bystanders(world)
    world.insert("a", email="ada@example.com", name="Ada")
    world.sync()
    assert len(world.rows("b", "email = 'ada@example.com'")) == 1
    world.execute("a", "DELETE FROM a WHERE email = 'ada@example.com'")

    stats = world.sync()
    assert world.rows("b", "email = 'ada@example.com'") == [], (
        f"not propagated without --full: {stats['apps']}"
    )
    assert stats["apps"]["b"]["deleted"] == 1
    assert len(world.rows("b")) == 4
