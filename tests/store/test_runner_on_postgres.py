"""The engine, unchanged, on a PostgreSQL state: a sync cycle converges two apps, a dry run plans
on a throw-away SQLite copy and leaves the PostgreSQL state and the apps as they were."""

from __future__ import annotations

from pathlib import Path

from syncd.app import open_runner
from syncd.settings import load_settings
from syncd.store import connect
from syncd.store.location import StateUrl
from tests.cli.sqlworld import SqlWorld, mapping


async def test_a_sync_cycle_on_postgresql_converges_and_a_dry_run_changes_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    world = SqlWorld(tmp_path, mapping())
    world.insert("a", email="ann@example.com", name="Ann", phone="+15550100")
    world.insert("b", email="bob@example.com", name="Bob", city="Oslo")
    settings = load_settings(tmp_path / "config.toml")
    settings.state = StateUrl(postgres_url)

    async with open_runner(settings) as runner:
        await runner.run_cycle()
    assert sorted(r["email"] for r in world.rows("b")) == ["ann@example.com", "bob@example.com"]
    assert sorted(r["email"] for r in world.rows("a")) == ["ann@example.com", "bob@example.com"]
    state = connect(postgres_url)
    try:
        entities = state.count_entities("contacts")
        changes = len(state.changelog(limit=1000))
    finally:
        state.close()
    assert entities == {"active": 2}

    world.insert("a", email="cy@example.com", name="Cy")
    async with open_runner(settings, dry_run=True) as runner:
        await runner.run_cycle()
    assert "cy@example.com" not in [r["email"] for r in world.rows("b")]
    state = connect(postgres_url)
    try:
        assert state.count_entities("contacts") == entities
        assert len(state.changelog(limit=1000)) == changes
    finally:
        state.close()
