"""`syncd show`, black-box: each app's own value beside the canonical one, how records were linked,
conflicts as a table."""

from __future__ import annotations

from pathlib import Path

from .sqlworld import SqlWorld, mapping


def test_show_puts_each_apps_value_beside_the_canonical_one_and_tables_conflicts(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping(field_options={"company": 'conflict = { policy = "review" }'}))
    world.insert("a", email="ada@example.com", name="Ada", city="Paris", company="A Inc")
    world.insert("b", email="ada@example.com", name="Ada", city="Paris", company="B Ltd")
    world.sync()
    shown = world.syncd("show", "ada@example.com").stdout
    assert "[active]" in shown
    assert "in a" in shown
    assert "in b" in shown
    company = next(line for line in shown.splitlines() if "company" in line and "A Inc" in line)
    assert '"B Ltd" (differs)' in company  # b's own value, beside the canonical one
    assert "open conflicts" in shown
    row = next(line for line in shown.splitlines() if line.count('"A Inc"') == 1 and "field" in line)
    assert '"B Ltd"' in row  # one row per conflict, one column per side
    # both records existed before syncd matched them by key: neither is called new
    assert "a record 1: linked existing record" in shown
    assert "b record 1: linked existing record" in shown
    assert "(new record in a)" not in shown
    assert "first read from a: an existing record, linked by key" in shown
    view = world.show("ada@example.com")
    assert {link["app"]: link["origin"] for link in view["links"]} == {"a": "linked", "b": "linked"}
    assert {link["app"]: link["baseline"]["company"] for link in view["links"]} == {
        "a": "A Inc",
        "b": "B Ltd",
    }


def test_show_tells_a_record_syncd_created_from_the_one_it_came_from(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping())
    world.insert("a", email="solo@example.com", name="Solo", city="Oslo")
    world.sync()
    shown = world.syncd("show", "solo@example.com").stdout
    assert "a record 1: existing record, where the entity was first read" in shown
    assert "b record 1: created by syncd" in shown
    view = world.show("solo@example.com")
    assert {link["app"]: link["origin"] for link in view["links"]} == {"a": "first_seen", "b": "created"}


def test_show_of_an_unknown_key_exits_1(tmp_path: Path) -> None:
    world = SqlWorld(tmp_path, mapping())
    world.sync()
    proc = world.syncd("show", "nobody@example.com", check=False)
    assert proc.returncode == 1
    assert "no entity with key" in proc.stderr
