"""Live progress of the first sync: a table of counts per app, redrawn as pages commit.

The runner calls ``on_progress`` after every committed page and every dispatch batch; this
module turns its ``RunStats`` into a rich table. On a terminal the table redraws in place; when
the output is a pipe or a file, only the final table is printed.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from syncd.runner import RunStats

#: What each app is called on screen.
APP_TITLES = {"crm": "crm (HubSpot)", "email": "email (Mailchimp)"}


def stats_table(stats: RunStats, title: str) -> Group:
    """Per-app counts plus the conflicts line."""
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("app")
    for name in ("read", "linked", "created", "updated", "errors"):
        table.add_column(name, justify="right")
    for app in sorted(stats.apps):
        s = stats.apps[app]
        table.add_row(
            APP_TITLES.get(app, app),
            str(s.read),
            str(s.linked),
            str(s.created),
            str(s.updated),
            str(s.errors),
        )
    found = Text(f"conflicts found: {stats.conflicts}")
    return Group(table, found)


class SyncProgress:
    """A context manager whose ``update`` is the runner's ``on_progress`` hook."""

    def __init__(self, console: Console, title: str) -> None:
        self.title = title
        self.console = console
        self._live = Live(
            stats_table(RunStats(), title), console=console, auto_refresh=False, transient=False
        )

    def __enter__(self) -> SyncProgress:
        self._live.start()
        return self

    def update(self, stats: RunStats) -> None:
        self._live.update(stats_table(stats, self.title), refresh=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()
        if not self.console.is_terminal:
            # A non-terminal Live prints its last frame without the line break after it.
            self.console.line()
