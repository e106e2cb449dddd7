"""The ``syncd`` command line: a thin layer over ``syncd.app`` and the store.

Exit codes: 0 success; 1 the command ran but something failed (write errors, unknown id), or
``syncd status`` found something that needs a person; 2 bad configuration or mapping files (each
problem printed as ``file: key.path: message``).
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
from syncd.log import configure, load_libraries

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
    """syncd keeps customer records in two-way sync across business apps.

    Example: syncd --config config.toml status
    """
    load_libraries()
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
    """Check the config file, every mapping file, every app's settings and, in each app, every mapped path.

    Example: syncd validate --offline
    """
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


def progress_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--progress-every SECONDS``: the JSON progress lines when stdout is not a terminal."""
    return click.option(
        "--progress-every",
        "progress_every",
        type=click.FloatRange(min=0),
        default=5.0,
        show_default=True,
        help="When stdout is not a terminal, a JSON progress line on stderr this often (0: none). "
        "On a terminal, progress is drawn instead.",
    )(fn)


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
    "--once", is_flag=True, help="Run one full cycle and exit (required; the daemon is `syncd run`)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@click.option(
    "--full", is_flag=True, help="Re-read every record (full listing) instead of changes since the last run."
)
@click.option("--allow-mass-delete", is_flag=True, help="Propagate deletes even past the mass-delete guard.")
@progress_option
@click.pass_context
def sync(
    ctx: click.Context, once: bool, as_json: bool, full: bool, allow_mass_delete: bool, progress_every: float
) -> None:
    """Read every app, reconcile, write every change, wait for the outbox to drain, exit.

    Example: syncd sync --once --json
    """
    from syncd.app import open_runner
    from syncd.progress import SyncProgress
    from syncd.sync.operations import one_writer

    if not once:
        raise click.UsageError(
            "`syncd sync` runs one cycle and exits, and says so: give --once. To keep syncing "
            "(polls, webhooks, the admin API) run the daemon: `syncd run`. To see what a cycle would "
            "write first: `syncd plan`."
        )
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
            with SyncProgress("sync", interval=progress_every) as shown:
                runner.report_progress(shown.update)
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
@progress_option
@click.pass_context
def run_daemon(
    ctx: click.Context, ready_file: Path | None, public_url: str | None, progress_every: float
) -> None:
    """Run the daemon: polls, webhooks, outbox dispatch and the admin API, until SIGTERM/SIGINT.

    SIGHUP reloads the mapping files. Exits 1 when another syncd holds the state. The first sync
    of apps never read before shows its progress.

    Example: syncd run --ready-file /run/syncd/ready.json
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
    daemon = Daemon(
        settings,
        source=_source(ctx),
        ready_file=ready_file,
        public_url=public_url,
        progress_every=progress_every,
    )
    try:
        code = _run(ctx, daemon.run())
    except (LeaseHeld, DaemonError) as exc:
        get_logger("syncd.daemon").error("not starting", reason=str(exc))
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    ctx.exit(code)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary and every planned write as JSON.")
@click.option("--full", is_flag=True, help="Plan as for `sync --once --full`.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Show at most this many writes per app and kind.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every write (no --limit).")
@progress_option
@click.pass_context
def plan(
    ctx: click.Context, as_json: bool, full: bool, limit: int, show_all: bool, progress_every: float
) -> None:
    """Preview what `sync --once` would do, writing nothing: a summary per app, then the writes
    with the values each app would receive. Exits 1 if an app could not be read.

    Example: syncd plan --limit 5
    """
    from syncd.app import open_runner
    from syncd.progress import SyncProgress
    from syncd.sync.preview import preview_data, preview_lines

    settings = _settings(ctx)

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with open_runner(settings, source=_source(ctx), dry_run=True, check_apps=True) as runner:
            with SyncProgress("plan", interval=progress_every) as shown:
                runner.report_progress(shown.update)
                result = await runner.run_cycle(full=full)
            stats = result.as_dict()
            stats["dead_letters"] = await runner.store.call(lambda s: s.count_dead_letters())
            preview = await runner.store.call(preview_data, runner.planned, result)
            return preview, stats

    preview, stats = _run(ctx, go())
    if as_json:
        _emit_json({**preview, "counts": stats})
    else:
        click.echo("what `syncd sync --once` would do now (nothing was written):")
        for text in preview_lines(preview, limit=None if show_all else limit):
            click.echo(text)
        click.echo("")
        writes = len(preview["writes"])
        if not writes:
            click.echo(
                "nothing to write" if not stats["errors"] else "nothing to write from what could be read"
            )
        else:
            click.echo(f"{writes} writes")
        for message in stats["delete_guard"]:
            click.echo(f"ALERT: {message}", err=True)
        dead = _dead_letter_line(stats["dead_letters"])
        if dead:
            click.echo(dead)
        _print_failures(stats)
    if stats["errors"] or stats["failures"] or stats["paused"]:
        ctx.exit(1)


@main.command()
@config_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as one JSON object (keys in docs/cli.md)."
)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Health at a glance, read from the state (no daemon needed): per app its state, lag, webhook
    age, outbox, dead letters and API budget; open conflicts, held deletes, the daemons; and what
    needs a person, with the command to run.

    Exits 0 when nothing needs a person, 1 when something does, 2 on a bad config.

    Example: syncd status --json | jq .attention
    """
    import time

    from syncd.sync.health import AppInfo, health_report

    settings = _settings(ctx)
    apps = {
        name: AppInfo(app.connector, app.poll_interval) for name, app in settings.apps.items() if app.enabled
    }
    store = _store(settings)
    try:
        report = store.run(health_report, apps, time.time())
    finally:
        store.close()
    if as_json:
        _emit_json(report)
    else:
        from syncd.cli_status import console, render

        render(report, console())
    if report["needs_attention"]:
        ctx.exit(1)


