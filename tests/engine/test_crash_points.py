"""A crash between every remote write and the commit that should follow it.

One scenario mixes creates, updates and deletes across three apps. A reference run counts
its remote write calls; then, for every k, a fresh world crashes right after the k-th call took
effect remotely (before syncd committed anything about it), restarts on the same store and
settles. Whatever k, the outcome is the reference outcome: no duplicate, no loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .world import OBJ, World, b_person, person


class Crash(Exception):
    pass


def _scenario(w: World) -> None:
    for i in range(6):
        w.apps["a"].seed(OBJ, person(f"p{i}@example.com", f"P{i}", phone="+14155550100"))
    w.apps["b"].seed(OBJ, b_person("p0@example.com", "P0"))


def _second_round(w: World) -> None:
    a = {v["email"]: k for k, v in w.records("a").items()}
    w.apps["a"].edit(OBJ, a["p1@example.com"], {"name": "Renamed"})
    w.apps["a"].remove(OBJ, a["p2@example.com"])
    c = {v["email"]: k for k, v in w.records("c").items()}
    w.apps["c"].edit(OBJ, c["p3@example.com"], {"phone": "+14155550199"})
    w.apps["b"].seed(OBJ, b_person("new@example.com", "New"))


def _snapshot(w: World) -> dict[str, Any]:
    return {
        app: sorted(
            (e, r.get("name", r.get("full_name")), r.get("phone")) for e, r in w.by_email(app).items()
        )
        for app in w.apps
    }


async def _run(tmp_path: Path, crash_at: int | None) -> tuple[dict[str, Any], int]:
    tmp_path.mkdir()
    w = World(tmp_path)
    _scenario(w)
    calls = {"n": 0}

    def hook(op: str) -> None:
        calls["n"] += 1
        if crash_at is not None and calls["n"] == crash_at:
            raise Crash(f"died after remote call {crash_at} ({op})")

    for app in w.apps.values():
        app.after_call = hook
    for step in (None, _second_round):
        if step is not None:
            step(w)
        try:
            await w.settle()
        except Crash:
            await w.settle()  # the restart
    return _snapshot(w), calls["n"]


@pytest.mark.parametrize("crash_at", range(1, 11))
async def test_crash_after_any_remote_write_before_commit_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, crash_at: int
) -> None:
    expected, total = await _run(tmp_path / "reference", None)
    assert total == 10, f"the scenario now makes {total} remote write calls: adjust the crash points"
    got, _ = await _run(tmp_path / "crashed", crash_at)
    assert got == expected
