"""The review page's parts without HTTP: masking, tokens and sessions, the mapping edit behind
"always prefer app X", the atomic write, and the read-only token's settings."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from rich.console import Console

from syncd.daemon.web import (
    ADMIN,
    READONLY,
    MappingEditError,
    Sessions,
    mask_prose,
    mask_value,
    prefer_edit,
    role_for,
    write_atomically,
)
from syncd.daemon.web._review import digest
from syncd.mapping import load_mapping
from syncd.settings import DaemonSettings

ADMIN_TOKEN = SecretStr("admin-token-0123456789")
READ_TOKEN = SecretStr("reader-token-0123456789")


def test_masking_keeps_the_shape_of_a_value_and_hides_the_rest() -> None:
    assert mask_value("ada.lovelace@example.com") == "a•••@e•••.com"
    assert mask_value("Ada Lovelace") == "A•••"
    assert mask_value("+44 20 7946 0958") == "•••58"
    assert mask_value(["vip", "Newsletter"]) == ["v•••", "N•••"]
    assert mask_value({"first": "Ada", "age": 36}) == {"first": "A•••", "age": "•••"}
    # Booleans and empty values say nothing about who someone is.
    assert mask_value(True) is True
    assert mask_value(None) is None
    assert mask_value("") == ""


def test_masking_free_text_hides_emails_and_phone_numbers_but_keeps_the_sentence() -> None:
    text = "422 from app: contact ada@example.com already has phone +1 (555) 010-9999"
    assert mask_prose(text) == "422 from app: contact a•••@e•••.com already has phone •••99"
    assert mask_prose(None) is None


def test_a_token_opens_its_role_and_nothing_else_opens_anything() -> None:
    assert role_for("admin-token-0123456789", ADMIN_TOKEN, READ_TOKEN) == ADMIN
    assert role_for("  reader-token-0123456789 ", ADMIN_TOKEN, READ_TOKEN) == READONLY
    for wrong in ("", " ", "admin-token-012345678", "admin-token-0123456789x", "reader"):
        assert role_for(wrong, ADMIN_TOKEN, READ_TOKEN) is None, wrong
    # Unset tokens never match, not even an empty presented one.
    assert role_for("", None, None) is None
    assert role_for("reader-token-0123456789", ADMIN_TOKEN, None) is None


def test_sessions_are_random_expire_and_are_forgotten_on_logout() -> None:
    now = [0.0]
    sessions = Sessions(ttl=60.0, clock=lambda: now[0])
    one, two = sessions.create(ADMIN, "Grace"), sessions.create(READONLY)
    assert one.id != two.id
    assert len(one.id) >= 40
    assert one.csrf != two.csrf
    assert (one.who, two.who) == ("Grace (admin)", "read-only")
    assert one.can_write
    assert not two.can_write
    assert one.csrf_matches(one.csrf)
    assert not one.csrf_matches(two.csrf)
    assert not one.csrf_matches("")
    assert not one.csrf_matches(None)
    assert sessions.get(one.id) is one
    assert sessions.get("made-up") is None
    assert sessions.drop(one.id)
    assert sessions.get(one.id) is None
    now[0] = 61.0
    assert sessions.get(two.id) is None
    assert len(sessions) == 0


def test_a_login_flood_cannot_grow_the_sessions_past_their_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("syncd.daemon.web._sessions.MAX_SESSIONS", 5)
    sessions = Sessions(ttl=60.0)
    made = [sessions.create(READONLY) for _ in range(8)]
    assert len(sessions) == 5
    assert sessions.get(made[-1].id) is made[-1]


MAPPING = """\
# Customers between the CRM and the product database.
name = "people"
key = "email"

[apps.alpha]
object = "users"  # the CRM's table

[apps.beta]
object = "users"

[conflict]
policy = "newest"
priority = ["alpha", "beta"]

[fields.email]
transforms = ["email"]
apps.alpha = "email"
apps.beta = "email"

