"""A create whose answer was lost, while a person edits the record it was made from.

syncd reads Ada from app a, creates her in app b, and crashes after b made the record but before
syncd recorded it. Meanwhile a person renames her in a. App b stamps the record with the time
syncd created it — later than the person's edit, as Mailchimp's ``last_changed`` is — so settling
the record as a first match by ``newest`` would take b's copy of the old name and write it back
over the person's edit. The record is syncd's own create: what that create sent is its baseline,
and the person's edit wins.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from .world import OBJ, World, person


class Crash(Exception):
    pass


@pytest.mark.parametrize("conditional", [True, False])
async def test_an_edit_made_while_a_create_lost_its_answer_is_not_overwritten_by_that_create(
    tmp_path: Path, conditional: bool
) -> None:
    w = World(tmp_path, policy="newest", apps=("a", "b"))
    w.conditional = {"a": conditional, "b": conditional}
    ada = w.apps["a"].seed(OBJ, person("ada@example.com", "Ada"))
    # b's clock runs a day ahead: whatever b stamps is "newer" than anything a stamps.
    w.apps["b"].clock = w.apps["a"].clock + timedelta(days=1)

    def crash_after_the_create(op: str) -> None:
        if op == "create":
            w.apps["b"].after_call = None
            w.apps["a"].edit(OBJ, ada, {"name": "Augusta"})
            raise Crash("died after b made the record, before syncd recorded it")

    w.apps["b"].after_call = crash_after_the_create
    with pytest.raises(Crash):
        await w.cycle()
    await w.settle()

    assert w.by_email("a")["ada@example.com"]["name"] == "Augusta"
    assert w.by_email("b")["ada@example.com"]["full_name"] == "Augusta"
    assert len(w.records("b")) == 1
    assert not w.conflicts()
    created = [e for e in w.changelog() if e["app"] == "b" and e["code"] == "created"]
    assert created, "the record is recorded as syncd's create, not as a record someone else made"
