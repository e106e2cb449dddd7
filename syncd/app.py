"""Composition root: settings + mapping files + installed connectors + store → a Runner.

The only place that turns configuration into live objects; the CLI and the daemon call it.
Every configuration problem is raised as ``ConfigFileError`` with ``file: key.path: message``
lines, which the CLI prints before exiting with code 2.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from syncd import connector as registry
from syncd.connector import Connector
from syncd.log import get_logger, register_secret
from syncd.mapping import Mapping as SyncMapping
from syncd.mapping import MappingError, load_mappings
from syncd.preflight import PreflightReport, preflight
from syncd.runner import Runner
from syncd.settings import ConfigFileError, Settings
from syncd.store import AsyncStore
from syncd.store.copy import snapshot

log = get_logger("syncd.app")


def mapping_files(settings: Settings) -> list[Path]:
    """The mapping files the settings name (folders expand to their ``*.toml`` files)."""
    files: list[Path] = []
    for entry in settings.mappings:
        if entry.is_dir():
            files += sorted(entry.glob("*.toml"))
        else:
            files.append(entry)
    return files


def mapping_digest(settings: Settings) -> str:
    """A short digest of the mapping files (names and contents, not folders): daemons publishing
    the same digest run the same mappings, wherever their files live."""
    digest = hashlib.sha256()
    for file in mapping_files(settings):
        digest.update(file.name.encode() + b"\0")
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(b"\0missing")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def load_all_mappings(settings: Settings, source: str = "config.toml") -> list[SyncMapping]:
    files = mapping_files(settings)
    missing = [f for f in files if not f.exists()]
    if missing:
        raise ConfigFileError([f"{source}: mappings: file not found: {f}" for f in missing])
    if not files:
        raise ConfigFileError(
            [f"{source}: mappings: no mapping files found in {', '.join(map(str, settings.mappings))}"]
        )
    try:
        mappings = load_mappings(files, known_apps=list(settings.apps))
    except MappingError as exc:
        raise ConfigFileError(list(exc.problems)) from exc
    names = [m.name for m in mappings]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigFileError([f"{source}: mappings: two mapping files are both named {n!r}" for n in dupes])
    return mappings


def _register_secrets(value: Any) -> None:
    if isinstance(value, SecretStr):
        register_secret(value.get_secret_value())
    elif isinstance(value, dict):
        for item in value.values():
            _register_secrets(item)


def build_connectors(
    settings: Settings, apps: Sequence[str], source: str = "config.toml"
) -> dict[str, Connector]:
    """Instantiate the connectors of ``apps`` from their settings (validated by each connector)."""
    problems: list[str] = []
    out: dict[str, Connector] = {}
    for name in apps:
        app = settings.apps.get(name)
        if app is None:
            problems.append(f"{source}: apps.{name}: a mapping uses app {name!r}, which is not configured")
            continue
        try:
            cls = registry.load(app.connector)
        except registry.ConfigError as exc:
            problems.append(f"{source}: apps.{name}.connector: {exc}")
            continue
        try:
            conn = cls.from_settings(app.settings, app=name, base_dir=settings.base_dir)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
                problems.append(f"{source}: apps.{name}.settings.{loc}: {msg}")
            continue
        except registry.ConnectorError as exc:
            problems.append(f"{source}: apps.{name}.settings: {exc}")
            continue
        _register_secrets(dict(conn.config))
        out[name] = conn
    if problems:
        raise ConfigFileError(problems)
    return out


def used_apps(mappings: Sequence[SyncMapping]) -> list[str]:
    seen: list[str] = []
    for m in mappings:
        seen += [a for a in m.apps if a not in seen]
    return seen


def validate(settings: Settings, source: str = "config.toml") -> list[SyncMapping]:
    """Check the settings, every mapping file and every used app's connector settings."""
    mappings = load_all_mappings(settings, source)
    build_connectors(settings, used_apps(mappings), source)
    return mappings


async def check_apps(settings: Settings, source: str = "config.toml") -> PreflightReport:
    """``validate`` plus the pre-flight: every app is asked whether the mapped paths exist."""
    mappings = load_all_mappings(settings, source)
    connectors = build_connectors(settings, used_apps(mappings), source)
    try:
        return await preflight(mappings, connectors, source)
    finally:
        for conn in connectors.values():
            await conn.aclose()


async def _refuse_on_problems(
    mappings: Sequence[SyncMapping], connectors: dict[str, Connector], source: str
) -> None:
    report = await preflight(mappings, connectors, source)
    for note in report.unreachable:
        log.warning("pre-flight: app not checked, it could not be reached", detail=note)
    if report.problems:
        raise ConfigFileError(report.problems)


@asynccontextmanager
async def open_runner(
    settings: Settings,
    *,
    source: str = "config.toml",
    dry_run: bool = False,
    allow_mass_delete: bool = False,
    retry_base: float = 1.0,
    check_apps: bool = False,
) -> AsyncIterator[Runner]:
    """A Runner on the settings' state store (a throw-away copy of it when ``dry_run``).

    ``check_apps`` runs the pre-flight first and raises ``ConfigFileError`` on a problem,
    before the state is opened.
    """
    mappings = load_all_mappings(settings, source)
    connectors = build_connectors(settings, used_apps(mappings), source)
    if check_apps:
        try:
            await _refuse_on_problems(mappings, connectors, source)
        except BaseException:
            for conn in connectors.values():
                await conn.aclose()
            raise
    tmp: tempfile.TemporaryDirectory[str] | None = None
    path: str | Path = settings.state
    if dry_run:
        tmp = tempfile.TemporaryDirectory(prefix="syncd-plan-")
        path = Path(tmp.name) / "plan.db"
        await asyncio.to_thread(snapshot, settings.state, path)
    store = await AsyncStore(path).open()
    try:
        yield Runner(
            store,
            mappings,
            connectors,
            batch_size=settings.batch_size,
            dry_run=dry_run,
            allow_mass_delete=allow_mass_delete,
            retry_base=retry_base,
        )
    finally:
        await store.close()
        for conn in connectors.values():
            await conn.aclose()
        if tmp is not None:
            tmp.cleanup()