[fields.name]
transforms = ["trim"]   # names keep their inner spaces
apps.alpha = "name"
apps.beta = "name"
"""


def _mapping(tmp_path: Path, text: str = MAPPING) -> Path:
    path = tmp_path / "people.toml"
    path.write_text(text)
    return path


def test_prefer_edit_adds_an_owner_rule_to_the_field_and_keeps_every_comment(tmp_path: Path) -> None:
    path = _mapping(tmp_path)
    edit = prefer_edit(load_mapping(path), "name", "beta", who="Grace (admin)")
    assert edit.old == MAPPING
    assert edit.new.startswith(MAPPING.rstrip("\n"))  # nothing before the rule changed
    assert edit.new.endswith(
        "\n[fields.name.conflict]\n# beta wins every conflict on name (set on the review page by Grace (admin))\n"
        'policy = "owner"\nowner = "beta"\n'
    )
    assert '+owner = "beta"' in edit.diff
    assert edit.digest == digest(MAPPING)
    assert path.read_text() == MAPPING  # an edit is only a proposal until written
    path.write_text(edit.new)
    policy = load_mapping(path).conflict_policy("name")
    assert (policy.policy, policy.owner) == ("owner", "beta")
    assert load_mapping(path).conflict_policy("email").policy == "newest"


def test_prefer_edit_rewrites_an_existing_field_rule_in_place(tmp_path: Path) -> None:
    text = (
        MAPPING
        + '\n[fields.name.conflict]\npolicy = "priority"  # alpha first\npriority = ["alpha", "beta"]\n'
    )
    path = _mapping(tmp_path, text)
    edit = prefer_edit(load_mapping(path), "name", "beta", who="ops")
    assert 'policy = "owner"  # alpha first' in edit.new
    assert 'owner = "beta"' in edit.new
    path.write_text(edit.new)
    assert load_mapping(path).conflict_policy("name").owner == "beta"
    with pytest.raises(MappingEditError, match="already prefers beta"):
        prefer_edit(load_mapping(path), "name", "beta", who="ops")


def test_prefer_edit_refuses_unknown_fields_and_apps_and_fields_it_cannot_edit(tmp_path: Path) -> None:
    mapping = load_mapping(_mapping(tmp_path))
    with pytest.raises(MappingEditError, match="no field 'phone'"):
        prefer_edit(mapping, "phone", "beta", who="ops")
    with pytest.raises(MappingEditError, match="'gamma' is not an app"):
        prefer_edit(mapping, "name", "gamma", who="ops")
    # A field written as an inline table under dotted keys, before the first table.
    without_table = MAPPING.split("[fields.name]")[0]
    inline = _mapping(
        tmp_path,
        without_table.replace(
            'key = "email"\n',
            'key = "email"\nfields.name = { transforms = ["trim"], apps = { alpha = "name", beta = "name" } }\n',
        ),
    )
    edit = prefer_edit(load_mapping(inline), "name", "beta", who="ops")
    inline.write_text(edit.new)
    assert load_mapping(inline).conflict_policy("name").owner == "beta"


def test_the_atomic_write_replaces_the_file_whole_keeps_its_mode_and_refuses_a_changed_file(
    tmp_path: Path,
) -> None:
    path = _mapping(tmp_path)
    os.chmod(path, 0o640)
    edit = prefer_edit(load_mapping(path), "name", "alpha", who="ops")
    path.write_text(MAPPING + "# edited by hand meanwhile\n")
    with pytest.raises(MappingEditError, match="changed since the diff was shown"):
        write_atomically(path, edit.new, edit.digest)
    assert path.read_text().endswith("# edited by hand meanwhile\n")
    path.write_text(MAPPING)
    write_atomically(path, edit.new, edit.digest)
    assert path.read_text() == edit.new
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["people.toml"]  # no temporary file left


def test_the_read_only_token_is_checked_like_the_admin_token_and_must_differ_from_it() -> None:
    assert DaemonSettings(readonly_token="reader-token-0123456789").readonly_token is not None
    with pytest.raises(ValidationError, match="the read-only token is 5 characters long"):
        DaemonSettings(readonly_token="short")
    with pytest.raises(ValidationError, match="the read-only token is empty"):
        DaemonSettings(readonly_token="   ")
    with pytest.raises(ValidationError, match="readonly_token equals admin_token"):
        DaemonSettings(admin_token="same-token-0123456789", readonly_token="same-token-0123456789")
    defaults = DaemonSettings()
    assert defaults.readonly_sees_personal_data is False
    assert defaults.web_session_ttl == 28800.0


def test_prefer_edit_writes_a_dotted_key_rule_for_a_field_written_with_dotted_keys(tmp_path: Path) -> None:
    text = (
        'name = "people"\nkey = "email"\n'
        'fields.email.transforms = ["email"]\nfields.email.apps.alpha = "email"\nfields.email.apps.beta = "email"\n'
        'fields.name.apps.alpha = "name"\nfields.name.apps.beta = "name"\n\n'
        '[apps.alpha]\nobject = "users"\n\n[apps.beta]\nobject = "users"\n\n[conflict]\npolicy = "newest"\n'
    )
    path = _mapping(tmp_path, text)
    edit = prefer_edit(load_mapping(path), "name", "alpha", who="ops")
    assert '+fields.name.conflict = {policy = "owner", owner = "alpha"}' in edit.diff
    path.write_text(edit.new)
    assert load_mapping(path).conflict_policy("name").owner == "alpha"


def test_the_status_strip_shows_what_the_status_has_and_leaves_out_what_it_lacks() -> None:
    from syncd.daemon.web._routes import _strip

    today = {
        "apps": {
            "crm": {"paused": False, "lag_seconds": 4.2},
            "email": {"paused": True, "lag_seconds": 7300.0},
        }
    }
    assert _strip(today) == [
        {"app": "crm", "state": "ok", "reason": None, "facts": ["lag 4s"]},
        {"app": "email", "state": "paused", "reason": None, "facts": ["lag 2h"]},
    ]
    health = {
        "apps": {
            "crm": {
                "state": "failing",
                "state_reason": "credentials rejected",
                "lag_seconds": 300,
                "webhook_age_seconds": 30.0,
                "outbox_depth": 12,
                "dead_letters": 2,
                "budget_used": 0.25,
            }
        }
    }
    assert _strip(health) == [
        {
            "app": "crm",
            "state": "failing",
            "reason": "credentials rejected",
            "facts": ["lag 5m", "last webhook 30s ago", "outbox 12", "dead letters 2", "API budget 25%"],
        }
    ]
    assert _strip({}) == []


async def test_the_activity_log_logs_each_change_once_sums_up_a_burst_and_stays_quiet_when_not_leading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import structlog

    from syncd.daemon.web import ActivityLog
    from syncd.engine import Change
    from syncd.engine.model import ReasonCode
    from syncd.store import AsyncStore

    monkeypatch.setattr("syncd.daemon.web._activity.MAX_ENTRIES", 5)
    store = await AsyncStore(tmp_path / "state.db").open()

    async def add(n: int) -> None:
        changes = [
            Change(1, "name", None, f"v{i}", "crm", "changed in crm", code=ReasonCode.CHANGED)
            for i in range(n)
        ]
        await store.call(lambda s: s.log_changes("people", changes, None))

    try:
        await add(2)
        leading = [True]

        async def leads() -> bool:
            return leading[0]

        activity = ActivityLog(store, leads=leads)
        await activity.start_here()
        with structlog.testing.capture_logs() as events:
            await add(3)
            assert await activity.once() == 3
            assert await activity.once() == 0
            await add(8)
            assert await activity.once() == 5
            leading[0] = False
            await add(2)
            assert await activity.once() == 0
            leading[0] = True
            assert await activity.once() == 0  # what another daemon logged is not logged again
        lines = [e["line"] for e in events if e["event"] == "change"]
        assert [line.split('→ "')[1].split('"')[0] for line in lines] == [
            "v0",
            "v1",
            "v2",
            "v3",
            "v4",
            "v5",
            "v6",
            "v7",
        ]
        assert all(e["log_level"] == "info" for e in events)
        (burst,) = [e for e in events if e["event"] == "changes not logged one by one"]
        assert (burst["first_id"], burst["last_id"]) == (6, 8)
    finally:
        await store.close()


async def test_the_activity_log_logs_a_create_folded_into_a_new_record_it_already_logged(
    tmp_path: Path,
) -> None:
    import structlog

    from syncd.daemon.web import ActivityLog
    from syncd.demo.feed import ChangeFeed
    from syncd.engine import Change
    from syncd.engine.model import ReasonCode
    from syncd.store import AsyncStore

    store = await AsyncStore(tmp_path / "state.db").open()
    try:
        entity_id, run = await store.call(
            lambda s: (s.new_entity("people", "ann@example.com").id, s.begin_run("x"))
        )

        async def log(change: Change) -> None:
            await store.call(lambda s: s.log_changes("people", [change], run))

        activity = ActivityLog(store)
        await activity.start_here()
        feed = ChangeFeed(store, Console(file=io.StringIO(), width=200))
        await feed.start_here()
        with structlog.testing.capture_logs() as events:
            await log(
                Change(
                    entity_id,
                    "*",
                    None,
                    {"email": "ann@example.com"},
                    "crm",
                    "new record in crm",
                    code=ReasonCode.NEW_RECORD,
                )
            )
            assert await activity.once() == 1
            assert len(await feed.once()) == 1
            # syncd then creates the record in mail: the change log folds it into the row above.
            await log(Change(entity_id, "*", None, "m-1", "mail", "created in mail", code=ReasonCode.CREATED))
            assert await store.call(lambda s: s.count_rows("changelog")) == 1
            assert await activity.once() == 1
            assert await activity.once() == 0
            (printed,) = await feed.once()
        assert "ann@example.com  created in mail" in printed
        lines = [e["line"] for e in events if e["event"] == "change"]
        assert len(lines) == 2
        assert "new record in crm" in lines[0]
        assert "ann@example.com  created in mail" in lines[1]
    finally:
        await store.close()