@main.group()
def conflicts() -> None:
    """List and resolve conflicts left for review.

    Example: syncd conflicts list
    """


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
    """Open conflicts (fields parked for a person), oldest first.

    Example: syncd conflicts list --all --json
    """
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
@click.argument("conflict_id", type=int, required=False)
@click.option("--take", "take", default=None, help="Take the value this app holds.")
@click.option(
    "--value",
    "value",
    default=None,
    help="Set this value (JSON, or plain text); it goes through the field's transforms and checks.",
)
@click.option("--allow-empty", is_flag=True, help="Let --value empty the field in every app.")
@click.option("--field", "field", default=None, help="Bulk: every open conflict on this field (with --take).")
@click.option(
    "--app", "app", default=None, help="Bulk: every open conflict this app is a side of (with --take)."
)
@click.option("--all", "every", is_flag=True, help="Bulk: every open conflict (with --take).")
@click.option("--yes", is_flag=True, help="Bulk: resolve without asking for confirmation.")
@click.option("--by", "by", default=None, help="Who resolves, for the change log (default: the OS user).")
@click.option("--why", "why", default=None, help="Why, for the change log.")
@click.pass_context
def conflicts_resolve(
    ctx: click.Context,
    conflict_id: int | None,
    take: str | None,
    value: str | None,
    allow_empty: bool,
    field: str | None,
    app: str | None,
    every: bool,
    yes: bool,
    by: str | None,
    why: str | None,
) -> None:
    """Settle a conflict, or many at once; the next sync writes the chosen values everywhere.

    One: give its ID and --take APP or --value VALUE. Many: --field F, --app A (both may be
    given) or --all, with --take APP; the matching count is shown and confirmed unless --yes.
    Every resolution is in the change log with who (--by, default the OS user) and why.

    Example: syncd conflicts resolve --field phone --take crm --yes
    """
    from syncd.sync.operations import os_user

    who = by or os_user()
    if field is not None or app is not None or every:
        if conflict_id is not None:
            raise click.UsageError("give a conflict ID, or a filter (--field, --app, --all), not both")
        if take is None or value is not None:
            raise click.UsageError("a bulk resolution takes one app's values: give --take APP")
        if every and (field is not None or app is not None):
            raise click.UsageError("--all takes every open conflict; leave out --field and --app")
        _resolve_bulk(ctx, take=take, field=field, app=app, yes=yes, who=who, why=why)
        return
    if conflict_id is None:
        raise click.UsageError(
            "give a conflict ID, or a filter: --field F, --app A or --all (with --take APP)"
        )
    if yes:
        raise click.UsageError("--yes is for bulk resolution (--field, --app, --all)")
    _resolve_one(ctx, conflict_id, take=take, value=value, allow_empty=allow_empty, who=who, why=why)


