"""Black-box: ``syncd plan`` previews the next sync: a summary per app, then the writes with the
values each app would receive (after its outbound transforms), grouped and truncated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .sqlworld import SqlWorld, mapping

pytestmark = pytest.mark.slow

#: ``city`` flows from a to b only, upper-cased on the way out: b receives another value than
#: the canonical one.
CITY = """
[fields.city]
apps.a = "city"
apps.b = { path = "city", direction = "out", outbound = ["upper"] }
"""


def _world(tmp_path: Path, new: int = 25) -> SqlWorld:
    world = SqlWorld(tmp_path, mapping(fields=("email", "name"), extra=CITY))
    world.insert("a", email="both@example.com", name="Both", city="Bergen")
    world.insert("b", email="both@example.com", name="Both", city="somewhere")
    for i in range(new):
        world.insert("a", email=f"p{i:02}@example.com", name=f"P{i}", city="Oslo")
    return world


def test_plan_shows_a_summary_then_the_values_each_app_will_receive(tmp_path: Path) -> None:
    world = _world(tmp_path)
    text = world.syncd("plan").stdout
    lines = text.splitlines()
    header = lines.index("app  matched  new  updates  deletes  conflicts  held by guard")
    assert lines[header + 1].split() == ["a", "0", "0", "0", "0", "0", "0"]
    assert lines[header + 2].split() == ["b", "1", "25", "1", "0", "0", "0"]
    assert "b: create (25)" in lines
    assert "b: update (1)" in lines
    # The values as b receives them: upper-cased by b's outbound transform.
    assert any(
        '(new) p00@example.com: {"city": "OSLO", "email": "p00@example.com", "name": "P0"}' in x
        for x in lines
    )
    assert any("both@example.com" in x and '"city": "BERGEN"' in x for x in lines)
    assert "  … and 5 more (--all shows every write)" in lines
    assert lines[-1] == "26 writes"
    assert world.rows("b")[0]["city"] == "somewhere"  # nothing was written
    assert len(world.rows("b")) == 1


def test_plan_limit_and_all_choose_how_many_writes_each_group_shows(tmp_path: Path) -> None:
    world = _world(tmp_path)
    short = world.syncd("plan", "--limit", "3").stdout
    assert "  … and 22 more (--all shows every write)" in short
    assert short.count("(new) ") == 3
    full = world.syncd("plan", "--all").stdout
    assert full.count("(new) ") == 25
    assert "more (--all" not in full


def test_plan_json_has_the_summary_and_every_write_with_its_payload(tmp_path: Path) -> None:
    world = _world(tmp_path)
    data = json.loads(world.syncd("plan", "--json", "--limit", "1").stdout)
    assert data["summary"]["b"] == {
        "read": 1,
        "matched": 1,
        "new": 25,
        "updates": 1,
        "deletes": 0,
        "conflicts": 0,
        "held_deletes": 0,
    }
    creates = [w for w in data["writes"] if w["op"] == "create"]
    assert len(creates) == 25  # --limit shapes the text only
    assert {w["payload"]["city"] for w in creates} == {"OSLO"}
    assert {w["fields"]["city"] for w in creates} == {"Oslo"}  # the canonical value
    assert sorted(w["key"] for w in creates)[0] == "p00@example.com"
    # What the preview promised is what the sync does.
    stats = world.sync()
    assert stats["writes"] == len(data["writes"])
    assert {r["city"] for r in world.rows("b")} == {"OSLO", "BERGEN"}
