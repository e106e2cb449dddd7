"""Progress of a long sync for the person who started it: records read per app (of the app's
own total when it tells), writes done of planned, the rate and the time left.

On a terminal a rich display redraws in place on stderr, at most ``REDRAW_EVERY`` seconds apart
(so a fast sync is not slowed by drawing). When stdout is not a terminal (a pipe, a file, a
service log), nothing is drawn: a quiet JSON line goes to stderr every ``interval`` seconds, and
one more when the work ends, so scripts and logs still see how far it got. Stdout is left to
the command's own output (its summary, its ``--json``).

``SyncProgress.update`` is the runner's progress hook (``Runner.report_progress``): it is called
after every committed page and every dispatch batch with the cycle's ``RunStats``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from syncd.sync.stats import RunStats

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, TaskID

# rich is imported only for the terminal display: a sync writing JSON lines (a service, a pipe)
# does not load it.

#: The shortest time between two redraws on a terminal (about ten a second at most).
REDRAW_EVERY = 0.1
#: Seconds between two JSON progress lines when not on a terminal.
DEFAULT_INTERVAL = 5.0


@dataclass(frozen=True)
class Snapshot:
    """Where a sync stands: what the JSON line says and the terminal display shows."""

    elapsed: float
    #: ``reading`` until the first write is planned, then ``writing``.
    phase: str
    #: Per app: records read so far and the app's total for this read (None: not told).
    apps: dict[str, tuple[int, int | None]]
    writes_done: int
    writes_planned: int
    #: Records (reading) or writes (writing) per second over the phase so far.
    rate: float | None
    #: Seconds left in the phase at that rate, when what is left is known.
    eta: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": "progress",
            "elapsed_s": round(self.elapsed, 1),
            "phase": self.phase,
            "apps": {app: {"read": read, "total": total} for app, (read, total) in sorted(self.apps.items())},
            "writes": {"done": self.writes_done, "planned": self.writes_planned},
            "rate_per_s": None if self.rate is None else round(self.rate, 1),
            "eta_s": None if self.eta is None else round(self.eta, 1),
        }


def snapshot(stats: RunStats, elapsed: float, phase_elapsed: float) -> Snapshot:
    """The snapshot of ``stats``, ``elapsed`` seconds into the work and ``phase_elapsed`` into
    its current phase (a pure function of its arguments)."""
    apps = {
        app: (s.read, stats.read_totals.get(app))
        for app, s in stats.apps.items()
        if s.read or app in stats.read_totals
    }
    done = stats.total("writes")
    planned = max(stats.planned, done)
    writing = planned > 0
    if writing:
        count, left = done, planned - done
    else:
        count = sum(read for read, _ in apps.values())
        known = all(total is not None for _, total in apps.values())
        left = sum(max((total or 0) - read, 0) for read, total in apps.values()) if known and apps else -1
    rate = count / phase_elapsed if phase_elapsed > 0 and count else None
    eta = left / rate if rate and left >= 0 else None
    return Snapshot(elapsed, "writing" if writing else "reading", apps, done, planned, rate, eta)


def _rate_column() -> ProgressColumn:
    """A column showing items per second of a task, as rich measures it."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class _Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")

    return _Rate()


class SyncProgress:
    """Show a sync's progress (see the module docstring); use as a context manager whose
    ``update`` is the runner's progress hook. ``interval`` 0 turns the JSON lines off."""

    def __init__(
        self,
        title: str,
        *,
        stream: TextIO | None = None,
        interval: float = DEFAULT_INTERVAL,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.title = title
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        if terminal is None:
            terminal = _is_tty(sys.stdout) and _is_tty(self.stream)
        self.terminal = terminal
        self.clock = clock
        self._start = clock()
        self._phase_start = self._start
        self._phase = "reading"
        self._last_draw = float("-inf")
        self._last_line = self._start
        self._stats: RunStats | None = None
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> SyncProgress:
        self._start = self._phase_start = self._last_line = self.clock()
        if self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(file=self.stream, force_terminal=True)
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _rate_column(),
                TimeRemainingColumn(),
                console=console,
                auto_refresh=False,
                transient=True,
            )
            self._progress.start()
        return self

    def update(self, stats: RunStats) -> None:
        """The runner's hook: cheap unless a redraw or a line is due."""
        self._stats = stats
        now = self.clock()
        if self._phase == "reading" and stats.planned:
            self._phase, self._phase_start = "writing", now
        if self._progress is not None:
            if now - self._last_draw >= REDRAW_EVERY:
                self._last_draw = now
                self._draw(stats)
        elif self.interval > 0 and now - self._last_line >= self.interval:
            self._last_line = now
            self._line(stats)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            if self._stats is not None:
                self._draw(self._stats)
            self._progress.stop()
        elif self.interval > 0 and self._stats is not None:
            self._line(self._stats, done=True)

    def _snapshot(self, stats: RunStats) -> Snapshot:
        now = self.clock()
        return snapshot(stats, now - self._start, now - self._phase_start)

    def _line(self, stats: RunStats, *, done: bool = False) -> None:
        # Shaped like the JSON log lines beside it on stderr (event, level, logger).
        data = {
            **self._snapshot(stats).as_dict(),
            "title": self.title,
            "done": done,
            "level": "info",
            "logger": "syncd.progress",
        }
        self.stream.write(json.dumps(data, sort_keys=True) + "\n")
        self.stream.flush()

    def _draw(self, stats: RunStats) -> None:
        progress = self._progress
        assert progress is not None
        view = self._snapshot(stats)
        for app, (read, total) in view.apps.items():
            self._task(f"read {app}", read, total)
        if view.writes_planned:
            self._task("writes", view.writes_done, view.writes_planned)
        progress.refresh()

    def _task(self, name: str, completed: int, total: int | None) -> None:
        progress = self._progress
        assert progress is not None
        if name not in self._tasks:
            self._tasks[name] = progress.add_task(name, total=total)
        progress.update(self._tasks[name], completed=completed, total=total)


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
