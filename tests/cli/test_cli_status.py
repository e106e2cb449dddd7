"""`syncd status`, black-box: the health report read from the state, its exit code and its JSON."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from .sqlworld import SqlWorld, mapping

#: Every key of the report a script may rely on (docs/cli.md lists them).
TOP_KEYS = {
    "generated_at",
    "apps",
    "open_conflicts",
    "pending_deletes",
    "dead_letters",
    "outbox_depth",
    "daemons",
    "attention",
    "needs_attention",
}
APP_KEYS = {
    "connector",
    "configured",
    "state",
    "state_reason",
    "last_poll_at",
    "last_failure_at",
    "failure",
    "lag_seconds",
    "webhook_age_seconds",
    "outbox_depth",
    "dead_letters",
    "dead_letters_command",
    "budget_used",
    "pending_deletes",
    "last_full_reconcile",
}


def _world(root: Path, **options: str) -> SqlWorld:
    world = SqlWorld(root, mapping(field_options=options))
    world.insert("a", email="ada@example.com", name="Ada", city="Paris", company="A Inc")
    world.insert("b", email="bob@example.com", name="Bob", city="Rome", company="B Ltd")
    return world


def _status(world: SqlWorld) -> tuple[int, dict[str, object]]:
    proc = world.syncd("status", "--json", check=False)
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, object] = json.loads(proc.stdout)
    return proc.returncode, report


def test_a_healthy_state_exits_0_and_says_so_with_stable_json_keys(tmp_path: Path) -> None:
    world = _world(tmp_path)
    world.sync()
    shown = world.syncd("status")
    assert shown.returncode == 0
    assert "all well: nothing needs a person" in shown.stdout
    assert "a (sql): ok" in shown.stdout
    assert "b (sql): ok" in shown.stdout
    code, report = _status(world)
    assert code == 0
    assert set(report) == TOP_KEYS
    assert report["needs_attention"] is False
    assert report["attention"] == []
    assert report["daemons"] == []  # no daemon runs; the report comes from the state alone
    apps = report["apps"]
    assert isinstance(apps, dict)
    assert sorted(apps) == ["a", "b"]
    for app in apps.values():
        assert set(app) == APP_KEYS
        assert app["state"] == "ok"
        assert app["last_poll_at"] is not None
        assert app["lag_seconds"] >= 0
        assert app["outbox_depth"] == 0
        assert app["dead_letters"] == 0
        assert app["budget_used"] is None  # one process: no shared budget


def test_before_any_sync_every_app_is_ok_but_never_polled(tmp_path: Path) -> None:
    world = _world(tmp_path)
    code, report = _status(world)
    assert code == 0
    apps = report["apps"]
    assert isinstance(apps, dict)
    assert all(app["last_poll_at"] is None and app["lag_seconds"] is None for app in apps.values())
    assert "never" in world.syncd("status").stdout


def test_open_conflicts_exit_1_with_the_command_that_settles_them(tmp_path: Path) -> None:
    world = _world(tmp_path, company='conflict = { policy = "review" }')
    world.insert("b", email="ada@example.com", name="Ada", city="Paris", company="Other Co")
    world.sync()
    shown = world.syncd("status", check=False)
    assert shown.returncode == 1
    assert "1 open conflict" in shown.stdout
    assert "syncd conflicts resolve --all --take APP" in shown.stdout
    code, report = _status(world)
    assert code == 1
    assert report["open_conflicts"] == 1
    assert report["needs_attention"] is True
    [item] = report["attention"]  # type: ignore[misc]
    assert item["command"] == "syncd conflicts resolve --all --take APP"


def test_a_dead_letter_exits_1_with_the_replay_command(tmp_path: Path) -> None:
    world = _world(tmp_path)
    world.executescript(
        "b",
        "CREATE TRIGGER refuse BEFORE INSERT ON b WHEN NEW.city = 'Nowhere' "
        "BEGIN SELECT RAISE(ABORT, 'city refused'); END;",
    )
    world.insert("a", email="nowhere@example.com", name="Nemo", city="Nowhere")
    world.syncd("sync", "--once", check=False)
    shown = world.syncd("status", check=False)
    assert shown.returncode == 1
    assert "1 dead letter for b" in shown.stdout
    assert "run: syncd deadletters replay --all" in shown.stdout
    code, report = _status(world)
    assert code == 1
    apps = report["apps"]
    assert isinstance(apps, dict)
    assert apps["b"]["dead_letters"] == 1
    assert apps["b"]["dead_letters_command"] == "syncd deadletters replay --all"
    assert apps["a"]["dead_letters"] == 0
    assert report["dead_letters"] == 1


def test_an_app_whose_last_poll_failed_is_failing_until_a_poll_succeeds(tmp_path: Path) -> None:
    world = _world(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(
        config.read_text().replace(
            'url = "sqlite:///b.db"', 'url = "sqlite:///b.db"\nbusy_timeout_seconds = 0.2'
        )
    )
    world.sync()
    lock = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # the app's database refuses every reader
        world.syncd("sync", "--once", check=False)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    shown = world.syncd("status", check=False)
    assert shown.returncode == 1
    assert "b (sql): failing" in shown.stdout
    assert "run: syncd validate" in shown.stdout
    code, report = _status(world)
    apps = report["apps"]
    assert isinstance(apps, dict)
    assert apps["b"]["state"] == "failing"
    assert "locked" in apps["b"]["state_reason"]
    assert apps["b"]["failure"]["kind"] == "transient"
    assert apps["a"]["state"] == "ok"
    world.sync()  # the lock is gone: the next poll reads again
    code, report = _status(world)
    assert code == 0
    assert report["apps"]["b"]["state"] == "ok"  # type: ignore[index]


def test_status_on_a_bad_config_exits_2(tmp_path: Path) -> None:
    world = _world(tmp_path)
    (tmp_path / "config.toml").write_text("state = 3\n")
    proc = world.syncd("status", check=False)
    assert proc.returncode == 2


def test_sync_without_once_explains_itself_and_touches_nothing(tmp_path: Path) -> None:
    world = _world(tmp_path)
    proc = world.syncd("sync", check=False)
    assert proc.returncode == 2
    assert "give --once" in proc.stderr
    assert "syncd run" in proc.stderr
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())
