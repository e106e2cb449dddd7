"""The ``syncd demo`` command (registered on ``syncd.cli.main`` with ``add_command``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--once",
    is_flag=True,
    help="Exit after the first convergence, with a summary (exit code 0 if converged).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of the daemon's webhooks, admin API and metrics (default: any free port).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated customers.")
@click.option(
    "--customers",
    type=click.IntRange(20, 20_000),
    default=300,
    show_default=True,
    help="How many customers to spread across the two fake apps.",
)
@click.option(
    "--apps",
    type=click.Choice(["two", "all"]),
    default="two",
    show_default=True,
    help="two: HubSpot and Mailchimp; all: also a Zendesk fake and localstripe (a fake Stripe), "
    "synced with mappings/customers.toml.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep config, state and secrets in this new or empty directory (default: a temporary one, "
    "removed on exit).",
)
@click.pass_context
def demo_command(
    ctx: click.Context,
    once: bool,
    port: int | None,
    seed: int,
    customers: int,
    apps: str,
    directory: Path | None,
) -> None:
    """Run the daemon against bundled fake HubSpot and Mailchimp apps: no accounts, no network.

    Seeds both fakes with overlapping customers, runs the first sync with live progress, starts
    the daemon and prints where to look and what to try. Runs until Ctrl-C.

    Example: syncd demo --apps all
    """
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise click.UsageError(f"--dir {directory}: not empty; give the demo a new or empty directory")
    from .run import run_demo

    ctx.exit(run_demo(once=once, port=port, seed=seed, customers=customers, directory=directory, apps=apps))