def _resolve_one(
    ctx: click.Context,
    conflict_id: int,
    *,
    take: str | None,
    value: str | None,
    allow_empty: bool,
    who: str,
    why: str | None,
) -> None:
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
                conflict_id, take=take, value=parsed, allow_empty=allow_empty, who=who, why=why
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


def _resolve_bulk(
    ctx: click.Context, *, take: str, field: str | None, app: str | None, yes: bool, who: str, why: str | None
) -> None:
    from syncd.store import AsyncStore
    from syncd.sync.operations import resolve_conflicts_bulk

    settings = _settings(ctx)
    which = " and ".join(
        [*([f"on field {field!r}"] if field else []), *([f"involving {app!r}"] if app else [])]
    )
    label = f"open conflicts {which}" if which else "open conflicts"

    async def go(dry_run: bool) -> dict[str, Any]:
        store = await AsyncStore(settings.state).open()
        try:
            return await resolve_conflicts_bulk(
                store, take=take, who=who, why=why, field=field, app=app, dry_run=dry_run
            )
        finally:
            await store.close()

    preview = _run(ctx, go(True))
    click.echo(
        f"{preview['matched']} {label}; {preview['would_resolve']} can take {take}'s value"
        + (
            f" ({preview['skipped']} skipped: {take} is not a side of them, or they are on identity)"
            if preview["skipped"]
            else ""
        )
    )
    if not preview["would_resolve"]:
        ctx.exit(1)  # nothing to do as asked, like an unknown conflict id
    if not yes:
        click.confirm(f"Resolve {preview['would_resolve']} conflicts with {take}'s value?", abort=True)
    done = _run(ctx, go(False))
    click.echo(
        f"resolved {done['resolved']} conflicts with {take}'s value (by {who}); "
        "written by the next `syncd sync --once`, or by a running `syncd run` at its next poll"
    )
    if done["gone"]:
        click.echo(f"{done['gone']} were settled meanwhile by someone else")


@main.group()
def deletes() -> None:
    """Deletes held back by the mass-delete guard: see the evidence, then approve or reject.

    Example: syncd deletes list
    """


@deletes.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="Include decided and cleared holds.")
@click.pass_context
def deletes_list(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """Held deletes, newest first, with a sample of the missing records.

    Example: syncd deletes list --all
    """
    from syncd.sync.operations import held_deletes

    store = _store(_settings(ctx))
    try:
        rows = held_deletes(store)
    finally:
        store.close()
    if not show_all:
        rows = [r for r in rows if r["status"] in ("held", "approved")]
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        click.echo("no held deletes")
    for r in rows:
        click.echo(
            f"#{r['id']} [{r['status']}] {r['sync']}/{r['app']}: {r['missing']} of {r['linked']} linked "
            f"records missing from its complete listing (tripped {r['trips']}x, last {r['updated_at']})"
        )
        for item in r["sample"]:
            click.echo(f"    {item['key'] or '(no key)'}  {r['app']} id {item['remote_id']}")
        if r["missing"] > len(r["sample"]):
            click.echo(f"    … and {r['missing'] - len(r['sample'])} more")
        if r["decided_by"]:
            click.echo(f"    {r['status']} by {r['decided_by']} at {r['decided_at']}: {r['why'] or '-'}")


def _decide(ctx: click.Context, hold_id: int, approve: bool, by: str | None, why: str, yes: bool) -> None:
    import getpass

    from syncd.errors import AdminError
    from syncd.sync.operations import decide_held_delete

    who = by or getpass.getuser()
    store = _store(_settings(ctx))
    try:
        hold = store.held_delete(hold_id)
        if hold is not None and hold["status"] == "held" and not yes:
            verb = (
                f"Delete, in the other apps, the {hold['missing']} {hold['app']} records still missing"
                if approve
                else f"Keep the {hold['missing']} {hold['app']} records and stop alerting about them"
            )
            click.confirm(f"{verb} (held deletes #{hold_id})?", abort=True)
        try:
            decided = decide_held_delete(store, hold_id, approve, who, why)
        except AdminError as exc:  # no such hold, or decided already
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
    finally:
        store.close()
    if approve:
        click.echo(
            f"approved #{hold_id} ({decided['app']}): the next complete listing of {decided['app']} "
            "deletes the records still missing, once (`syncd sync --once` or a running `syncd run`)"
        )
    else:
        click.echo(f"rejected #{hold_id} ({decided['app']}): the records are kept; no more alerts about them")


_DECIDE_OPTIONS = [
    click.option(
        "--by", default=None, help="Who decides (recorded in the change log; default: your user name)."
    ),
    click.option("--why", default="", help="Why (recorded in the change log)."),
    click.option("--yes", is_flag=True, help="Do not ask for confirmation."),
]


def _decide_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_DECIDE_OPTIONS):
        fn = option(fn)
    return fn


