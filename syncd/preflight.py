"""Pre-flight: ask every app, read-only, whether the objects and paths the mappings name exist.

A mapping can be valid on paper and still name a table that is not there, a column with a typo,
a HubSpot property nobody created. Without this check such a mistake shows up only as empty
values or rejected writes after a sync has run. ``syncd validate`` runs it (unless ``--offline``),
and ``plan``, ``sync --once`` and ``run`` run it before their first write and refuse to start on
a problem (exit code 2).

Problems come back as ``file: key.path: message`` lines, like every other configuration problem:
a path a connector does not know is reported at ``fields.NAME.apps.APP`` of the mapping file, a
missing object type at ``apps.APP.object``, settings that cannot work (a database file that does
not exist, rejected credentials) at ``apps.APP.settings`` of the config file. An app that cannot
be reached is not a configuration problem: it is listed in ``unreachable`` and left to the run,
which reports its failed reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from syncd.connector import AuthError, ConfigError, Connector, ConnectorError, PathProblem
from syncd.mapping import Mapping as SyncMapping


@dataclass
class PreflightReport:
    """What the pre-flight found: configuration problems, and apps it could not ask."""

    problems: list[str] = field(default_factory=list)
    #: ``app: why`` for each app that could not be reached (a transient failure, not a mistake).
    unreachable: list[str] = field(default_factory=list)


def _paths(mapping: SyncMapping, app: str) -> tuple[str, list[str], list[str], str | None]:
    spec = mapping.app_specs[app]
    read = [f.path for f in spec.fields if f.readable]
    write = [f.path for f in spec.fields if f.writable]
    try:
        key: str | None = mapping.key_path(app)
    except KeyError:
        key = None
    return spec.object, read, write, key


def _located(mapping: SyncMapping, app: str, problem: PathProblem) -> list[str]:
    """The problem at the key path(s) of the mapping file that name its path."""
    source = mapping.source
    if problem.path is None:
        return [f"{source}: apps.{app}.object: {problem.message}"]
    names = [f.field for f in mapping.app_specs[app].fields if f.path == problem.path]
    if not names:
        return [f"{source}: apps.{app}: {problem.path!r}: {problem.message}"]
    return [f"{source}: fields.{name}.apps.{app}: {problem.message}" for name in names]


async def preflight(
    mappings: Sequence[SyncMapping], connectors: Mapping[str, Connector], source: str = "config.toml"
) -> PreflightReport:
    """Run every used app's ``Connector.preflight`` for every mapping it takes part in."""
    report = PreflightReport()
    failed: set[str] = set()
    for mapping in mappings:
        for app in mapping.apps:
            connector = connectors.get(app)
            if connector is None or app in failed:
                continue
            obj, read, write, key = _paths(mapping, app)
            try:
                found = await connector.preflight(obj, read=read, write=write, key=key)
            except AuthError as exc:
                failed.add(app)
                report.problems.append(
                    f"{source}: apps.{app}.settings: the app rejected the credentials: {exc}"
                )
                continue
            except ConfigError as exc:
                failed.add(app)
                report.problems.append(f"{source}: apps.{app}.settings: {exc}")
                continue
            except ConnectorError as exc:
                failed.add(app)
                report.unreachable.append(f"{app}: {exc}")
                continue
            for problem in found:
                report.problems += _located(mapping, app, problem)
    return report
