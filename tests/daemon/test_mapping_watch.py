"""A running daemon follows its mapping files: a change on disk is reloaded within seconds (no
SIGHUP), a bad version is rejected once and the last good mappings keep running, and the digest
of the files in use is published for ``syncd status`` to compare across daemons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

import syncd.daemon.service as service
from syncd.app import mapping_digest
from syncd.daemon import Daemon
from syncd.settings import Settings

from .conftest import started
from .harness import SqlTable, wait_for


@pytest.fixture
async def watching(
    pair_settings: Settings, tables: tuple[SqlTable, SqlTable], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Daemon]:
    monkeypatch.setattr(service, "MAPPING_WATCH_INTERVAL", 0.05)
    running = await started(pair_settings)
    alpha, beta = tables
    await wait_for(lambda: alpha.names() == beta.names(), 10, what="the initial sync")
    yield running
    await running.stop()


def _mapping_file(daemon: Daemon) -> Path:
    [folder] = daemon.settings.mappings
    return folder / "people.toml"


async def test_a_mapping_file_changed_on_disk_is_reloaded_and_its_digest_published(watching: Daemon) -> None:
    daemon = watching
    assert daemon.mapping_digest == mapping_digest(daemon.settings)
    [mapping] = daemon.runner.mappings
    assert mapping.conflict_policy("name").policy == "newest"
    path = _mapping_file(daemon)
    path.write_text(path.read_text().replace('policy = "newest"', 'policy = "priority"'))
    await wait_for(
        lambda: daemon.runner.mappings[0].conflict_policy("name").policy == "priority",
        10,
        what="the changed file to be reloaded",
    )
    assert daemon.mapping_digest == mapping_digest(daemon.settings)
    assert daemon._published()["mappings"] == daemon.mapping_digest


async def test_a_bad_version_is_rejected_once_and_the_next_good_one_applies(
    watching: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = watching
    looks = 0

    def counted(settings: Settings) -> str:
        nonlocal looks
        looks += 1
        return mapping_digest(settings)

    monkeypatch.setattr(service, "mapping_digest", counted)
    path = _mapping_file(daemon)
    good = path.read_text()
    with structlog.testing.capture_logs() as events:
        path.write_text(good.replace('key = "email"', 'key = "no_such_field"'))
        await wait_for(
            lambda: any(e["event"].startswith("mapping reload rejected") for e in events),
            10,
            what="the bad file to be rejected",
        )
        seen = looks
        await wait_for(lambda: looks >= seen + 5, 10, what="five more looks at the files")
        assert sum(e["event"].startswith("mapping reload rejected") for e in events) == 1
        assert daemon.runner.mappings[0].key_fields == ("email",)  # the last good mapping keeps running
        path.write_text(good.replace('policy = "newest"', 'policy = "priority"'))
        await wait_for(
            lambda: daemon.runner.mappings[0].conflict_policy("name").policy == "priority",
            10,
            what="the fixed file to be reloaded",
        )
