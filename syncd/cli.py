"""The ``syncd`` command line: a thin layer over ``syncd.app`` and the store.

Exit codes: 0 success; 1 the command ran but something failed (write errors, unknown id);
2 bad configuration or mapping files (each problem printed as ``file: key.path: message``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from syncd import __version__
from syncd.errors import ConfigFileError
from syncd.log import configure

if TYPE_CHECKING:
    from syncd.settings import Settings
    from syncd.store import ConflictRow, StateStore

# pydantic settings and the state store are imported by the commands that use them, not at start-up.


def load_settings(path: str | os.PathLike[str] | None = None, *, required: bool = False) -> Settings:
    from syncd.settings import load_settings as load

    return load(path, required=required)


def connect(location: str | Path, *, password: str | None = None) -> StateStore:
    from syncd.store import connect as open_store

    return open_store(location, password=password)


T = TypeVar("T")


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        config = obj.get("config")
        try:
            obj["settings"] = load_settings(config, required=True)
        except ConfigFileError as exc:
            for problem in exc.problems:
                click.echo(problem, err=True)
            ctx.exit(2)
        configure(obj["settings"].log_format, obj["settings"].log_level)
        for warning in obj["settings"].warnings:
            click.echo(f"warning: {warning}", err=True)
    settings: Settings = obj["settings"]
    return settings


def _source(ctx: click.Context) -> str:
    return str(ctx.ensure_object(dict).get("config") or "config.toml")


def _run(ctx: click.Context, coro: Coroutine[Any, Any, T]) -> T:
    try:
        import asyncio

        return asyncio.run(coro)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        ctx.exit(2)
        raise  # unreachable: ctx.exit raises


def config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--config PATH`` on every command (also accepted before the command name)."""

    @click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        expose_value=True,
        help="Config file (default: ./config.toml).",
    )
    @wraps(fn)
    def inner(*args: Any, config: Path | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if config is not None:
            ctx.ensure_object(dict)["config"] = config
        return fn(*args, **kwargs)

    return inner


@click.group()
@click.version_option(__version__, prog_name="syncd")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Config file.")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """syncd keeps customer records in two-way sync across business apps."""
    ctx.ensure_object(dict)["config"] = config


@main.command()
@config_option
@click.option(
    "--offline",
    is_flag=True,
    help="Check the files only; do not ask the apps whether the mapped paths exist.",
)
@click.pass_context
def validate(ctx: click.Context, offline: bool) -> None:
    """Check the config file, every mapping file, every app's settings and, in each app, every mapped path."""
    from syncd.app import check_apps
    from syncd.app import validate as check

    settings = _settings(ctx)
    try:
        mappings = check(settings, _source(ctx))
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        ctx.exit(2)
    unreachable: list[str] = []
    if not offline:
        report = _run(ctx, check_apps(settings, _source(ctx)))
        unreachable = report.unreachable
        for problem in report.problems:
            click.echo(problem, err=True)
        for note in report.unreachable:
            click.echo(f"warning: not checked, the app could not be reached: {note}", err=True)
        if report.problems:
            ctx.exit(2)
    for m in mappings:
        click.echo(f"ok: {m.source}: sync {m.name!r} between {', '.join(m.apps)} ({len(m.fields)} fields)")
    if unreachable:
        ctx.exit(1)


#: How to retry dead letters once their cause is fixed (see docs/cli.md).
REPLAY = "syncd deadletters replay --all"


def _print_failures(stats: dict[str, Any]) -> None:
    """Each app that failed this run, with the real cause (credentials, settings, or transient)."""
    from syncd.failures import cause

    failures = stats.get("failures", {})
    for app in stats["paused"]:
        reason = cause(failures[app]) if app in failures else "see the log"
        click.echo(f"ALERT: {app} paused: {reason}", err=True)
    for app, record in sorted(failures.items()):
        if app not in stats["paused"]:
            click.echo(f"ERROR: {app}: reading failed: {cause(record)}", err=True)


def _dead_letter_line(count: int) -> str | None:
    if not count:
        return None
    return (
        f"dead letters: {count} pending (writes the apps rejected, not retried): "
        f"fix the cause, then `{REPLAY}`"
    )


def _print_stats(stats: dict[str, Any]) -> None:
    click.echo(
        "linked {linked}, created {created}, updated {updated}, deleted {deleted}, conflicts {conflicts} "
        "(open for review: {review}), errors {errors}, writes {writes}".format(**stats)
    )
    for app, s in stats["apps"].items():
        click.echo(
            f"  {app}: read {s['read']}, linked {s['linked']}, created {s['created']}, updated {s['updated']}, "
            f"deleted {s['deleted']}, errors {s['errors']}"
        )
    for app, s in stats["apps"].items():
        if s.get("refused"):
            click.echo(
                f"WARNING: {s['refused']} records not created in {app}: their natural key is empty "
                "(see `syncd show` of one of them; often a mapping path that reads nothing)",
                err=True,
            )
    for app, s in stats["apps"].items():
        if s.get("quarantined"):
            click.echo(
                f"ERROR: {s['quarantined']} {app} records could not be read or mapped and were set aside "
                "(the rest synced): `syncd deadletters list` says why, `syncd deadletters replay` reads "
                "them again",
                err=True,
            )
    if stats.get("oscillations"):
        click.echo(
            f"ALERT: {stats['oscillations']} fields parked: two apps keep rewriting them into their own "
            "forms; `syncd conflicts list` names the transform to declare",
            err=True,
        )
    line = _dead_letter_line(stats.get("dead_letters", 0))
    if line:
        click.echo(line)
    for message in stats["delete_guard"]:
        click.echo(f"ALERT: {message}", err=True)
    _print_failures(stats)


@main.command()
@config_option
@click.option(
    "--once", is_flag=True, required=True, help="Run one full cycle and exit (the daemon is `syncd run`)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@click.option(
    "--full", is_flag=True, help="Re-read every record (full listing) instead of changes since the last run."
)
@click.option("--allow-mass-delete", is_flag=True, help="Propagate deletes even past the mass-delete guard.")
@click.pass_context
def sync(ctx: click.Context, once: bool, as_json: bool, full: bool, allow_mass_delete: bool) -> None:
    """Read every app, reconcile, write every change, wait for the outbox to drain, exit."""
    from syncd.app import open_runner
    from syncd.sync.operations import one_writer

    settings = _settings(ctx)

    async def go() -> dict[str, Any]:
        # The pre-flight (in open_runner) comes first: a mapping the apps cannot serve is refused
        # before the state is touched.
        async with (
            open_runner(
                settings, source=_source(ctx), allow_mass_delete=allow_mass_delete, check_apps=True
            ) as runner,
            one_writer(settings),
        ):
            from syncd.erasure import retry_erasures

            await retry_erasures(runner)
            stats = (await runner.run_cycle(full=full)).as_dict()
            stats["dead_letters"] = await runner.store.call(lambda s: s.count_dead_letters())
            return stats

    from syncd.daemon import LeaseHeld

    try:
        stats = _run(ctx, go())
    except LeaseHeld as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    if as_json:
        _emit_json(stats)
    else:
        _print_stats(stats)
    if stats["errors"] or stats.get("quarantined"):
        ctx.exit(1)


@main.command()
@config_option
@click.argument("key")
@click.option("--dry-run", is_flag=True, help="List what would be erased; erase nothing.")
@click.option("--yes", is_flag=True, help="Erase without asking for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON.")
@click.pass_context
def forget(ctx: click.Context, key: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Erase one person in every app and in syncd's state (right to erasure).

    KEY is the person's natural key, e.g. an email. Every record with that key is erased through
    its app's erasure route; syncd keeps only a receipt with a salted hash of the key, and never
    re-creates the person from an app that still holds them.

    Example: syncd forget ada@example.com --dry-run
    """
    from syncd.app import open_runner
    from syncd.daemon import LeaseHeld
    from syncd.erasure import forget as erase_person
    from syncd.sync.operations import one_writer

    settings = _settings(ctx)
    if not dry_run and not yes:
        click.confirm(f"Erase {key} in every app and in syncd's state? This cannot be undone", abort=True)

    async def go() -> dict[str, Any]:
        async with one_writer(settings), open_runner(settings, source=_source(ctx)) as runner:
            return await erase_person(runner, key, dry_run=dry_run)

    try:
        receipt = _run(ctx, go())
    except LeaseHeld as exc:
        click.echo(f"error: {exc}; while the daemon runs, use its admin API: POST /api/forget", err=True)
        ctx.exit(1)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    if as_json:
        _emit_json(receipt)
    elif dry_run:
        click.echo(f"would erase {receipt['entities']} entities of syncd's state and these records:")
        for app, info in receipt["apps"].items():
            click.echo(f"  {app}: {info['records']} records")
        for app, error in receipt["lookup_errors"].items():
            click.echo(f"  {app}: {error}", err=True)
    else:
        click.echo(
            f"erasure #{receipt['erasure_id']}: {receipt['status']} (key hash {receipt['key_hash'][:16]}…)"
        )
        for app, info in receipt["apps"].items():
            line = f"  {app}: {info['erased']} erased"
            if info["failed"]:
                line += f", {len(info['failed'])} failed (retried by the next sync)"
            if info.get("lookup_error"):
                line += f"; {info['lookup_error']}"
            click.echo(line)
    if not dry_run and receipt["status"] != "done":
        ctx.exit(1)


@main.command("run")
@config_option
@click.option(
    "--ready-file",
    "--once-ready-file",
    "ready_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Once serving, write {url, port, pid} as JSON to this file (handy with daemon.port = 0).",
)
@click.option(
    "--public-url",
    default=None,
    help="Base URL the apps call webhooks on, when it differs from what syncd sees (behind a proxy); "
    "signatures are checked against PUBLIC_URL/webhooks/APP. Default: the request URL.",
)
@click.pass_context
def run_daemon(ctx: click.Context, ready_file: Path | None, public_url: str | None) -> None:
    """Run the daemon: polls, webhooks, outbox dispatch and the admin API, until SIGTERM/SIGINT.

    SIGHUP reloads the mapping files. Exits 1 when another syncd holds the state.
    """
    from syncd.app import check_apps
    from syncd.daemon import Daemon, DaemonError, LeaseHeld
    from syncd.log import get_logger

    settings = _settings(ctx)
    # Refuse to start on a mapping the apps cannot serve, before the first poll writes anything.
    report = _run(ctx, check_apps(settings, _source(ctx)))
    for note in report.unreachable:
        get_logger("syncd.daemon").warning(
            "pre-flight: app not checked, it could not be reached", detail=note
        )
    if report.problems:
        for problem in report.problems:
            click.echo(problem, err=True)
        ctx.exit(2)
    daemon = Daemon(settings, source=_source(ctx), ready_file=ready_file, public_url=public_url)
    try:
        code = _run(ctx, daemon.run())
    except (LeaseHeld, DaemonError) as exc:
        get_logger("syncd.daemon").error("not starting", reason=str(exc))
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    ctx.exit(code)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the planned writes as JSON.")
@click.option("--full", is_flag=True, help="Plan as for `sync --once --full`.")
@click.pass_context
def plan(ctx: click.Context, as_json: bool, full: bool) -> None:
    """Show what `sync --once` would write, per app and record, writing nothing."""
    from syncd.app import open_runner

    settings = _settings(ctx)

    async def go() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with open_runner(settings, source=_source(ctx), dry_run=True, check_apps=True) as runner:
            stats = (await runner.run_cycle(full=full)).as_dict()
            stats["dead_letters"] = await runner.store.call(lambda s: s.count_dead_letters())
            return runner.planned, stats

    planned, stats = _run(ctx, go())
    planned.sort(key=lambda w: (w["app"], w["op"], w["entity_id"]))
    if as_json:
        _emit_json({"writes": planned, "counts": stats})
    else:
        if not planned:
            click.echo(
                "nothing to write" if not stats["errors"] else "nothing to write from what could be read"
            )
        for w in planned:
            target = w["remote_id"] or "(new)"
            click.echo(
                f"{w['app']}: {w['op']} {target} entity {w['entity_id']}: {json.dumps(w['fields'], default=str)}"
            )
        click.echo(f"{len(planned)} writes")
        line = _dead_letter_line(stats["dead_letters"])
        if line:
            click.echo(line)
        _print_failures(stats)
    if stats["errors"]:
        ctx.exit(1)


@main.group()
def conflicts() -> None:
    """List and resolve conflicts left for review."""


def _store(settings: Settings) -> StateStore:
    """The configured state, SQLite or PostgreSQL (``connect`` picks the backend)."""
    return connect(settings.state)


@conflicts.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--all", "show_all", is_flag=True, help="Include conflicts decided by policy and resolved ones."
)
@click.pass_context
def conflicts_list(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """Open conflicts (fields parked for a person), oldest first."""
    store = _store(_settings(ctx))
    try:
        rows = store.conflicts(status=None if show_all else "open")
    finally:
        store.close()
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("no open conflicts")
    for c in rows:
        sides = "; ".join(f"{s['app']}={json.dumps(s['value'], default=str)}" for s in c["candidates"])
        click.echo(f"#{c['id']} [{c['status']}] {c['entity_key'] or c['entity_id']} {c['field']}: {sides}")
        if c.get("note"):
            click.echo(f"    {c['note']}")


@conflicts.command("resolve")
@config_option
@click.argument("conflict_id", type=int)
@click.option("--take", "take", default=None, help="Take the value this app holds.")
@click.option(
    "--value",
    "value",
    default=None,
    help="Set this value (JSON, or plain text); it goes through the field's transforms and checks.",
)
@click.option("--allow-empty", is_flag=True, help="Let --value empty the field in every app.")
@click.pass_context
def conflicts_resolve(
    ctx: click.Context, conflict_id: int, take: str | None, value: str | None, allow_empty: bool
) -> None:
    """Settle a conflict; the next sync writes the chosen value everywhere."""
    from syncd.app import open_runner
    from syncd.errors import AdminError, RefusedValue

    if (take is None) == (value is None):
        raise click.UsageError("give exactly one of --take APP or --value VALUE")
    parsed: Any = value
    if value is not None:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
    settings = _settings(ctx)

    async def go() -> ConflictRow:
        async with open_runner(settings, source=_source(ctx)) as runner:
            return await runner.resolve_conflict(
                conflict_id, take=take, value=parsed, allow_empty=allow_empty
            )

    try:
        conflict = _run(ctx, go())
    except RefusedValue as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    except AdminError as exc:  # no such conflict, resolved already, not a side
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(
        f"resolved #{conflict_id} ({conflict['field']}): written by the next `syncd sync --once`, "
        "or by a running `syncd run` at its next poll"
    )


@main.command()
@config_option
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=20, show_default=True, help="How many change-log entries to show.")
@click.pass_context
def show(ctx: click.Context, key: str, as_json: bool, limit: int) -> None:
    """One entity by natural key (e.g. an email) or id: values with provenance, links, recent changes."""
    from syncd.sync.operations import entity_view

    settings = _settings(ctx)
    store = _store(settings)
    try:
        view = entity_view(store, key, limit)
    finally:
        store.close()
    if view is None:
        click.echo(f"no entity with key {key!r}", err=True)
        ctx.exit(1)
    assert view is not None
    if as_json:
        _emit_json(view)
        return
    click.echo(f"entity {view['id']} ({view['sync']}) key {view['key']!r} [{view['state']}]")
    for name, value in sorted(view["values"].items()):
        prov = view["provenance"].get(name, {})
        click.echo(
            f"  {name} = {json.dumps(value, default=str, ensure_ascii=False)}  (from {prov.get('app')} at {prov.get('at')})"
        )
    for link in view["links"]:
        click.echo(f"  linked: {link['app']} {link['remote_id']} version {link['version']}")
    for c in view["conflicts"]:
        click.echo(f"  conflict #{c['id']} on {c['field']}: {c['candidates']}")
    for ch in view["changes"]:
        click.echo(
            f"  {ch['at']} {ch['app'] or '-'} {ch['field']}: {ch['old']!r} -> {ch['new']!r} ({ch['reason']})"
        )


@main.group()
def connectors() -> None:
    """Installed connector plugins."""


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True)
def connectors_list(as_json: bool) -> None:
    """Each installed connector with its version and capabilities."""
    from syncd import connector as registry

    rows: list[dict[str, Any]] = []
    for name in registry.available():
        try:
            cls = registry.load(name)
        except Exception as exc:  # a broken plugin must not hide the others
            rows.append({"name": name, "error": str(exc)})
            continue
        caps = cls.capabilities
        rows.append(
            {
                "name": name,
                "version": cls.version,
                "api_version": cls.api_version,
                "capabilities": {k: getattr(caps, k) for k in caps.__dataclass_fields__},
                "objects": [o.name for o in cls.objects],
            }
        )
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        if "error" in row:
            click.echo(f"{row['name']}: BROKEN: {row['error']}")
            continue
        flags = [k for k, v in row["capabilities"].items() if v is True]
        click.echo(
            f"{row['name']} {row['version']} (api v{row['api_version']}): {', '.join(flags)}; "
            f"batch {row['capabilities']['batch_size']}"
        )


@connectors.command("new")
@click.argument("name")
@click.option(
    "--dest", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
def connectors_new(name: str, dest: Path) -> None:
    """Scaffold a connector plugin package (entry point, config, connector, fake server, conformance test)."""
    from syncd.testing.scaffold import scaffold

    try:
        path = scaffold(name, dest)
    except (ValueError, FileExistsError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"created {path}")
    click.echo(f"next: pip install -e {path} && pytest {path}")


@main.group()
def deadletters() -> None:
    """Writes an app rejected: inspect, replay after a fix, or drop."""


@deadletters.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def deadletters_list(ctx: click.Context, as_json: bool) -> None:
    store = _store(_settings(ctx))
    try:
        rows = [vars(i) for i in store.dead_letters()]
    finally:
        store.close()
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("no dead letters")
    for r in rows:
        click.echo(f"#{r['id']} {r['app']} {r['op']} entity {r['entity_id']}: {r['last_error']}")


@deadletters.command("show")
@config_option
@click.argument("intent_id", type=int)
@click.pass_context
def deadletters_show(ctx: click.Context, intent_id: int) -> None:
    store = _store(_settings(ctx))
    try:
        intent = store.intent(intent_id)
    finally:
        store.close()
    if intent is None or intent.status != "dead":
        click.echo(f"no dead letter #{intent_id}", err=True)
        ctx.exit(1)
    _emit_json(vars(intent))


@deadletters.command("replay")
@config_option
@click.argument("intent_ids", type=int, nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@click.pass_context
def deadletters_replay(ctx: click.Context, intent_ids: tuple[int, ...], replay_all: bool) -> None:
    """Re-plan the records behind dead letters (after fixing the mapping or the data)."""
    from syncd.sync.operations import replay

    store = _store(_settings(ctx))
    try:
        ids = [i.id for i in store.dead_letters()] if replay_all else list(intent_ids)
        n = replay(store, ids)
    finally:
        store.close()
    click.echo(f"replaying {n} dead letters: they are planned again by the next sync")


@deadletters.command("drop")
@config_option
@click.argument("intent_ids", type=int, nargs=-1, required=True)
@click.pass_context
def deadletters_drop(ctx: click.Context, intent_ids: tuple[int, ...]) -> None:
    from syncd.sync.operations import drop_dead_letters

    store = _store(_settings(ctx))
    try:
        drop_dead_letters(store, intent_ids)
    finally:
        store.close()
    click.echo(f"dropped {len(intent_ids)} dead letters")


def _register_demo() -> None:
    from syncd.demo.cli import demo_command

    main.add_command(demo_command)


_register_demo()


@main.group()
def state() -> None:
    """The state store itself."""


def _state_location(value: str) -> str:
    from syncd.store.location import check_postgres_url

    if "://" in value:
        try:
            check_postgres_url(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@state.command("migrate")
@click.option(
    "--from", "source", required=True, help="The state to copy: a SQLite file or a postgresql:// URL."
)
@click.option("--to", "target", required=True, help="Where to copy it: a SQLite file or a postgresql:// URL.")
@click.option("--force", is_flag=True, help="Empty a target that already holds a state first.")
def state_migrate(source: str, target: str, force: bool) -> None:
    """Copy a whole state between SQLite and PostgreSQL, verified by per-table counts.

    The PostgreSQL password comes from SYNCD_STATE_PASSWORD (or the usual libpq means), never
    from the URL. Stop every daemon using either state first.
    """
    import os

    from syncd.store import connect
    from syncd.store.copy import TargetNotEmpty, copy_state
    from syncd.store.location import is_postgres_url

    source, target = _state_location(source), _state_location(target)
    if not is_postgres_url(source) and not Path(source).exists():
        raise click.ClickException(f"{source}: no such state file")
    password = os.environ.get("SYNCD_STATE_PASSWORD") or None
    src = connect(source, password=password)
    try:
        dst = connect(target, password=password)
        try:
            counts = copy_state(src, dst, force=force)
        except TargetNotEmpty as exc:
            raise click.ClickException(f"{exc}: give --force to replace it") from None
        finally:
            dst.close()
    finally:
        src.close()
    width = max(len(c.table) for c in counts)
    for c in counts:
        click.echo(f"{c.table:<{width}}  {c.source:>9}  {c.target:>9}  {'ok' if c.ok else 'MISMATCH'}")
    if not all(c.ok for c in counts):
        click.echo("the copy does not match its source", err=True)
        sys.exit(1)
    click.echo(f"copied {sum(c.target for c in counts)} rows in {len(counts)} tables")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