@deletes.command("approve")
@config_option
@click.argument("hold_id", type=int)
@_decide_options
@click.pass_context
def deletes_approve(ctx: click.Context, hold_id: int, by: str | None, why: str, yes: bool) -> None:
    """Let held deletes go ahead: the next complete listing deletes those records still missing.

    Example: syncd deletes approve 3 --why "old leads removed on purpose" --yes
    """
    _decide(ctx, hold_id, True, by, why, yes)


@deletes.command("reject")
@config_option
@click.argument("hold_id", type=int)
@_decide_options
@click.pass_context
def deletes_reject(ctx: click.Context, hold_id: int, by: str | None, why: str, yes: bool) -> None:
    """Keep the records held deletes were about; their absence deletes nothing and alerts no more.

    Example: syncd deletes reject 3 --why "a partial export" --yes
    """
    _decide(ctx, hold_id, False, by, why, yes)


@main.command()
@config_option
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=20, show_default=True, help="How many change-log entries to show.")
@click.pass_context
def show(ctx: click.Context, key: str, as_json: bool, limit: int) -> None:
    """One entity by natural key (e.g. an email) or id: each field's canonical value with where it
    came from beside each app's own stored value, its linked records (created by syncd, or an
    existing record linked by key), open conflicts as a table, and its recent changes.

    Example: syncd show ada@example.com --limit 50
    """
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
    from syncd.cli_show import render
    from syncd.cli_status import console

    render(view, console())


@main.group()
def connectors() -> None:
    """Installed connector plugins.

    Example: syncd connectors list
    """


#: Where the connectors syncd ships for its own tests live (``memory``): not app connectors.
TEST_CONNECTOR_MODULES = "syncd.testing."


def _test_connectors() -> set[str]:
    from importlib.metadata import entry_points

    found = entry_points(group="syncd.connectors")
    return {ep.name for ep in found if ep.value.startswith(TEST_CONNECTOR_MODULES)}


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option(
    "--all", "show_all", is_flag=True, help="Include the connectors syncd ships for its own tests (memory)."
)
def connectors_list(as_json: bool, show_all: bool) -> None:
    """Each installed app connector with its version and capabilities.

    Example: syncd connectors list --json
    """
    from syncd import connector as registry

    hidden = set() if show_all else _test_connectors()
    rows: list[dict[str, Any]] = []
    for name in registry.available():
        if name in hidden:
            continue
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
    """Scaffold a connector plugin package (entry point, config, connector, fake server, conformance test).

    Example: syncd connectors new acme_crm --dest plugins
    """
    from syncd.testing.scaffold import scaffold

    try:
        path = scaffold(name, dest)
    except (ValueError, FileExistsError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"created {path}")
    click.echo(f"next: pip install -e {path} && pytest {path}")


@main.group()
def deadletters() -> None:
    """Writes an app rejected: inspect, replay after a fix, or drop.

    Example: syncd deadletters list
    """


@deadletters.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def deadletters_list(ctx: click.Context, as_json: bool) -> None:
    """Every dead letter: its id, app, operation, entity and the app's error.

    Example: syncd deadletters list --json
    """
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
    """One dead letter as JSON, with the values it would have written.

    Example: syncd deadletters show 42
    """
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
    """Re-plan the records behind dead letters (after fixing the mapping or the data).

    Example: syncd deadletters replay --all
    """
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
    """Give up on dead letters for good (they are kept, marked dropped).

    Example: syncd deadletters drop 42 43
    """
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
    """The state store itself.

    \b
    Example: syncd state migrate --from state/syncd.db --to postgresql://syncd@db.internal/syncd
    """


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

    \b
    Example: syncd state migrate --from state/syncd.db --to postgresql://syncd@db.internal/syncd
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
