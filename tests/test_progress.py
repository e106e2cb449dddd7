"""The progress display's arithmetic and pacing, with a hand-driven clock."""

from __future__ import annotations

import io
import json

from syncd.progress import REDRAW_EVERY, SyncProgress, snapshot
from syncd.sync.stats import RunStats


def _stats(
    read: dict[str, int], totals: dict[str, int] | None = None, planned: int = 0, writes: int = 0
) -> RunStats:
    stats = RunStats()
    for app, n in read.items():
        stats.apps[app].read = n
    stats.read_totals.update(totals or {})
    stats.planned = planned
    if writes:
        stats.apps[next(iter(read))].writes = writes
    return stats


def test_reading_rate_and_time_left_use_the_apps_totals() -> None:
    view = snapshot(_stats({"crm": 200, "email": 100}, {"crm": 1000, "email": 100}), 10.0, 10.0)
    assert view.phase == "reading"
    assert view.apps == {"crm": (200, 1000), "email": (100, 100)}
    assert view.rate == 30.0
    assert view.eta == 800 / 30.0


def test_time_left_is_unknown_while_an_app_does_not_tell_its_total() -> None:
    view = snapshot(_stats({"crm": 200, "sql": 50}, {"crm": 1000}), 5.0, 5.0)
    assert view.rate == 50.0
    assert view.eta is None
    assert view.as_dict()["apps"]["sql"] == {"read": 50, "total": None}


def test_writing_phase_counts_writes_done_of_planned() -> None:
    view = snapshot(_stats({"crm": 10}, planned=40, writes=10), 9.0, 2.0)
    assert (view.phase, view.writes_done, view.writes_planned) == ("writing", 10, 40)
    assert view.rate == 5.0
    assert view.eta == 6.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_json_lines_come_at_most_once_per_interval_and_once_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    with SyncProgress("sync", stream=out, interval=5.0, terminal=False, clock=clock) as shown:
        for i in range(1, 81):  # 80 pages over 10 seconds
            clock.now += 0.125
            shown.update(_stats({"crm": i * 10}))
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["done"] for x in lines] == [False, False, True]
    assert [x["apps"]["crm"]["read"] for x in lines] == [400, 800, 800]


def test_nothing_is_written_when_lines_are_turned_off() -> None:
    out, clock = io.StringIO(), Clock()
    with SyncProgress("sync", stream=out, interval=0, terminal=False, clock=clock) as shown:
        clock.now += 60
        shown.update(_stats({"crm": 1}))
    assert out.getvalue() == ""


def test_terminal_redraws_are_paced_whatever_the_update_rate() -> None:
    out, clock = io.StringIO(), Clock()
    with SyncProgress("sync", stream=out, terminal=True, clock=clock) as shown:
        draws = 0
        original = shown._draw

        def counting(stats: RunStats) -> None:
            nonlocal draws
            draws += 1
            original(stats)

        shown._draw = counting  # type: ignore[method-assign]
        for i in range(1000):  # 1,000 updates within one second
            clock.now += 0.001
            shown.update(_stats({"crm": i}))
    assert draws <= 1 / REDRAW_EVERY + 2
    assert "read crm" in out.getvalue()
